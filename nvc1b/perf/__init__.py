"""Benchmarks and performance models: training step, coding speed, and the memory model of a training step
(measured on the meta device)."""
