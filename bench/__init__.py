"""Benchmarks: ``python -m bench`` (quick), ``--full``, ``--smoke``; see bench/README.md."""
