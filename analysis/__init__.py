"""Parley's analysis: Bradley–Terry ratings with bootstrap intervals, static-benchmark
correlations, topics and a self-contained report over exported battles. Never talks to Redis,
Discord or a GPU. CLI: `python -m analysis --help`."""

__version__ = "0.1.0"
