"""Bulk history: clone one real simple-math execution (its row, node rows and span rows) many
times with raw sqlite3 executemany into the tables Django migrated.

Going through the API would take hours for a million executions; cloning a row the server itself
wrote keeps the stored shape real (same JSON, same columns, including any a later migration adds).
"""

import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

EXECUTIONS = "executions_execution"
NODES = "executions_nodeexecution"
SPANS = "executions_span"
COUNTERS = "executions_executioncounter"
SPAN_TIME_COLUMNS = ("start_time_us", "end_time_us")


@dataclass(frozen=True)
class Template:
    execution: dict[str, Any]
    nodes: list[dict[str, Any]]
    spans: list[dict[str, Any]]
    datetime_columns: dict[str, frozenset[str]]


def _rows(
    connection: sqlite3.Connection, sql: str, params: tuple[object, ...]
) -> list[dict[str, Any]]:
    cursor = connection.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _datetime_columns(connection: sqlite3.Connection, table: str) -> frozenset[str]:
    info = connection.execute(f"PRAGMA table_info({table})").fetchall()
    return frozenset(row[1] for row in info if row[2].lower() == "datetime")


def load_template(connection: sqlite3.Connection, execution_id: str) -> Template:
    executions = _rows(
        connection, f"SELECT * FROM {EXECUTIONS} WHERE execution_id = ?", (execution_id,)
    )
    if not executions:
        raise LookupError(f"execution {execution_id!r} is not in the database")
    execution = executions[0]
    pk = (execution["id"],)
    return Template(
        execution=execution,
        nodes=_rows(connection, f"SELECT * FROM {NODES} WHERE execution_id = ? ORDER BY id", pk),
        spans=_rows(connection, f"SELECT * FROM {SPANS} WHERE execution_id = ? ORDER BY id", pk),
        datetime_columns={
            table: _datetime_columns(connection, table) for table in (EXECUTIONS, NODES, SPANS)
        },
    )


class _Cloner:
    """Turns a template row into the row of clone number k, touching only what must differ."""

    def __init__(
        self, row: dict[str, Any], datetime_columns: frozenset[str], replace: tuple[str, ...]
    ):
        self.columns = list(row)
        self.template = row
        self.datetimes = {
            c: datetime.fromisoformat(row[c])
            for c in self.columns
            if c in datetime_columns and row[c] is not None
        }
        self.texts = [
            c
            for c in self.columns
            if isinstance(row[c], str)
            and c not in self.datetimes
            and any(s in row[c] for s in replace)
        ]
        self.micros = [c for c in SPAN_TIME_COLUMNS if c in row and row[c] is not None]

    def insert_sql(self, table: str) -> str:
        names = ", ".join(f'"{c}"' for c in self.columns)
        marks = ", ".join("?" for _ in self.columns)
        return f"INSERT INTO {table} ({names}) VALUES ({marks})"

    def clone(
        self, overrides: dict[str, Any], shift: timedelta, swaps: tuple[tuple[str, str], ...]
    ) -> tuple[Any, ...]:
        row = dict(self.template)
        for column, value in self.datetimes.items():
            row[column] = str(value + shift)
        shift_us = shift // timedelta(microseconds=1)
        for column in self.micros:
            row[column] = self.template[column] + shift_us
        for column in self.texts:
            text = row[column]
            for old, new in swaps:
                text = text.replace(old, new)
            row[column] = text
        row.update(overrides)
        return tuple(row[c] for c in self.columns)


def fill(
    connection: sqlite3.Connection, template: Template, count: int, *, batch: int = 20_000
) -> float:
    """Insert `count` clones, older than everything stored, in batches of one transaction each.

    Returns the wall time in seconds.
    """
    started = time.perf_counter()
    connection.execute("PRAGMA synchronous=OFF")
    connection.execute("PRAGMA cache_size=-400000")
    source = template.execution
    source_id, source_trace = source["execution_id"], source["trace_id"] or "\x00"
    replace = (source_id, source_trace)
    exec_cloner = _Cloner(source, template.datetime_columns[EXECUTIONS], replace)
    node_cloners = [_Cloner(n, template.datetime_columns[NODES], replace) for n in template.nodes]
    span_cloners = [_Cloner(s, template.datetime_columns[SPANS], replace) for s in template.spans]

    def next_id(table: str) -> int:
        (value,) = connection.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}").fetchone()
        return int(value)

    (oldest,) = connection.execute(f"SELECT min(started_at) FROM {EXECUTIONS}").fetchone()
    base_shift = datetime.fromisoformat(oldest) - datetime.fromisoformat(source["started_at"])
    (already,) = connection.execute(
        f"SELECT count(*) FROM {EXECUTIONS} WHERE execution_id LIKE 'wf_exec_fill_%'"
    ).fetchone()
    exec_pk, node_pk, span_pk = next_id(EXECUTIONS), next_id(NODES), next_id(SPANS)
    done = 0
    while done < count:
        size = min(batch, count - done)
        executions, nodes, spans = [], [], []
        for i in range(size):
            k = already + done + i
            shift = base_shift - timedelta(milliseconds=10 * (done + i + 1))
            new_id = f"wf_exec_fill_{k:010d}"
            swaps = ((source_id, new_id), (source_trace, f"{k:032x}"))
            executions.append(
                exec_cloner.clone(
                    {"id": exec_pk, "execution_id": new_id, "trace_id": f"{k:032x}"},
                    shift,
                    swaps,
                )
            )
            for cloner in node_cloners:
                nodes.append(cloner.clone({"id": node_pk, "execution_id": exec_pk}, shift, swaps))
                node_pk += 1
            for cloner in span_cloners:
                spans.append(
                    cloner.clone(
                        {"id": span_pk, "execution_id": exec_pk, "trace_id": f"{k:032x}"},
                        shift,
                        swaps,
                    )
                )
                span_pk += 1
            exec_pk += 1
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(exec_cloner.insert_sql(EXECUTIONS), executions)
        if node_cloners:
            connection.executemany(node_cloners[0].insert_sql(NODES), nodes)
        if span_cloners:
            connection.executemany(span_cloners[0].insert_sql(SPANS), spans)
        connection.execute(
            f"INSERT INTO {COUNTERS} (status, count) VALUES (?, ?) "
            "ON CONFLICT(status) DO UPDATE SET count = count + excluded.count",
            (source["status"], size),
        )
        connection.execute("COMMIT")
        done += size
    return time.perf_counter() - started
