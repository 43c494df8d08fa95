"""Deterministic workflow code only: decisions, timers and waits; activities do the I/O."""
