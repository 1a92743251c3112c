"""SQL generated from the models, for the store's writes that run for every node and every run.

Which writes: a node run's start and its finish, a run's row insert (with its definition's
snapshot, the first time) and its finish, the per-status counters, a run's spans and its trace
id, and pruning's deletes (guarded, so two pruners never count a row twice). Every node write
and a run's finish are fenced by the run's lease: they happen only while the execution is
unfinished AND still owned by the process that holds this instance, so a process that lost its
lease (another took the run over) cannot record anything more for it. Why:
through the ORM each statement is compiled again on every call. Measured on the 2-core box (CPU
time, SQLite, in one transaction, median of 5 x 1,000 calls): a node's start and finish cost
0.12 ms here against 0.90 ms as the ORM's create() and guarded update(), a run's insert, finish
and counters 0.28 ms against 1.05 ms; the ORM's extra 0.8 ms per node is more than the whole
per-node overhead (~0.5 ms, BENCHMARKS.md). Every other write (attempts after the first, cancel,
claims, lease renewals and takeovers) is rare or batched and goes through the ORM in the store.

Nothing here is typed by hand: table and column names come from the models' metadata and are
quoted by the connection, conflict targets from the models' unique constraints, and every status
guard from the transition tables (`models.sources`, `models.unfinished`), so a model or a table
can change without editing SQL text. Each statement is built once, on first use, as plain SQL that
SQLite (3.35+) and PostgreSQL share; values go in as parameters, prepared by their model field
where the driver cannot take the Python value as it is (JSON, datetimes).
"""

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from django.db import connection, models
from django.db.backends.utils import CursorWrapper

from .models import (
    EXECUTION_TRANSITIONS,
    NODE_TRANSITIONS,
    DefinitionSnapshot,
    Execution,
    ExecutionCounter,
    NodeExecution,
    NodeStatus,
    Span,
    sources,
    unfinished,
)

# Columns whose Python values (str, int, float, bool, an integer key) the drivers take as they
# are: asking Django's field to prepare them cost ~3 us each, a third of writing a run's spans.
_PLAIN_FIELDS = (
    models.CharField,
    models.TextField,
    models.IntegerField,
    models.FloatField,
    models.BooleanField,
    models.ForeignKey,
)
# Values a JSON column's field passes to the backend's adapter unchanged (None is SQL NULL).
_JSON_NATIVE = (dict, list, str, int, float)
# What a node run started again takes from its new start (only from a status the table lets
# start; never a finished run: a loop's next pass is a new visit, a new row), and what it forgets.
_NODE_RESTART = ("status", "started_at", "input", "attempt", "reused")
_NODE_RESULT = ("ended_at", "duration_ms", "output", "sealed_output", "error", "attempts")


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def _table(model: type[models.Model]) -> str:
    return _quote(model._meta.db_table)


def _column(model: type[models.Model], name: str) -> str:
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field)
    assert field.column
    return _quote(field.column)


def _pk(model: type[models.Model]) -> str:
    return _column(model, model._meta.pk.name)


def _unique(model: type[models.Model], name: str) -> str:
    """The columns of the model's unique constraint `name`: an ON CONFLICT target."""
    constraint = next(c for c in model._meta.constraints if c.name == name)
    assert isinstance(constraint, models.UniqueConstraint)
    return ", ".join(_column(model, field) for field in constraint.fields)


def _in(column: str, count: int) -> str:
    """`column IN (%s, ...)` for a guard set of `count` statuses (none matches no row)."""
    return f"{column} IN ({', '.join(['%s'] * count)})" if count else "1 = 0"


@cache
def _preparer(model: type[models.Model], name: str) -> "models.Field[Any, Any] | None":
    """The field that prepares the column's values; None for a plain column."""
    field = model._meta.get_field(name)
    if isinstance(field, _PLAIN_FIELDS):
        return None
    assert isinstance(field, models.Field)
    return field


