"""`manage.py prune [--older-than 30d] [--dry-run]`: delete finished runs past their retention.

Without --older-than, each finished status is kept as long as the settings say
(C4C_RETENTION_DAYS, C4C_RETENTION_DAYS_<STATUS>); with no retention set nothing is deleted.
--older-than 30d deletes every finished run (completed, failed, cancelled) started over 30 days
ago instead. --dry-run prints what would go, per status, and deletes nothing. Running runs are
never deleted. The work is executions.retention's; `c4c prune` calls this command.
"""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from executions import retention


class Command(BaseCommand):
    help = "Delete finished executions past their retention (or --older-than), in short batches."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--older-than",
            metavar="AGE",
            help="prune every finished run started longer ago than AGE (12h, 30d, 2w) instead "
            "of the retention settings",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="print what would be deleted; delete nothing"
        )

    def handle(self, *args: Any, older_than: str | None, dry_run: bool, **options: Any) -> None:
        try:
            age = None if older_than is None else retention.parse_age(older_than)
        except ValueError as exc:
            raise CommandError(f"--older-than: {exc}") from exc
        limits = retention.cutoffs(older_than=age)
        if not limits:
            self.stdout.write(
                "No retention is set (C4C_RETENTION_DAYS): every run is kept. "
                "Pass --older-than AGE to prune anyway."
            )
            return
        if dry_run:
            planned = retention.plan(limits)
            self.stdout.write("Dry run: nothing is deleted. Would delete:")
            for status, before in limits.items():
                count = planned.executions.get(status, 0)
                self.stdout.write(
                    f"  {status:<10} {count:>8}  (started before {before:%Y-%m-%d %H:%M %Z})"
                )
            self.stdout.write(f"  {'snapshots':<10} {planned.snapshots:>8}  (definitions unused)")
            return
        report = retention.prune(limits)
        for status in limits:
            self.stdout.write(f"  {status:<10} {report.executions.get(status, 0):>8}  deleted")
        self.stdout.write(f"  {'snapshots':<10} {report.snapshots:>8}  deleted")
