"""Performance tools: the memory model of a training step (``memory``), measured on the meta device."""