def _prepared(model: type[models.Model], name: str, value: Any, cursor: CursorWrapper) -> Any:
    """A value as the backend stores it (JSON text or jsonb, datetime text or timestamptz)."""
    field = _preparer(model, name)
    return value if field is None else _stored(field, value, cursor)


def _stored(field: "models.Field[Any, Any]", value: Any, cursor: CursorWrapper) -> Any:
    """`value` prepared by `field`, the backend's adapter called straight for what the store
    writes most: an aware datetime (the field first checks its time zone against USE_TZ: 14 us a
    datetime on the 2-core box against 6 us, and a run writes about 35) and a JSON-native value
    (the field's three steps in front of the adapter change nothing for it: ~25 a run)."""
    if isinstance(field, models.DateTimeField) and isinstance(value, datetime) and value.tzinfo:
        return cursor.db.ops.adapt_datetimefield_value(value)
    if isinstance(field, models.JSONField) and isinstance(value, _JSON_NATIVE):
        return cursor.db.ops.adapt_json_value(value, field.encoder)
    return field.get_db_prep_save(value, cursor.db)


# Whole rows -------------------------------------------------------------------------------------


def _written(model: type[models.Model]) -> list["models.Field[Any, Any]"]:
    """The columns an INSERT writes: every one but a key the database numbers."""
    return [f for f in model._meta.concrete_fields if f is not model._meta.auto_field]


@cache
def _preparers(model: type[models.Model]) -> list[tuple[str, "models.Field[Any, Any] | None"]]:
    """Every written column: its attribute name, and the field that prepares its value (None
    for a plain column)."""
    return [(f.attname, None if isinstance(f, _PLAIN_FIELDS) else f) for f in _written(model)]


@cache
def _insert_sql(model: type[models.Model], suffix: str) -> str:
    fields = _written(model)
    columns = ", ".join(_column(model, f.name) for f in fields)
    values = ", ".join(["%s"] * len(fields))
    return f"INSERT INTO {_table(model)} ({columns}) VALUES ({values}) {suffix}"


def _row(instance: models.Model, cursor: CursorWrapper) -> list[Any]:
    values = []
    for attname, field in _preparers(type(instance)):
        value = getattr(instance, attname)
        values.append(value if field is None else _stored(field, value, cursor))
    return values


@cache
def _execution_insert_sql() -> str:
    """INSERT ... SELECT, only while the row's definition snapshot exists (one key lookup, the
    one its foreign key makes anyway): the store remembers which snapshots it wrote, and one of
    them may have been pruned since."""
    fields = _written(Execution)
    columns = ", ".join(_column(Execution, f.name) for f in fields)
    values = ", ".join(["%s"] * len(fields))
    snapshot = f"SELECT 1 FROM {_table(DefinitionSnapshot)} WHERE {_pk(DefinitionSnapshot)} = %s"
    return (
        f"INSERT INTO {_table(Execution)} ({columns}) SELECT {values} "
        f"WHERE EXISTS ({snapshot}) RETURNING {_pk(Execution)}"
    )


def execution_insert(cursor: CursorWrapper, execution: Execution) -> int | None:
    """Insert the row and return its key; None (no write) when its definition snapshot is not
    stored. An IntegrityError when its execution_id or idempotency key is taken."""
    cursor.execute(_execution_insert_sql(), [*_row(execution, cursor), execution.snapshot_id])
    inserted = cursor.fetchone()
    return None if inserted is None else int(inserted[0])


def snapshot_insert(cursor: CursorWrapper, snapshot: DefinitionSnapshot) -> None:
    """Write the definition's snapshot unless a row of its hash is there already."""
    sql = _insert_sql(DefinitionSnapshot, f"ON CONFLICT ({_pk(DefinitionSnapshot)}) DO NOTHING")
    cursor.execute(sql, _row(snapshot, cursor))


def spans_insert(cursor: CursorWrapper, spans: Sequence[Span]) -> None:
    """Insert a run's spans in one batch; a span already saved (a run recorded twice) is kept."""
    conflict = _unique(Span, "span_once_per_execution")
    sql = _insert_sql(Span, f"ON CONFLICT ({conflict}) DO NOTHING")
    cursor.executemany(sql, [_row(span, cursor) for span in spans])


