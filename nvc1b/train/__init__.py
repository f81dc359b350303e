"""The training engine: declarative multi-stage schedules on DeepSpeed ZeRO with exact resume."""
