"""`manage.py schedules [list | sync | run [--seconds N]]`: see and run the schedules.

- `list` (the default): each schedule's id, workflow, cron and zone, whether it is on, where it
  comes from, and its next slot in its zone;
- `sync`: copy the schedules declared in code into the table (a scheduler does it at start);
- `run`: run a scheduler in the foreground (sync first) until interrupted or for N seconds: a
  process of its own for deployments that keep the scheduler out of their web servers
  (C4C_SCHEDULES_ENABLED=false there). Runs it starts go where C4C_DISPATCH says: this
  process's pool (it waits for them on its way out, up to C4C_LEASE_SECONDS) or Celery.
"""

import signal
import time
from argparse import ArgumentParser
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand

from executions.conf import app_settings as executions_settings
from executions.leases import runs
from schedules import declared
from schedules.models import Schedule
from schedules.scheduler import Scheduler
from schedules.slots import local


class Command(BaseCommand):
    help = "List the schedules with their next slot, sync the declared ones, or run a scheduler."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("action", nargs="?", choices=["list", "sync", "run"], default="list")
        parser.add_argument(
            "--seconds", type=float, help="run: stop after this many seconds (default: never)"
        )

    def handle(self, *args: Any, action: str, seconds: float | None, **options: Any) -> None:
        if action == "sync":
            changed = declared.sync()
            self.stdout.write(f"{len(changed)} schedule(s) created or changed")
        elif action == "run":
            self._run(seconds)
        else:
            self._list()

    def _list(self) -> None:
        rows = [
            (
                s.schedule_id,
                s.workflow_id,
                f"{s.cron} ({s.timezone})",
                "on" if s.enabled else "off",
                s.source,
                local(s.next_slot, s.timezone) if s.enabled else "—",
            )
            for s in Schedule.objects.all()
        ]
        header = ("ID", "WORKFLOW", "CRON", "ENABLED", "SOURCE", "NEXT")
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            self.stdout.write(
                "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
            )

    def _run(self, seconds: float | None) -> None:
        scheduler = Scheduler()

        def stop(signum: int, frame: FrameType | None) -> None:
            scheduler.stop(timeout=0)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        until = None if seconds is None else time.monotonic() + seconds
        self.stdout.write("Scheduler running" + ("" if until is None else f" for {seconds:g} s"))
        scheduler.run(until=until)
        deadline = time.monotonic() + executions_settings.C4C_LEASE_SECONDS
        while runs.snapshot() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.stdout.write("Scheduler stopped")
