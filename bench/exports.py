"""Benchmark: the call log's XLSX and CSV exports of 150,000 calls — memory and time (PostgreSQL).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mttcrm \\
        .venv/bin/python bench/exports.py --days 30 --per-day 5000

It never touches the database named in DATABASE_URL: it creates `<that name>_bench_exports` next to it,
migrates it, seeds `--days` × `--per-day` calls ending today (generate_series, server-side; every call
with a contact, an operator, a workplace and a line), then downloads `/calls/export.xlsx` and
`/calls/export.csv` for the period through Django's test client (the view, the query, the writer),
reading the response chunk by chunk and throwing it away, while a thread samples the process's resident
memory (VmRSS) every 5 ms. It prints the time, the idle and peak RSS and the growth; then opens the
workbook with openpyxl (read-only) and checks the row count and the cell types. Goal: peak RSS growth
under 100 MB for 150,000 rows. The database is dropped at the end (--keep keeps it).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from _common import bench_url, recreate_database

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TZ = "Europe/Moscow"


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class Sampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = rss_bytes()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(0.005)


SEED_SQL = """
INSERT INTO contacts_contact (id, name, company, email, notes, source, created_at, updated_at)
SELECT g, 'Клиент ' || g, 'ООО Компания ' || (g %% 500), '', '', 'call', now(), now()
FROM generate_series(1, %(n)s) AS g;
INSERT INTO calls_call (id, integration_id, call_key, direction, status, client_number, client_number_raw,
                        contact_id, line_id, line_number, workplace_id, operator_id, initiated_by_id,
                        started_at, answered_at, ended_at, wait_seconds, talk_seconds, end_reason,
                        end_reason_code, created_at, updated_at, comment)
SELECT g, %(integration)s, 'bench-export-' || g || '~' || md5(g::text), 'incoming', 'answered',
       '+7921' || lpad(g::text, 7, '0'), '', g, %(line)s, '74950000000', %(workplace)s, %(operator)s, NULL,
       (%(first_day)s::date::timestamp AT TIME ZONE %(tz)s) + (g - 1) * %(step)s * interval '1 second',
       (%(first_day)s::date::timestamp AT TIME ZONE %(tz)s) + ((g - 1) * %(step)s + 12) * interval '1 second',
       NULL, 12 + g %% 60, 30 + g %% 600, 'Answer leg disconnected', '', now(), now(),
       CASE WHEN g %% 3 = 0 THEN 'Клиент просил перезвонить после 15:00' ELSE '' END
FROM generate_series(1, %(n)s) AS g;
"""


def seed(days: int, per_day: int) -> tuple[str, str]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from integrations.models import ExternalNumber, Integration, Workplace

    integration = Integration.objects.create(name="Bench", client_id="bench", client_secret="bench")
    operator = get_user_model().objects.create_user("op", first_name="Мария", last_name="Иванова")
    workplace = Workplace.objects.create(integration=integration, sip_id="883100000001", user=operator)
    line = ExternalNumber.objects.create(integration=integration, number="74950000000")
    last_day = timezone.localdate()
    first_day = last_day - timedelta(days=days - 1)
    with connection.cursor() as cursor:
        # One statement per execute: parameters are bound on the server (settings: server_side_binding).
        params = {
            "n": days * per_day,
            "integration": integration.pk,
            "line": line.pk,
            "workplace": workplace.pk,
            "operator": operator.pk,
            "first_day": first_day.isoformat(),
            "tz": TZ,
            "step": days * 86400 / (days * per_day),  # seconds between two calls
        }
        for statement in filter(str.strip, SEED_SQL.split(";")):
            cursor.execute(statement, params)
        cursor.execute("VACUUM (ANALYZE) calls_call")
        cursor.execute("VACUUM (ANALYZE) contacts_contact")
    return first_day.isoformat(), last_day.isoformat()


def download(client: Any, url: str, params: dict[str, str], keep: Any = None) -> dict[str, float]:
    sampler = Sampler()
    idle = rss_bytes()
    sampler.start()
    started = time.perf_counter()
    response = client.get(url, params)
    assert response.status_code == 200, response.status_code
    size = 0
    for chunk in response.streaming_content:
        size += len(chunk)
        if keep is not None:
            keep.write(chunk)
    elapsed = time.perf_counter() - started
    response.close()
    sampler.stop.set()
    sampler.join()
    return {"seconds": elapsed, "idle": idle / 2**20, "peak": sampler.peak / 2**20, "bytes": size}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-day", type=int, default=5000)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    source_url = os.environ.get("DATABASE_URL", "")
    if not source_url:
        sys.exit("set DATABASE_URL to a PostgreSQL database; the benchmark runs in <that name>_bench_exports")
    url, name, maintenance = bench_url(source_url, suffix="_bench_exports")
    print(f"bench database: {name}", flush=True)
    recreate_database(maintenance, name)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mttcrm.settings")
    os.environ.setdefault("DEBUG", "false")
    os.environ["ALLOWED_HOSTS"] = "testserver"
    from cryptography.fernet import Fernet

    os.environ.setdefault("SECRET_KEY", "bench-" + Fernet.generate_key().decode())
    os.environ.setdefault("FIELD_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    ok = False
    try:
        import django
        from django.core.management import call_command

        django.setup()
        import openpyxl
        from django.contrib.auth import get_user_model
        from django.test import Client

        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        first_day, last_day = seed(args.days, args.per_day)
        rows = args.days * args.per_day
        print(f"seeded {rows:,} calls ({first_day} – {last_day}) in {time.perf_counter() - started:.1f} s")
        client = Client()
        client.force_login(
            get_user_model().objects.create_superuser("bench-admin", "a@example.com", "x-1234567")
        )
        params = {"period": "custom", "date_from": first_day, "date_to": last_day}
        client.get("/calls/export.csv", {"period": "today"})  # warm up: imports, first query
        print(f"load average {os.getloadavg()}")
        with tempfile.TemporaryFile() as workbook:
            results = {
                "xlsx": download(client, "/calls/export.xlsx", params, keep=workbook),
                "csv": download(client, "/calls/export.csv", params),
            }
            for kind, r in results.items():
                print(
                    f"  {kind:<5} {rows:,} rows: {r['seconds']:.1f} s, {r['bytes'] / 2**20:.1f} MB; RSS idle "
                    f"{r['idle']:.1f} MB, peak {r['peak']:.1f} MB, growth {r['peak'] - r['idle']:.1f} MB"
                )
            workbook.seek(0)
            book = openpyxl.load_workbook(io.BytesIO(workbook.read()), read_only=True)
            sheet = book.active
            count, first = 0, None
            for row in sheet.iter_rows(min_row=2, values_only=True):
                count += 1
                first = first or row
            assert first is not None
            print(
                f"  opened with openpyxl: {count:,} data rows; first row: started_at {first[1]!r}, ", end=""
            )
            print(f"wait {first[9]!r}")
            ok = (
                count == rows
                and isinstance(first[1], datetime)
                and isinstance(first[9], timedelta)
                and all(r["peak"] - r["idle"] < 100 for r in results.values())
            )
            print("CHECK " + ("ok" if ok else "FAILED"))
    finally:
        from django.db import connections

        connections.close_all()
        if args.keep:
            print(f"kept database {name}")
        else:
            recreate_database(maintenance, name, drop_only=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
