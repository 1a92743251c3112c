"""Benchmarks that start the app as a user would, load it with bounded loops and print figures.

Run with `python -m bench` (or `make bench`); nothing here asserts a figure.
"""
