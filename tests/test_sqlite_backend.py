"""The site's SQLite backend: Django's statements, rewritten as Django rewrites them, once each."""

from collections.abc import Iterator

import pytest
from django.db import connection, connections
from django.db.backends.sqlite3.base import FORMAT_QMARK_REGEX

from c4c_site.sqlite import base

pytestmark = [
    # c4c_site.sqlite is the ENGINE only when DATABASE_URL is SQLite: the PostgreSQL pass has none.
    pytest.mark.skipif(connection.vendor != "sqlite", reason="the site backend is SQLite's"),
    pytest.mark.django_db,
]

STATEMENTS = [
    'SELECT "a" FROM "t" WHERE "b" = %s AND "c" IN (%s, %s)',
    "SELECT 'x%%y' LIKE %s",
    "SELECT 1",
]


@pytest.fixture
def cursor() -> Iterator[base.SQLiteCursorWrapper]:
    """The backend's own cursor under Django's wrapper, its memo empty."""
    base._qmark.cache_clear()
    with connection.cursor() as wrapper:
        assert isinstance(wrapper.cursor, base.SQLiteCursorWrapper)
        yield wrapper.cursor


def _django(query: str) -> str:
    """Django 5.2's rewrite (sqlite3/base.py, SQLiteCursorWrapper.convert_query)."""
    return FORMAT_QMARK_REGEX.sub("?", query).replace("%%", "%")


def test_the_default_sqlite_database_uses_the_site_backend() -> None:
    assert type(connections["default"]).__module__ == "c4c_site.sqlite.base"


@pytest.mark.parametrize("query", STATEMENTS)
def test_a_statement_is_rewritten_as_django_rewrites_it(cursor, query: str) -> None:
    assert cursor.convert_query(query) == _django(query)


def test_a_statement_run_again_is_rewritten_once(cursor) -> None:
    for _ in range(3):
        cursor.execute(STATEMENTS[0].replace('"t"', "(SELECT 1 AS a, 2 AS b, 3 AS c)"), [2, 3, 4])
    assert base._qmark.cache_info().misses == 1
    assert base._qmark.cache_info().hits == 2


def test_a_long_statement_is_rewritten_each_time_and_never_kept(cursor) -> None:
    query = "SELECT 1 WHERE 1 IN (" + ", ".join(["%s"] * 2_000) + ")"
    assert cursor.convert_query(query) == _django(query)
    cursor.execute(query, list(range(2_000)))
    assert cursor.fetchone() == (1,)
    assert base._qmark.cache_info().currsize == 0


def test_named_parameters_are_rewritten_as_django_does(cursor) -> None:
    cursor.execute("SELECT %(a)s || %(b)s", {"a": "x", "b": "%s"})
    assert cursor.fetchone() == ("x%s",)
    assert base._qmark.cache_info().currsize == 0