# Pruning ----------------------------------------------------------------------------------------


def executions_delete(
    cursor: CursorWrapper, pks: Sequence[int], statuses: Sequence[str]
) -> list[tuple[int, str, str]]:
    """Delete the executions `pks` that are in one of `statuses`, returning (key, execution_id,
    status) of each row this statement deleted: a row another pruner deleted first is not
    returned, so the counters move once per row."""
    if not pks:
        return []
    key, status = _pk(Execution), _column(Execution, "status")
    cursor.execute(
        f"DELETE FROM {_table(Execution)} WHERE {_in(key, len(pks))} "
        f"AND {_in(status, len(statuses))} "
        f"RETURNING {key}, {_column(Execution, 'execution_id')}, {status}",
        [*pks, *statuses],
    )
    return [(int(pk), execution_id, status) for pk, execution_id, status in cursor.fetchall()]


def snapshots_delete_unused(cursor: CursorWrapper, keys: Sequence[str]) -> int:
    """Delete the snapshots `keys` that no execution points to; how many went."""
    if not keys:
        return 0
    key, table = _pk(DefinitionSnapshot), _table(DefinitionSnapshot)
    used = (
        f"SELECT 1 FROM {_table(Execution)} WHERE {_column(Execution, 'snapshot')} = {table}.{key}"
    )
    cursor.execute(
        f"DELETE FROM {table} WHERE {_in(key, len(keys))} AND NOT EXISTS ({used})", list(keys)
    )
    return int(cursor.rowcount)


# Counters ---------------------------------------------------------------------------------------


@cache
def _bump_sql() -> str:
    table, status, count = (
        _table(ExecutionCounter),
        _column(ExecutionCounter, "status"),
        _column(ExecutionCounter, "count"),
    )
    return (
        f"INSERT INTO {table} ({status}, {count}) VALUES (%s, %s) "
        f"ON CONFLICT ({status}) DO UPDATE SET {count} = {table}.{count} + excluded.{count}"
    )


def counter_bump(cursor: CursorWrapper, status: str, delta: int) -> None:
    """Add `delta` to the count of `status` (its row is created on first use)."""
    cursor.execute(_bump_sql(), [status, delta])


# Execution updates ------------------------------------------------------------------------------


@cache
def _execution_update_sql(names: tuple[str, ...], compare: bool) -> str:
    assignments = ", ".join(f"{_column(Execution, name)} = %s" for name in names)
    where = f"{_pk(Execution)} = %s"
    if compare:
        where += f" AND {_column(Execution, 'status')} = %s"
        where += f" AND {_column(Execution, 'lease_owner')} = %s"
    return f"UPDATE {_table(Execution)} SET {assignments} WHERE {where}"


def execution_move(
    cursor: CursorWrapper, execution: Execution, values: dict[str, Any], *, expected: str
) -> bool:
    """Set `values` on the row only while its status is still `expected` and its lease is still
    the instance's owner's (a compare-and-set: the store checked `expected` against the table,
    and moves the counters from it)."""
    names = tuple(values)
    params = [_prepared(Execution, name, value, cursor) for name, value in values.items()]
    cursor.execute(
        _execution_update_sql(names, True),
        [*params, execution.pk, expected, execution.lease_owner],
    )
    return bool(cursor.rowcount)


def execution_trace_id(cursor: CursorWrapper, execution: Execution, trace_id: str) -> None:
    """Note the run's trace id, whatever its status (spans are saved after it finished)."""
    cursor.execute(_execution_update_sql(("trace_id",), False), [trace_id, execution.pk])


def execution_root_span(
    cursor: CursorWrapper, execution: Execution, trace_id: str, span_id: str
) -> None:
    """Note the trace and root span of the part of the run going on."""
    cursor.execute(
        _execution_update_sql(("trace_id", "root_span_id"), False),
        [trace_id, span_id, execution.pk],
    )


# Node runs --------------------------------------------------------------------------------------


