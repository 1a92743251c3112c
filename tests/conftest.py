"""Shared fixtures: a REAL daphne server (subprocess) on a free port and its own SQLite file.

`daphne_server` starts `c4c serve` (migrate + daphne, the same path as production) against a
temporary database and stops it after the test; `.restart()` stops it and serves the same
database again on the same port, `.crash()` kills it without a clean shutdown. `shared_server` is
one such server for the whole session, for tests that neither restart nor crash it: starting a
server (migrate, then daphne) takes seconds, which was most of what each live test cost.

Passwords are hashed with MD5 in tests (pytest_configure): the production hasher is slow on
purpose, and every admin_client login would pay for it. WhiteNoise finds a static file when it is
asked for (autorefresh) instead of listing every one up front: each test client builds its own
middleware chain, and the listing was a sixth of the fast suite's time.

Every SSE event sent in-process during the session, and every one a test reads from a live server
(tests/executions/conftest.py SseReader), is checked against its shape in
executions/live/payloads.py; a test that sent or received one that does not fit fails.
"""

import functools
import gc
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from django.conf import settings
from pytest_django import DjangoDbBlocker

if TYPE_CHECKING:
    from django.test import TransactionTestCase

ROOT = Path(__file__).resolve().parent.parent
C4C = Path(sys.executable).with_name("c4c")
START_TIMEOUT_S = 30.0


class EventContract:
    """Collects the events that break their contract, from any thread, until a test ends."""

    def __init__(self) -> None:
        self.violations: list[str] = []

    def check(self, event_type: str, data: str) -> None:
        from executions.live.payloads import EventContractError, validate_event

        try:
            validate_event(event_type, data)
        except EventContractError as exc:
            self.violations.append(str(exc))

    def assert_kept(self) -> None:
        broken, self.violations = self.violations, []
        if broken:
            pytest.fail(
                "events that do not fit executions/live/payloads.py:\n" + "\n".join(broken),
                pytrace=False,
            )


event_contract = EventContract()


@pytest.fixture(scope="session", autouse=True)
def _sent_events_are_checked() -> Iterator[None]:
    """Every event leaves through executions.live.events._send: check each payload on its way
    (encoding it, which outside the tests waits for a reader; inspect.unwrap finds the door)."""
    from executions.live import events
    from executions.live.buffer import Payload

    send = events._send

    @functools.wraps(send)
    def checked_send(channels: tuple[str, ...], event_type: str, data: Payload) -> None:
        event_contract.check(event_type, data.text)
        send(channels, event_type, data)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(events, "_send", checked_send)
        yield


@pytest.fixture(scope="session", autouse=True)
def _urls_loaded_first() -> None:
    """The URLconf is loaded before any test registers a procedure of its own, as a server loads
    it after start-up: the API's router takes the registry as it is then (one /rpc/<name>
    operation each), and would keep a test's procedure, whose contract /openapi.json then no
    longer holds, after that test ended."""
    from django.urls import get_resolver

    assert get_resolver().url_patterns


@pytest.fixture(autouse=True)
def events_keep_their_contract(_sent_events_are_checked: None) -> Iterator[EventContract]:
    """Fails the test during which an event that breaks its contract was sent or read."""
    yield event_contract
    event_contract.assert_kept()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """When a test's body ends, before any fixture is torn down: a run it left going in this
    process is cancelled, and every walk and attempt on a procedure thread (an abandoned one too)
    waited for. A write racing the database's flush deadlocks PostgreSQL's TRUNCATE, and one
    meeting pytest-django's blocker mid-transaction leaves its thread's connection unusable."""
    yield
    from executions import runtime
    from executions.leases import runs
    from workflows.attempts import procedure_threads

    for execution_id, held in runs.snapshot().items():
        try:
            runtime.cancel(execution_id)  # as a user would: the row first, then the work
        except Exception:  # ended meanwhile, or a test without the database
            held.control.cancel("The test that started this run has ended")
    deadline = time.monotonic() + START_TIMEOUT_S
    while (runs.snapshot() or procedure_threads.working()) and time.monotonic() < deadline:
        time.sleep(0.01)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DaphneServer:
    def __init__(self, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.db_path = workdir / "live.sqlite3"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "daphne.log"
        self.extra_env = env or {}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{self.db_path}",
            "C4C_DELAY_SCALE": os.environ.get("C4C_DELAY_SCALE", "1"),
            # One process, as before `serve --workers` (tests/test_serve_workers.py tests more).
            "C4C_WORKERS": "1",
            **self.extra_env,
        }
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(C4C), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited early:\n{self.log()}")
            try:
                # /health: open whether or not the server requires sign-in (C4C_REQUIRE_AUTH).
                with urllib.request.urlopen(f"{self.url}/health", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"daphne did not answer within {START_TIMEOUT_S}s:\n{self.log()}")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def crash(self) -> None:
        """Die as a power cut would: no shutdown, runs left as they were."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def daphne_server(tmp_path: Path) -> Iterator[DaphneServer]:
    server = DaphneServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaphneServer]:
    """One server for every test that only reads or starts runs of its own.

    Its database holds whatever earlier tests left, so a test filters by the ids it made and
    compares counters before and after, never with an empty state. Delays are scaled down so the
    browser tests' one-minute example runs in seconds.
    """
    server = DaphneServer(tmp_path_factory.mktemp("shared-server"), env={"C4C_DELAY_SCALE": "0.1"})
    server.start()
    try:
        yield server
    finally:
        server.stop()


def pytest_configure(config: pytest.Config) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.WHITENOISE_AUTOREFRESH = True


def pytest_collection_finish(session: pytest.Session) -> None:
    """What was imported and collected lives all session: the garbage collector stops walking
    it. Each full collection walked millions of such objects, a sixth of the fast suite's time."""
    gc.freeze()


