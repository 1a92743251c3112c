"""Group commit: the node writes of concurrent runs, committed together by one writer thread.

Every node run costs two or three commits (its start, its end, its spans in batches). With many
runs at once, each commit on its own thread queues for the database's write lock (SQLite's busy
wait sleeps in steps of milliseconds) or pays its own WAL flush (PostgreSQL). Here the runtime
hands those writes to the process's writer thread, which takes every write waiting at that moment
(and, with C4C_GROUP_COMMIT_WAIT_MS, waits that long for more), runs them in one transaction and
commits once. Idle, a write waits for nobody; under load the batches grow by themselves.

The guarantees do not move: the caller blocks until its write is committed (or failed), so the
event it then sends still follows the commit, and a node's completion is durable before the next
node starts. Each write keeps its own outcome: a refused one (store.TransitionError, a guard that
matched no row) fails only its caller; on PostgreSQL each write runs in a savepoint, since an
error there aborts the transaction (SQLite aborts only the statement). A write made inside a
transaction of the caller's (a test's, or a store function's own) runs there, on the caller's
connection, as before.
"""

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.db import DEFAULT_DB_ALIAS, close_old_connections, connections, transaction

from .conf import app_settings

logger = logging.getLogger(__name__)

T = TypeVar("T")
# The most writes one commit takes: a bound on how long the others wait behind it.
MAX_BATCH = 256


class _Write(Generic[T]):
    __slots__ = ("call", "done", "error", "value")

    def __init__(self, call: Callable[[], T]) -> None:
        self.call = call
        self.done = threading.Event()
        self.value: T | None = None
        self.error: BaseException | None = None

    def result(self) -> T:
        self.done.wait()
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


# Queued after the writes a stopping writer still commits: the thread ends when it meets it.
_STOP: _Write[None] = _Write(lambda: None)


class GroupCommitter:
    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[_Write[Any]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def write(self, function: Callable[..., T], /, **kwargs: Any) -> T:
        """`function(**kwargs)` (a store write), committed with the writes waiting beside it."""
        if not app_settings.C4C_GROUP_COMMIT or connections[DEFAULT_DB_ALIAS].in_atomic_block:
            return function(**kwargs)
        write: _Write[T] = _Write(lambda: function(**kwargs))
        self._queue.put(write)
        self._ensure_running()
        return write.result()

    def _ensure_running(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="c4c-group-commit", daemon=True
                )
                self._thread.start()

    def _batch(self) -> list[_Write[Any]]:
        batch = [self._queue.get()]
        wait = app_settings.C4C_GROUP_COMMIT_WAIT_MS / 1000
        deadline = time.monotonic() + wait
        while len(batch) < MAX_BATCH:
            try:
                left = deadline - time.monotonic()
                batch.append(
                    self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
                )
            except queue.Empty:
                break
        return batch

    def _loop(self) -> None:
        while True:
            batch = self._batch()
            stopping = _STOP in batch
            batch = [write for write in batch if write is not _STOP]
            try:
                if batch:
                    self._commit(batch)
            except BaseException as exc:  # the commit itself: every write of it failed
                for write in batch:
                    if write.error is None:
                        write.error = exc
                close_old_connections()
            finally:
                for write in batch:
                    write.done.set()
            if stopping:
                connections.close_all()
                return

    def stop(self) -> None:
        """Commit what is queued, close the writer's connection and end its thread (a process
        shutting down, a test done with group commit): PostgreSQL cannot drop a database that
        an idle writer still holds a session on. A later write starts a new writer."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        self._queue.put(_STOP)
        thread.join()

    @staticmethod
    def _commit(batch: list[_Write[Any]]) -> None:
        savepoints = connections[DEFAULT_DB_ALIAS].vendor == "postgresql"
        with transaction.atomic():
            for write in batch:
                try:
                    if savepoints:
                        with transaction.atomic():
                            write.value = write.call()
                    else:
                        write.value = write.call()
                except Exception as exc:
                    write.error = exc

    def reset_after_fork(self) -> None:
        """A forked child (a Celery pool process) has no writer thread: it starts its own."""
        self._queue = queue.SimpleQueue()
        self._thread = None
        self._lock = threading.Lock()


committer = GroupCommitter()
os.register_at_fork(after_in_child=committer.reset_after_fork)
