"""Benchmarks (`make bench`): figures and ratios against a named reference. Never timed assertions in tests."""
