"""Django's SQLite backend, with the rewrite of each statement to sqlite3's parameter style
memoised.

Django's SQLite cursor rewrites every statement from "format" style (`%s`) to "qmark" style
(`?`) with a regular expression on each execute (django/db/backends/sqlite3/base.py,
`SQLiteCursorWrapper.convert_query`, Django 5.2). Its look-behind costs ~20 us for one of the
store's lease-fenced node writes on the 2-core box (3.5 % of a waited run's samples under
py-spy; BENCHMARKS.md, "Places that walk, and reads compiled once"). The
rewrite depends on the text alone, and the store's statements (executions.sql) are the same
strings run after run, so it is cached here. Everything else is Django's: a subclass through the
documented ENGINE setting, not a patch.
"""

from functools import lru_cache
from typing import Any

from django.db.backends.sqlite3 import base

# Statements kept: the store's dozen, and the ORM's frequent ones. Longer texts (an IN list of
# many ids) are rarely run twice, and are converted each time as Django does.
_CACHED_STATEMENTS = 256
_CACHED_LENGTH = 4096


@lru_cache(maxsize=_CACHED_STATEMENTS)
def _qmark(query: str) -> str:
    return base.FORMAT_QMARK_REGEX.sub("?", query).replace("%%", "%")


class SQLiteCursorWrapper(base.SQLiteCursorWrapper):
    def convert_query(self, query: str, *, param_names: Any = None) -> str:
        if param_names is None and len(query) <= _CACHED_LENGTH:
            return _qmark(query)
        return str(super().convert_query(query, param_names=param_names))


class DatabaseWrapper(base.DatabaseWrapper):
    def create_cursor(self, name: str | None = None) -> SQLiteCursorWrapper:
        return self.connection.cursor(factory=SQLiteCursorWrapper)  # type: ignore[no-any-return]
