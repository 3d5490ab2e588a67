"""Benchmarks that print figures and ratios; run with `python -m bench`."""
