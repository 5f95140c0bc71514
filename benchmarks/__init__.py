"""`make bench`: performance goals checked by measurement, never by timed unit tests.

Each `benchmarks/bench_*.py` module exposes `run(args) -> dict` and registers its own CLI options
through `add_arguments(parser)` (optional). `python -m benchmarks [--only NAME]` runs them in order
and writes a JSON report to bench-results/.
"""
