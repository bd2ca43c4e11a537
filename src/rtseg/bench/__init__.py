"""Benchmarking: inference backends, timing, reports."""
