"""The executions app's settings: every C4C_* name it reads, its default and what it is for.

The app reads its settings here and nowhere else, so a project that installs it sets only what it
wants to change (c4c_site.settings sets every one from the environment). Each is read once and
kept until a setting changes (workflows.conf.setting), so a test's `settings` override applies at
once.

One library setting has no default the app can give and is checked at start-up instead (see
`check_event_storage`): EVENTSTREAM_STORAGE_CLASS must name the storage that numbers and replays
events, or the SSE streams have no event ids to start or resume from.
"""

import socket
from functools import cache
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error
from django.db.utils import load_backend
from django.utils.module_loading import import_string

from workflows.conf import AppSettings, setting

MEMORY_EVENT_STORAGE = "executions.live.buffer.MemoryEventStorage"


@cache
def _vendor(engine: str) -> str:
    """The database vendor of an ENGINE, read from its backend: asking `connections` instead makes
    a connection object in every async context (each request)."""
    return str(load_backend(engine).DatabaseWrapper.vendor)


class ExecutionsSettings(AppSettings):
    """Typed, documented reads of the project's settings; the default where one is not set."""

    @setting
    def C4C_MAX_PAYLOAD_BYTES(self) -> int:
        """A stored input/output/attribute larger than this becomes a truncation marker."""
        return int(getattr(settings, "C4C_MAX_PAYLOAD_BYTES", 64 * 1024))

    @setting
    def C4C_DISPATCH(self) -> str:
        """Where runs go: "inline" (this process's thread pool) or "celery" (workers)."""
        return str(getattr(settings, "C4C_DISPATCH", "inline"))

    @setting
    def C4C_WORKER_THREADS(self) -> int:
        """Runs the inline pool runs at once: 4 on SQLite (one writer), 8 on other databases."""
        threads = getattr(settings, "C4C_WORKER_THREADS", None)
        if threads is None:
            threads = 4 if _vendor(settings.DATABASES["default"]["ENGINE"]) == "sqlite" else 8
        return int(threads)

    @setting
    def C4C_MAX_QUEUED(self) -> int:
        """Runs that may wait for a pool thread; past it the API answers 503."""
        return int(getattr(settings, "C4C_MAX_QUEUED", 1_000))

    @setting
    def C4C_SERVER_ID(self) -> str:
        """The first part of this process's name as the owner of a run's lease (logs, admin)."""
        return str(getattr(settings, "C4C_SERVER_ID", "") or socket.gethostname())

    @setting
    def C4C_LEASE_SECONDS(self) -> float:
        """How long a run's lease lasts unrenewed: its process renews it every third of this, and
        once it has passed (the process died) another process takes the run over and resumes it."""
        return float(getattr(settings, "C4C_LEASE_SECONDS", 30))

    @setting
    def C4C_CLAIM_SECONDS(self) -> float:
        """How long a run queued for a Celery worker may wait to be claimed before the sweep
        sends it again (its message may be lost: a broker restarted without persistence)."""
        return float(getattr(settings, "C4C_CLAIM_SECONDS", 300))

    @setting
    def C4C_CANCEL_CHECK_SECONDS(self) -> float:
        """How often a process running runs reads whether another process cancelled one of them
        (one indexed read, only while it runs something): a cancel's reach across processes."""
        return float(getattr(settings, "C4C_CANCEL_CHECK_SECONDS", 0.5))

    @setting
    def C4C_GROUP_COMMIT(self) -> bool:
        """Node writes of concurrent runs go through one writer thread and commit together
        (executions.commits); off (the default: on the measured boxes the hand-off cost more
        than the commits it saved, BENCHMARKS.md), each commits on its run's thread."""
        return bool(getattr(settings, "C4C_GROUP_COMMIT", False))

    @setting
    def C4C_GROUP_COMMIT_WAIT_MS(self) -> float:
        """How long the writer waits for more writes before it commits a batch (0: it takes
        only what is waiting; batches still grow with the load)."""
        return float(getattr(settings, "C4C_GROUP_COMMIT_WAIT_MS", 0))

    @setting
    def C4C_BROKER_TIMEOUT(self) -> float:
        """Seconds a run's message may take to reach the Celery broker; past it the API answers
        503 and nothing is left started."""
        return float(getattr(settings, "C4C_BROKER_TIMEOUT", 5))

    @setting
    def C4C_CELERY_APP(self) -> str:
        """The Celery app runs are sent with (C4C_DISPATCH=celery), as a dotted path imported at
        the first send. Empty (the default): `celery.current_app`, the app your project loads with
        Django in Celery's documented pattern. Naming it instead keeps Celery out of processes
        that never send a run."""
        return str(getattr(settings, "C4C_CELERY_APP", ""))

    @setting
    def C4C_SECRETS_KEYS(self) -> tuple[str, ...]:
        """The keys that seal a run's secrets (executions.secrets), newest first: the first
        seals, every one unseals, so an old key stays listed until its runs are gone. Empty: one
        derived from SECRET_KEY (and SECRET_KEY_FALLBACKS unseal)."""
        return tuple(str(key) for key in getattr(settings, "C4C_SECRETS_KEYS", []) if key)

    @setting
    def C4C_RETENTION_DAYS(self) -> float | None:
        """Days a finished run is kept (by its start time) before pruning deletes it. None (the
        default): kept forever, so an upgrade deletes nothing by surprise."""
        days = getattr(settings, "C4C_RETENTION_DAYS", None)
        return None if days is None else float(days)

    def retention_days(self, status: str) -> float | None:
        """Days runs that ended `status` are kept: C4C_RETENTION_DAYS_<STATUS> (completed,
        failed, cancelled), else C4C_RETENTION_DAYS; None or infinity: kept forever."""
        days = getattr(settings, f"C4C_RETENTION_DAYS_{status.upper()}", None)
        kept = self.C4C_RETENTION_DAYS if days is None else float(days)
        return None if kept is None or kept == float("inf") else kept

    @setting
    def C4C_PRUNE_INTERVAL_SECONDS(self) -> float:
        """How often a serving process prunes on its own (inline dispatch, retention set); a
        backlog is worked through a short slice per heartbeat tick until it is gone."""
        return float(getattr(settings, "C4C_PRUNE_INTERVAL_SECONDS", 600))

    @setting
    def C4C_PRUNE_BATCH(self) -> int:
        """Executions deleted per transaction, each batch its own short transaction so a writer
        waits one batch at most (bench/prune.py times the sizes)."""
        return int(getattr(settings, "C4C_PRUNE_BATCH", 200))

    @setting
    def C4C_REPLAY_EVENTS(self) -> int:
        """Events each SSE channel keeps for Last-Event-ID replay."""
        return int(getattr(settings, "C4C_REPLAY_EVENTS", 500))

    @setting
    def C4C_REPLAY_CHANNELS(self) -> int:
        """Channels the replay buffer keeps; the least recently used are forgotten."""
        return int(getattr(settings, "C4C_REPLAY_CHANNELS", 5_000))

    @setting
    def C4C_REPLAY_BYTES(self) -> int:
        """Bytes the replay buffer holds in all channels together."""
        return int(getattr(settings, "C4C_REPLAY_BYTES", 8 * 1024 * 1024))

    @setting
    def C4C_UPDATE_COALESCE_MS(self) -> float:
        """How long an executions.update of a running execution is held for the next ones of it
        to merge into while the list stream is listened to (live.events); with nobody listening,
        updates within it share a stats read. 0 sends each as it comes."""
        return float(getattr(settings, "C4C_UPDATE_COALESCE_MS", 5))


