"""Benchmarks, each measured against a baseline in the same run (the performance bars).

Run them with `make bench` or `python -m bench.run [name ...]`; they need PostgreSQL and
work in a throwaway database of their own. Figures go to docs/BENCHMARKS.md.
"""