@cache
def _live() -> tuple[str, ...]:
    return unfinished(EXECUTION_TRANSITIONS)


@cache
def _unfinished_execution_sql() -> str:
    """`EXISTS` the execution (its key) while it takes node writes (then `_live()`'s statuses)
    from the owner of its lease (then the owner)."""
    guard = _in(_column(Execution, "status"), len(_live()))
    owner = f"{_column(Execution, 'lease_owner')} = %s"
    return (
        f"EXISTS (SELECT 1 FROM {_table(Execution)} "
        f"WHERE {_pk(Execution)} = %s AND {guard} AND {owner})"
    )


@cache
def _node_start_sql() -> str:
    table = _table(NodeExecution)
    inserted = (
        *("execution", "node_id", "node_type", "procedure_name"),
        *("status", "sequence", "visit", "started_at", "input", "attempt", "reused"),
    )
    columns = ", ".join(_column(NodeExecution, name) for name in inserted)
    values = ", ".join(["%s"] * len(inserted))
    restart = [f"{c} = excluded.{c}" for c in (_column(NodeExecution, n) for n in _NODE_RESTART)]
    forget = [f"{_column(NodeExecution, n)} = NULL" for n in _NODE_RESULT]
    guard_column = f"{table}.{_column(NodeExecution, 'status')}"
    guard = _in(guard_column, len(_node_sources(NodeStatus.RUNNING)))
    return (
        f"INSERT INTO {table} ({columns}) SELECT {values} WHERE {_unfinished_execution_sql()} "
        f"ON CONFLICT ({_unique(NodeExecution, 'node_run_once_per_visit')}) "
        f"DO UPDATE SET {', '.join(restart + forget)} WHERE {guard} "
        f"RETURNING {_pk(NodeExecution)}"
    )


@cache
def _node_sources(target: str) -> tuple[str, ...]:
    return sources(NODE_TRANSITIONS, target)


def node_start(cursor: CursorWrapper, row: NodeExecution, owner: str) -> int | None:
    """Insert the running node run's row (or restart one the table lets start) and return its
    key; None (no write) when its execution is finished, owned by another process than `owner`,
    or the row may not start again (the tables say)."""
    params = [
        row.execution_id,
        row.node_id,
        row.node_type,
        row.procedure_name,
        row.status,
        row.sequence,
        row.visit,
        _prepared(NodeExecution, "started_at", row.started_at, cursor),
        _prepared(NodeExecution, "input", row.input, cursor),
        row.attempt,
        row.reused,
        row.execution_id,
        *_live(),
        owner,
        *_node_sources(NodeStatus.RUNNING),
    ]
    cursor.execute(_node_start_sql(), params)
    inserted = cursor.fetchone()
    return None if inserted is None else int(inserted[0])


@cache
def _node_finish_sql(target: str, columns: tuple[str, ...]) -> str:
    node = NodeExecution
    assignments = ", ".join(f"{_column(node, name)} = %s" for name in ("status", *columns))
    guard = _in(_column(node, "status"), len(_node_sources(target)))
    return (
        f"UPDATE {_table(node)} SET {assignments} "
        f"WHERE {_pk(node)} = %s AND {guard} "
        f"AND {_unfinished_execution_sql()}"
    )


def node_move(
    cursor: CursorWrapper, row: NodeExecution, owner: str, *, status: str, values: dict[str, Any]
) -> bool:
    """Move the node run to `status` with `values`, only from a status the table allows, while
    its execution is unfinished and owned by `owner`; whether it was written.

    A node's finish sets its end, duration and output (or error); an attempt after the first also
    sets `attempt` and `attempts`. Each set of columns is its own statement, built once.
    """
    params: list[Any] = [status]
    for name, value in values.items():
        params.append(_prepared(NodeExecution, name, value, cursor))
    params += [row.pk, *_node_sources(status), row.execution_id, *_live(), owner]
    cursor.execute(_node_finish_sql(status, tuple(values)), params)
    return bool(cursor.rowcount)