app_settings = ExecutionsSettings()


def check_event_storage(**kwargs: Any) -> list[CheckMessage]:
    """A project without EVENTSTREAM_STORAGE_CLASS fails at start-up, not at its first stream."""
    if getattr(settings, "EVENTSTREAM_STORAGE_CLASS", None):
        return []
    return [
        Error(
            "EVENTSTREAM_STORAGE_CLASS is not set: the executions SSE streams need a storage "
            "that numbers and replays events.",
            hint=f'Set EVENTSTREAM_STORAGE_CLASS = "{MEMORY_EVENT_STORAGE}" (in-process), or '
            '"django_eventstream.storage.RedisStorage" with EVENTSTREAM_REDIS and '
            "EVENTSTREAM_STORAGE_CONNECTION to fan events out between processes.",
            id="executions.E001",
        )
    ]


def check_celery_app(**kwargs: Any) -> list[CheckMessage]:
    """A C4C_CELERY_APP that names nothing fails at start-up, not as a 503 at the first run."""
    path = app_settings.C4C_CELERY_APP
    if app_settings.C4C_DISPATCH != "celery" or not path:
        return []
    from celery import Celery

    try:
        app = import_string(path)
    except ImportError as exc:
        problem = f"cannot be imported: {exc}"
    else:
        if isinstance(app, Celery):
            return []
        problem = f"is a {type(app).__name__}, not a Celery app"
    return [
        Error(
            f"C4C_CELERY_APP {path!r} {problem}.",
            hint='Name your project\'s Celery app, as in "myproject.celery.app", or leave it '
            "empty to send with celery.current_app.",
            id="executions.E002",
        )
    ]
