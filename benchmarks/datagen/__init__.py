"""Benchmark inputs: generated files (cached in benchmarks/.data/) and the loopback feed."""
