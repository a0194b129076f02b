"""Benchmark: the reports dashboard over a year of calls at 5,000 calls a day (PostgreSQL).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mttcrm \\
        .venv/bin/python bench/reports.py --days 365 --per-day 5000 --repeat 5

It never touches the database named in DATABASE_URL: it creates `<that name>_bench_reports` next to it
(dropping a leftover one first), migrates it, seeds it server-side with generate_series (no Python loop
over rows), runs VACUUM ANALYZE, builds the report rollups from scratch (timed; ``--rollups off`` skips
them: every figure is then counted from the call tables, as before issue 19), then times every dashboard
query (``calls.reports.selectors``) and the whole dashboard page (Django test client: form, all queries,
template) for today, 30 days and the whole year, all lines and one line, each --repeat times, and prints
p50 / max; --explain prints the plans. The database is dropped at the end (--keep keeps it). The role
needs CREATEDB.

Seeded shape (ending today, Moscow time): 70 % incoming (85 % answered, 15 % missed), 30 % outgoing
(60 % answered); 90 % of calls between 08:00 and 19:00; 40 operators with workplaces, 5 lines (the
first one parked: routing decisions on its incoming calls, 30 % transfer, 60 % release, 8 % too late,
2 % failed). Legs: every incoming call has its line leg; answered calls the operator's connected leg, a
fifth of them also an earlier offer to another workplace not taken; missed calls one or two offers not
taken; outgoing calls the operator's leg. Every missed call opens a callback task; 70 % are closed by an
operator 5 minutes to 2 days later.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from _common import bench_url, recreate_database

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OPERATORS = 40
LINES = 5
TZ = "Europe/Moscow"


def timed(label: str, action: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = action()
    print(f"  {label}: {time.perf_counter() - started:.1f} s", flush=True)
    return result


def setup_directory() -> dict[str, Any]:
    from django.contrib.auth import get_user_model

    from calls.models import CallResult
    from integrations.models import ExternalNumber, Integration, Workplace

    integration = Integration.objects.create(name="Bench", client_id="bench", client_secret="bench")
    users = get_user_model().objects
    operators = [
        users.create_user(f"op{i:02d}", first_name=f"Оператор {i:02d}", last_name="Тестов")
        for i in range(OPERATORS)
    ]
    workplaces = [
        Workplace.objects.create(integration=integration, sip_id=f"8831{i:08d}", user=user)
        for i, user in enumerate(operators)
    ]
    lines = [
        ExternalNumber.objects.create(integration=integration, number=f"7495000000{i}", is_parking=(i == 0))
        for i in range(LINES)
    ]
    admin = users.create_superuser("bench-admin", "admin@example.com", "bench-pass-123")
    return {
        "integration": integration.pk,
        "users": [u.pk for u in operators],
        "workplaces": [w.pk for w in workplaces],
        "lines": [line.pk for line in lines],
        "results": list(CallResult.objects.order_by("position").values_list("pk", flat=True)),
        "admin": admin,
    }


CALLS_SQL = """
WITH src AS (
    SELECT g, (g - 1) / %(per_day)s AS day_index,
           random() AS r_dir, random() AS r_out, random() AS r_time, random() AS r_peak,
           random() AS r_wait, random() AS r_talk, random() AS r_line, random() AS r_res,
           floor(random() * %(ops)s)::int AS op
    FROM generate_series(%(a)s::bigint, %(b)s::bigint) AS g
), shaped AS (
    SELECT g, op,
           CASE WHEN r_dir < 0.7 THEN 'incoming' ELSE 'outgoing' END AS direction,
           CASE WHEN r_dir < 0.7 THEN r_out < 0.85 ELSE r_out < 0.6 END AS answered,
           ((%(first_day)s::date + day_index::int)::timestamp AT TIME ZONE %(tz)s)
             + make_interval(secs => CASE WHEN r_peak < 0.9 THEN 28800 + floor(r_time * 39600)
                                          ELSE floor(r_time * 86400) END) AS started_at,
           (5 + floor(r_wait * r_wait * 115))::int AS wait,
           (15 + floor(r_talk * r_talk * 585))::int AS talk,
           (%(lines)s::bigint[])[1 + floor(r_line * %(n_lines)s)::int] AS line_id,
           r_res
    FROM src
)
INSERT INTO calls_call (id, integration_id, call_key, direction, status, client_number, client_number_raw,
                        contact_id, line_id, line_number, workplace_id, operator_id, initiated_by_id,
                        started_at, answered_at, ended_at, wait_seconds, talk_seconds, end_reason,
                        end_reason_code, created_at, updated_at, comment, result_id)
