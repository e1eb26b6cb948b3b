"""Benchmarks: the whole books cycle at S / M / L / XL scale, each stage beside its limit.

Plain scripts (`python benchmarks/run.py --scale S`); nothing here is imported by the product.
"""
