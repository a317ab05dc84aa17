"""Benchmarks for pumpcds (issue 6). Run them all with ``python -m bench``; see docs/benchmarks.md."""