SELECT g, %(integration)s, 'bench-' || g, direction,
       CASE WHEN answered THEN 'answered' WHEN direction = 'incoming' THEN 'missed' ELSE 'not_answered' END,
       '+7921' || lpad((g %% 10000000)::text, 7, '0'), '', NULL, line_id, '',
       CASE WHEN answered OR direction = 'outgoing' THEN (%(workplaces)s::bigint[])[op + 1] END,
       CASE WHEN answered OR direction = 'outgoing' THEN (%(users)s::bigint[])[op + 1] END,
       NULL, started_at,
       CASE WHEN answered THEN started_at + wait * interval '1 second' END,
       started_at + (wait + CASE WHEN answered THEN talk ELSE 0 END) * interval '1 second',
       wait, CASE WHEN answered THEN talk ELSE 0 END, '', '', now(), now(), '',
       -- 7 in 10 answered calls wrapped up with one of the seeded results (issue 16)
       CASE WHEN answered AND r_res < 0.7
            THEN (%(results)s::bigint[])[1 + floor(r_res / 0.7 * %(n_results)s)::int] END
FROM shaped
ORDER BY started_at  -- rows land in the table in time order, as calls do
"""

# One INSERT per kind of leg, from the chunk's calls. Columns the reports do not read get their defaults.
LEG_COLUMNS = """(call_id, integration_id, leg_id, tag, transport_id, direction, is_line_leg, caller_id,
                  caller_account, callee_id, callee_account, callee_display_name, forwarders, field_ranks,
                  workplace_id, states, last_state, started_at, offered_at, connected_at, hidden_at,
                  finished_at, duration, reason, reason_code, first_seen_at)"""
LEG_SQL = {
    "line legs": """
        SELECT id, integration_id, 'L' || id, '', '', direction, true, client_number, '', '', '', '',
               '[]', '{}', NULL, '["finished"]', 'finished', started_at, NULL, NULL, NULL, ended_at,
               NULL, '', '', now()
        FROM calls_call WHERE id BETWEEN %(a)s AND %(b)s AND direction = 'incoming'""",
    "answering legs": """
        SELECT id, integration_id, 'A' || id, '', '', direction, false, client_number, '', '', '', '',
               '[]', '{}', workplace_id, '["connected","finished"]', 'finished', started_at,
               answered_at - interval '3 seconds', answered_at, NULL, ended_at, talk_seconds, '', '', now()
        FROM calls_call
        WHERE id BETWEEN %(a)s AND %(b)s AND direction = 'incoming' AND answered_at IS NOT NULL""",
    "offers not taken (answered calls)": """
        SELECT id, integration_id, 'M' || id, '', '', direction, false, client_number, '', '', '', '',
               '[]', '{}', (%(workplaces)s::bigint[])[1 + (id * 7) %% %(ops)s], '["finished","showing"]',
               'finished', started_at, started_at + interval '1 second', NULL, started_at, answered_at,
               NULL, '', '', now()
        FROM calls_call WHERE id BETWEEN %(a)s AND %(b)s AND direction = 'incoming'
          AND answered_at IS NOT NULL AND id %% 5 = 0""",
    "offers not taken (missed calls)": """
        SELECT id, integration_id, k || id, '', '', direction, false, client_number, '', '', '', '',
               '[]', '{}', (%(workplaces)s::bigint[])[1 + (id * m) %% %(ops)s], '["finished","showing"]',
               'finished', started_at, started_at + interval '1 second', NULL, NULL, ended_at,
               NULL, '', '', now()
        FROM calls_call, (VALUES ('M', 7), ('N', 13)) AS kinds(k, m)
        WHERE id BETWEEN %(a)s AND %(b)s AND status = 'missed' AND (k = 'M' OR id %% 2 = 0)""",
    "outgoing legs": """
        SELECT id, integration_id, 'O' || id, '', '', direction, false, '', '', client_number, '', '',
               '[]', '{}', workplace_id, '["finished"]', 'finished', started_at, NULL, answered_at, NULL,
               ended_at, talk_seconds, '', '', now()
        FROM calls_call WHERE id BETWEEN %(a)s AND %(b)s AND direction = 'outgoing'""",
}

ROUTING_SQL = """
INSERT INTO calls_routingdecision (call_id, leg_id, decision, reason, manager_id, manager_name,
    target_workplace_id, target_sip_id, received_at, decided_at, claimed_at, sent_at, decision_ms,
    latency_ms, command, mtt_answer)
