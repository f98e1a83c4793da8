"""Throughput benchmarks: the pipeline measured against a hand-written client in the same run."""
