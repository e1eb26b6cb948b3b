"""Dagster control plane of dynamic-books: `definitions.py` is the one entry point."""