SELECT c.id, l.id,
       CASE WHEN c.id %% 50 < 15 THEN 'transfer' WHEN c.id %% 50 < 45 THEN 'release'
            WHEN c.id %% 50 < 49 THEN 'too_late' ELSE 'failed' END,
       CASE WHEN c.id %% 50 < 15 THEN 'manager_free' ELSE 'no_manager' END,
       NULL, '', NULL, '', c.started_at, c.started_at + interval '200 milliseconds', NULL, NULL, 3, 250,
       '', ''
FROM calls_call c JOIN calls_callleg l ON l.integration_id = c.integration_id AND l.leg_id = 'L' || c.id
WHERE c.id BETWEEN %(a)s AND %(b)s AND c.direction = 'incoming' AND c.line_id = %(parking)s
"""

CALLBACK_SQL = """
INSERT INTO calls_callbacktask (id, client_number, contact_id, assignee_id, missed_count, first_missed_at,
    last_missed_at, closed_at, closed_by_id, closed_call_id, created_at, updated_at)
SELECT id, 'cb' || id, NULL, NULL, 1, started_at, started_at,
       CASE WHEN id %% 10 < 7 THEN started_at + (300 + (id * 7919) %% 172800) * interval '1 second' END,
       CASE WHEN id %% 10 < 7 THEN (%(users)s::bigint[])[1 + (id * 11) %% %(ops)s] END,
       NULL, now(), now()
