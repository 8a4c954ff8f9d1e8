"""Benchmarks (not tests): run ``python -m bench`` from the repository root."""
