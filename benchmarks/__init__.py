"""Benchmarks of aion: each is runnable as ``python -m benchmarks.<name>`` and prints a table and a JSON line."""