FROM calls_call WHERE id BETWEEN %(a)s AND %(b)s AND status = 'missed'
"""
CALLBACK_LINK_SQL = """
INSERT INTO calls_callbacktask_missed_calls (callbacktask_id, call_id)
SELECT id, id FROM calls_call WHERE id BETWEEN %(a)s AND %(b)s AND status = 'missed'
"""


def seed(
    directory: dict[str, Any], days: int, per_day: int, chunk_days: int, last_day: date
) -> dict[str, int]:
    from django.db import connection, transaction

    first_day = last_day - timedelta(days=days - 1)
    params: dict[str, Any] = {
        "per_day": per_day,
        "ops": OPERATORS,
        "first_day": first_day.isoformat(),
        "tz": TZ,
        "lines": directory["lines"],
        "n_lines": LINES,
        "integration": directory["integration"],
        "workplaces": directory["workplaces"],
        "users": directory["users"],
        "parking": directory["lines"][0],
        "results": directory["results"],
        "n_results": len(directory["results"]),
    }
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        cursor.execute("SELECT setseed(0.20261126)")
    total = days * per_day
    for start_day in range(0, days, chunk_days):
        a = start_day * per_day + 1
        b = min(total, (start_day + chunk_days) * per_day)
        bounds = {**params, "a": a, "b": b}
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(CALLS_SQL, bounds)
            for sql in LEG_SQL.values():
                cursor.execute(f"INSERT INTO calls_callleg {LEG_COLUMNS} {sql}", bounds)
            cursor.execute(ROUTING_SQL, bounds)
            cursor.execute(CALLBACK_SQL, bounds)
            cursor.execute(CALLBACK_LINK_SQL, bounds)
        print(f"    {b:>10,} calls", flush=True)
    counts = {}
    with connection.cursor() as cursor:
        for table in ("calls_call", "calls_callbacktask"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
        for table in ("calls_call", "calls_callleg", "calls_routingdecision", "calls_callbacktask"):
            cursor.execute(f"SELECT count(*) FROM {table}")
            counts[table] = cursor.fetchone()[0]
    return counts


def vacuum() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in (
            "calls_call",
            "calls_callleg",
            "calls_routingdecision",
            "calls_callbacktask",
            "calls_callbacktask_missed_calls",
        ):
            cursor.execute(f"VACUUM (ANALYZE) {table}")


def build_rollups() -> None:
    """The report rollups from scratch (what `manage.py reports_rollup` does on an empty state)."""
    from django.db import connection

    from calls.models.reports import (
        CallDayRollup,
        CallHourRollup,
        OfferDayRollup,
        ReportRollupState,
        RoutingDayRollup,
    )
    from calls.reports.rollups import rollups_rebuild

    tables = [m._meta.db_table for m in (CallHourRollup, CallDayRollup, OfferDayRollup, RoutingDayRollup)]
    ReportRollupState.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE " + ", ".join(tables))
    started = time.perf_counter()
    result = rollups_rebuild()
    print(
        f"  rollups rebuilt from scratch: {time.perf_counter() - started:.1f} s "
        f"({result.hour_rows:,} hour rows, {result.day_rows:,} day rows)",
        flush=True,
    )
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM (ANALYZE) {table}")


def measure(directory: dict[str, Any], last_day: date, days: int, repeat: int, explain: bool) -> list[str]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from calls.reports import selectors as s

    one_line = directory["lines"][1]
    scopes = {
        "today": s.ReportScope(first_day=last_day, last_day=last_day),
        "30 days": s.ReportScope(first_day=last_day - timedelta(days=29), last_day=last_day),
        "30 days, one line": s.ReportScope(last_day - timedelta(days=29), last_day, line_id=one_line),
        f"{days} days": s.ReportScope(first_day=last_day - timedelta(days=days - 1), last_day=last_day),
        f"{days} days, one line": s.ReportScope(
            last_day - timedelta(days=days - 1), last_day, line_id=one_line
        ),
    }
    queries: dict[str, Callable[[s.ReportScope], Any]] = {
        "summary": s.report_summary,
        "calls per day/hour": s.calls_series,
        "heatmap weekday×hour": s.incoming_heatmap,
        "missed share by hour": s.missed_share_by_hour,
        "operators": s.operator_stats,
        "lines": s.line_stats,
        "routing outcomes": s.routing_outcomes,
    }
    slow: list[str] = []
    print(f"\neach figure: {repeat} runs, p50 / max in ms, load average {os.getloadavg()}")
    header = f"  {'query':<24}" + "".join(f"{name:>26}" for name in scopes)
    print(header)
    for qname, query in queries.items():
        cells = []
        for sname, scope in scopes.items():
            samples = []
            for _ in range(repeat):
                started = time.perf_counter()
                query(scope)
                samples.append((time.perf_counter() - started) * 1000)
            p50, worst = statistics.median(samples), max(samples)
            if worst >= 1000:
                slow.append(f"{qname} / {sname}: max {worst:.0f} ms")
            cells.append(f"{p50:>12.0f} / {worst:<8.0f}")
        print(f"  {qname:<24}" + "".join(f"{c:>26}" for c in cells), flush=True)

    client = Client()
    client.force_login(directory["admin"])
    print(f"\nthe whole dashboard page (GET /reports/, {repeat} runs), load average {os.getloadavg()}")
    pages = {
        "today": {"period": "today"},
        "30 days": {"period": "30d"},
        "30 days, one line": {"period": "30d", "line": one_line},
        f"{days} days": {
            "period": "custom",
            "date_from": (last_day - timedelta(days=days - 1)).isoformat(),
            "date_to": last_day.isoformat(),
        },
        f"{days} days, one line": {
            "period": "custom",
            "date_from": (last_day - timedelta(days=days - 1)).isoformat(),
            "date_to": last_day.isoformat(),
            "line": one_line,
        },
    }
    for pname, params in pages.items():
        samples = []
        with CaptureQueriesContext(connection) as ctx:
            for _ in range(repeat):
                started = time.perf_counter()
                response = client.get("/reports/", params)
                samples.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, response.status_code
        p50, worst = statistics.median(samples), max(samples)
        if worst >= 1000:
            slow.append(f"page / {pname}: max {worst:.0f} ms")
        print(
            f"  {pname:<24} p50 {p50:7.0f} ms   max {worst:7.0f} ms"
            f"   ({len(ctx.captured_queries) // repeat} queries)"
        )

    if explain:
        from calls.reports.aggregates import analytic

        @analytic  # the same session settings as the reports' own queries
        def plan_of(sql: str) -> str:
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                return "\n".join(row[0] for row in cursor.fetchall())

        for sname in ("30 days", f"{days} days", f"{days} days, one line"):
            with CaptureQueriesContext(connection) as ctx:
                s.report_dashboard(scopes[sname])
            for q in ctx.captured_queries:
                sql = q["sql"]
                if (
                    not sql.startswith("SELECT")
                    or " FROM " not in sql
                    or "integrations_externalnumber" in sql
                ):
                    continue
                print(f"\n--- {sname}: {sql[:160]}…\n{plan_of(sql)}")
    return slow


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--per-day", type=int, default=5000)
    parser.add_argument("--chunk-days", type=int, default=30, help="days of calls per seeding transaction")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of the queries")
    parser.add_argument("--keep", action="store_true", help="keep the <db>_bench_reports database afterwards")
    parser.add_argument("--reuse", action="store_true", help="time an existing kept database, do not seed")
    parser.add_argument(
        "--rollups",
        choices=["on", "off"],
        default="on",
        help="on: build the report rollups from scratch (timed) before measuring; off: no rollups, every "
        "figure counted from the call tables (the reports before issue 19)",
    )
    args = parser.parse_args()

    source_url = os.environ.get("DATABASE_URL", "")
    if not source_url:
        sys.exit("set DATABASE_URL to a PostgreSQL database; the benchmark runs in <that name>_bench_reports")
    url, name, maintenance = bench_url(source_url, suffix="_bench_reports")
    print(f"bench database: {name}", flush=True)
    if not args.reuse:
        recreate_database(maintenance, name)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mttcrm.settings")
    # Production runs with DEBUG off (no per-query logging; hashed static files from a manifest).
    os.environ.setdefault("DEBUG", "false")
    os.environ["ALLOWED_HOSTS"] = "testserver"
    from cryptography.fernet import Fernet

    os.environ.setdefault("SECRET_KEY", "bench-" + Fernet.generate_key().decode())
    os.environ.setdefault("FIELD_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    static_root = tempfile.mkdtemp(prefix="bench-reports-static-")
    os.environ["STATIC_ROOT"] = static_root
    slow: list[str] = []
    try:
        import django
        from django.core.management import call_command
        from django.db import connection

        django.setup()
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.utils import timezone

        with connection.cursor() as cursor:
            cursor.execute("SELECT version()")
            print(cursor.fetchone()[0])
        print(f"DEBUG={settings.DEBUG}, {os.cpu_count()} CPUs, load average {os.getloadavg()}")
        timed("collectstatic", lambda: call_command("collectstatic", interactive=False, verbosity=0))
        last_day = timezone.localdate()
        if args.reuse:
            from integrations.models import ExternalNumber

            timed("migrate", lambda: call_command("migrate", verbosity=0))  # indexes added since
            directory = {
                "lines": list(ExternalNumber.objects.order_by("number").values_list("pk", flat=True)),
                "admin": get_user_model().objects.get(username="bench-admin"),
            }
        else:
            timed("migrate", lambda: call_command("migrate", verbosity=0))
            directory = setup_directory()
            print(f"seeding {args.days} days × {args.per_day:,} calls, ending {last_day}:", flush=True)
            started = time.perf_counter()
            counts = seed(directory, args.days, args.per_day, args.chunk_days, last_day)
            print(f"  seeded {counts} in {time.perf_counter() - started:.1f} s")
            timed("vacuum analyze", vacuum)
        if args.rollups == "on":
            build_rollups()
        else:
            from calls.models.reports import ReportRollupState

            ReportRollupState.objects.all().delete()  # the reports then read the call tables only
        slow = measure(directory, last_day, args.days, args.repeat, args.explain)
        print("\nover 1 s: " + ("; ".join(slow) if slow else "nothing"))
    finally:
        from django.db import connections

        connections.close_all()
        shutil.rmtree(static_root, ignore_errors=True)
        if args.keep or args.reuse:
            print(f"\nkept database {name}")
        else:
            recreate_database(maintenance, name, drop_only=True)
            print(f"\ndropped database {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
