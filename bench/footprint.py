"""Database bytes on disk, measured the same way before and after a phase."""

import os
from dataclasses import dataclass

from bench.server import Server


@dataclass(frozen=True)
class DbSnapshot:
    bytes_on_disk: int
    executions: int


def db_snapshot(server: Server) -> DbSnapshot:
    """Checkpoint the WAL into the main file first, so the size counts what is really kept."""
    connection = server.db_connect()
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (executions,) = connection.execute("SELECT count(*) FROM executions_execution").fetchone()
    finally:
        connection.close()
    size = 0
    for suffix in ("", "-wal"):
        path = f"{server.db_path}{suffix}"
        if os.path.exists(path):
            size += os.path.getsize(path)
    return DbSnapshot(bytes_on_disk=size, executions=executions)


def bytes_per_execution(before: DbSnapshot, after: DbSnapshot) -> float | None:
    added = after.executions - before.executions
    if added <= 0:
        return None
    return round((after.bytes_on_disk - before.bytes_on_disk) / added, 1)