SLOW_MODULE = re.compile(r"^pytestmark = .*\bpytest\.mark\.slow\b", re.MULTILINE)


@functools.cache
def every_test_is_slow(path: Path) -> bool:
    """A test module whose pytestmark marks it slow, or a directory holding only such modules."""
    if path.is_dir():
        modules = list(path.rglob("test_*.py"))
        return bool(modules) and all(every_test_is_slow(module) for module in modules)
    return path.name.startswith("test_") and bool(SLOW_MODULE.search(path.read_text()))


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The fast suite (-m "not slow") does not even import what it would deselect: those modules'
    imports (Playwright, psycopg, schemathesis with hypothesis, Celery) cost each process ~0.5 s."""
    fast_suite = " ".join(str(config.getoption("markexpr")).split()) == "not slow"
    return True if fast_suite and every_test_is_slow(collection_path) else None


class MigratedRows:
    """The rows the migrations and post_migrate leave in the test database (content types,
    permissions, the groups "viewer", "operator" and "admin"), put back after each flush.

    A transactional test ends with a flush that empties every table. Django then emits
    post_migrate, whose receivers rebuild the content types and permissions one app at a time, and
    the groups (made by a migration) are gone. That cost ~20 ms per test, a fifth of the fast
    suite. The rows are instead copied once into tables of their own (Django does not know them,
    so no flush empties them) and copied back in one transaction: every foreign key Django makes
    is deferred to the commit, so the order of the tables does not matter.

    The flush itself is Django's SQL, built once per database: the `flush` command that
    TransactionTestCase calls built it again for every test, by introspection, after looking for a
    `management` module in every app, and built an argument parser first.
    """

    PREFIX = "_migrated_"

    def __init__(self) -> None:
        self.tables: list[str] = []
        self.flush_sql: dict[str, list[str]] = {}

    def keep(self) -> None:
        from django.db import connection

        quote = connection.ops.quote_name
        with connection.cursor() as cursor:
            for table in connection.introspection.django_table_names(only_existing=True):
                cursor.execute(f"SELECT 1 FROM {quote(table)} LIMIT 1")
                if cursor.fetchone() is None:
                    continue
                kept = quote(self.PREFIX + table)
                cursor.execute(f"DROP TABLE IF EXISTS {kept}")
                cursor.execute(f"CREATE TABLE {kept} AS SELECT * FROM {quote(table)}")
                self.tables.append(table)

    def flush(self, test: "TransactionTestCase") -> None:
        """Stands in for TransactionTestCase._fixture_teardown (none of our tests sets the
        available_apps or serialized_rollback it also handles)."""
        from django.core.management.color import no_style
        from django.core.management.sql import sql_flush
        from django.db import connections, transaction

        # The databases Django's own teardown flushes (django-stubs omits the private method).
        for db in test._databases_names(include_mirrors=False):  # type: ignore[attr-defined]
            connection = connections[db]
            if db not in self.flush_sql:
                self.flush_sql[db] = sql_flush(no_style(), connection, reset_sequences=False)
            quote = connection.ops.quote_name
            with transaction.atomic(using=db), connection.cursor() as cursor:
                for sql in self.flush_sql[db]:
                    cursor.execute(sql)
                for table in self.tables:
                    kept = quote(self.PREFIX + table)
                    cursor.execute(f"INSERT INTO {quote(table)} SELECT * FROM {kept}")


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: DjangoDbBlocker) -> Iterator[None]:
    """The migrated rows are kept and put back after each flush (MigratedRows); connections of
    threads that died are closed before the test database is dropped.

    The test client runs each async view on a fresh event loop; its executor threads die with
    their Django connections held in reference cycles, still open until a garbage collection.
    PostgreSQL refuses to drop a database with open sessions ("is being accessed by other users").
    """
    from django.test import TransactionTestCase

    rows = MigratedRows()
    with django_db_blocker.unblock():
        rows.keep()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TransactionTestCase, "_fixture_teardown", lambda test: rows.flush(test))
        yield
    gc.collect()
