"""The standalone site's SQLite backend: Django's, with its parameter-style conversion memoised
(base.py says why)."""
