"""The benchmark of SPEC S7: sessionware against the bare app, raw clients and its peers.

Run it with `benchmarks/run` (see docs/benchmarks.md); it is not part of the test suite.
"""
