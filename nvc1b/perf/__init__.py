"""Benchmarks and performance models (training step, coding speed, memory)."""
