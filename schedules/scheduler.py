"""The scheduler: one daemon thread per serving process that fires due slots.

Every daphne process and every Celery node's main process runs one (schedules.startup), and
`manage.py schedules run` runs one in the foreground. They need not know of each other: a slot
is claimed in the database (schedules.store), so each fires once however many run. A tick every
C4C_SCHEDULE_TICK_SECONDS (0.5 s) does, in order:

- claim the slots of every schedule due by now and start the pending ones;
- retake fires left pending past C4C_SCHEDULE_RETRY_SECONDS (a scheduler died between claiming
  a slot and starting its run, or the run pool was full) and start them;
- release the next queued slot of each schedule whose previous run has ended.

Idle, a tick costs three indexed reads. The thread syncs the code-declared schedules into the
table (schedules.declared) before its first tick.
"""

import logging
import os
import threading
import time
from datetime import datetime, timedelta

from django.db import close_old_connections, connections
from django.utils import timezone

from executions.store import process_owner

from . import declared, store
from .conf import app_settings
from .models import FireStatus, Schedule, ScheduleFire

logger = logging.getLogger(__name__)

# Schedules claimed, and stalled fires retaken, per tick at most: the rest wait a tick.
TICK_BATCH = 100


def tick(now: datetime | None = None) -> list[ScheduleFire]:
    """One pass of the scheduler (see the module docstring); returns the fires it recorded or
    started, for tests and the foreground command's log."""
    now = now or timezone.now()
    owner = process_owner()
    handled: list[ScheduleFire] = []
    for schedule in Schedule.objects.due(now)[:TICK_BATCH]:
        for fire in store.slots_claim(schedule=schedule, now=now, owner=owner):
            if fire.status == FireStatus.PENDING:
                store.fire_start(fire=fire, now=now)
            handled.append(fire)
    stalled_before = now - timedelta(seconds=app_settings.C4C_SCHEDULE_RETRY_SECONDS)
    for fire in ScheduleFire.objects.stalled(stalled_before, limit=TICK_BATCH):
        if store.fire_retake(fire=fire, now=now, owner=owner):
            logger.warning("Schedule %s: starting slot %s again", fire.schedule, fire.slot)
            handled.append(store.fire_start(fire=fire, now=now))
    for fire in store.queue_release(now=now, owner=owner):
        handled.append(store.fire_start(fire=fire, now=now))
    return handled


class Scheduler:
    """The process's scheduler thread: started once, stopped by `stop()` or the process's end."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self.run, name="c4c-scheduler", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def run(self, until: float | None = None) -> None:
        """Sync the declared schedules, then tick until stopped (or `until`, a monotonic time)."""
        synced = False
        stop = self._stop
        while until is None or time.monotonic() < until:
            try:
                close_old_connections()
                if not synced:
                    declared.sync()
                    synced = True
                tick()
            except Exception:
                logger.exception("Scheduler tick failed; retrying at the next one")
                connections.close_all()
            if stop.wait(app_settings.C4C_SCHEDULE_TICK_SECONDS):
                break
        connections.close_all()

    def reset_after_fork(self) -> None:
        """A forked child (a Celery pool process) has no scheduler thread and starts none."""
        self._lock = threading.Lock()
        self._thread = None
        self._stop = threading.Event()


scheduler = Scheduler()

os.register_at_fork(after_in_child=scheduler.reset_after_fork)
