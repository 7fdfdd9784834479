"""A Flight Control v1beta1 stand-in for tests, benchmarks and the demo (``python -m simulator``)."""
