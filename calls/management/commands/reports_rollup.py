"""`python manage.py reports_rollup [--from DAY] [--to DAY]`: rebuild the report rollups on demand."""

from __future__ import annotations

import time
from argparse import ArgumentParser
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from calls.reports.rollups import rollups_rebuild


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"not a day (YYYY-MM-DD): {value!r}") from exc


class Command(BaseCommand):
    help = (
        "Rebuild the report rollups for local days FROM … TO (both included; default: from the first "
        "call up to the current hour). Safe at any time: reports stay right during the rebuild."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--from", dest="first", type=_day, default=None, help="first local day")
        parser.add_argument("--to", dest="last", type=_day, default=None, help="last local day")

    def handle(self, *args: Any, first: date | None, last: date | None, **options: Any) -> None:
        if first and last and last < first:
            raise CommandError("--to is before --from")
        started = time.monotonic()
        result = rollups_rebuild(first_day=first, last_day=last)
        self.stdout.write(
            f"rebuilt {result.start.isoformat()} – {result.end.isoformat()}: {result.hour_rows} hour rows, "
            f"{result.day_rows} day rows in {time.monotonic() - started:.1f} s"
        )
