"""The tokengym benchmark suite (`python -m benchmarks`)."""
