"""Benchmark: what team visibility (issue 18) costs the call log and the contact list (PostgreSQL).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mttcrm \\
        .venv/bin/python bench/visibility.py --calls 300000 --contacts 100000

Like bench/contacts_lookup.py it works in `<that name>_bench` (created, migrated, seeded with
generate_series, dropped afterwards; --keep keeps it). Seeded: 40 operators with a workplace each, in 8
teams of 5, one supervisor of 2 teams; contacts, every 4th with a personal manager; calls spread over a
year, each with one leg on its operator's workplace. Timed (median of --repeat runs): what the pages run —
the call log's and the contact list's COUNT and first page of 50 — in the "all" mode and, in the "team"
mode, for an operator and for the supervisor; then the EXPLAIN of the operator's call log page.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import bench_url, recreate_database

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OPERATORS, TEAM_SIZE = 40, 5


def seed(calls: int, contacts: int) -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from contacts.models import Team
    from integrations.models import Integration, Workplace

    users = get_user_model().objects
    operators = [users.create_user(f"op{n}", password=None) for n in range(OPERATORS)]
    supervisor = users.create_user("boss", password=None, is_staff=True)
    integration = Integration.objects.create(name="Bench", client_id="c", client_secret="s")
    workplaces = [
        Workplace.objects.create(integration=integration, sip_id=f"8831400000{n:05d}", user=user)
        for n, user in enumerate(operators)
    ]
    for t in range(OPERATORS // TEAM_SIZE):
        team = Team.objects.create(name=f"Команда {t}")
        team.members.add(*operators[t * TEAM_SIZE : (t + 1) * TEAM_SIZE])
        if t < 2:
            team.supervisors.add(supervisor)
    first_user, first_wp = operators[0].pk, workplaces[0].pk
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO contacts_contact (name, company, email, notes, source, created_at, updated_at, "
            "personal_manager_id) SELECT 'Клиент ' || g, 'Компания ' || (g %% 1000), '', '', 'call', now(), "
            "now(), CASE WHEN g %% 4 = 0 THEN %s + (g %% %s) END FROM generate_series(1, %s) g",
            [first_user, OPERATORS, contacts],
        )
        cursor.execute("SELECT min(id) FROM contacts_contact")
        first_contact = cursor.fetchone()[0]
        cursor.execute(
            "INSERT INTO calls_call (integration_id, call_key, direction, status, client_number, "
            "client_number_raw, contact_id, line_number, workplace_id, operator_id, started_at, "
            "end_reason, end_reason_code, created_at, updated_at, comment) "
            "SELECT %s, 'call-' || g, 'incoming', 'answered', '+7921' || lpad((g %% 9999999)::text, 7, '0'), "
            "'', %s + (g %% %s), '', %s + (g %% %s), %s + (g %% %s), "
            "now() - (g %% 525600) * interval '1 minute', '', '', now(), now(), '' "
            "FROM generate_series(1, %s) g",
            [integration.pk, first_contact, contacts, first_wp, OPERATORS, first_user, OPERATORS, calls],
        )
        cursor.execute(
            "INSERT INTO calls_callleg (call_id, integration_id, leg_id, tag, transport_id, direction, "
            "is_line_leg, caller_id, caller_account, callee_id, callee_account, callee_display_name, "
            "forwarders, field_ranks, workplace_id, states, last_state, reason, reason_code, first_seen_at) "
            "SELECT id, integration_id, call_key || '~1', '', '', 'incoming', false, '', '', '', '', '', "
            "'[]', '{}', workplace_id, '[]', 'finished', '', '', now() FROM calls_call"
        )
        for table in ("contacts_contact", "calls_call", "calls_callleg"):
            cursor.execute(f"VACUUM (ANALYZE) {table}")
    return {"operator": operators[0], "supervisor": supervisor}


def timed(work: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    samples, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), result


def measure(people: dict[str, Any], repeat: int) -> None:
    from calls.selectors import CallFilters, call_list
    from calls.visibility import calls_visible_to, contacts_visible_to
    from contacts.models import AccessSettings
    from contacts.selectors import contact_search

    def page(qs: Any) -> Callable[[], tuple[int, int]]:
        return lambda: (qs.count(), len(list(qs[:50])))

    print(f"\nmedian of {repeat} (count + first page of 50), load average {os.getloadavg()}:")
    for mode in (AccessSettings.Visibility.ALL, AccessSettings.Visibility.TEAM):
        AccessSettings.objects.update_or_create(pk=1, defaults={"visibility": mode})
        for who, user in people.items():
            calls = calls_visible_to(user, call_list(filters=CallFilters(period="all")))
            ms, (total, _) = timed(page(calls), repeat)
            print(f"  {mode:<5} {who:<10} call log      {total:>8} calls     {ms:8.1f} ms")
            contacts = contacts_visible_to(user, contact_search(query=""))
            ms, (total, _) = timed(page(contacts), repeat)
            print(f"  {mode:<5} {who:<10} contact list  {total:>8} contacts  {ms:8.1f} ms")


def explain(user: Any) -> None:
    from django.db import connection

    from calls.selectors import CallFilters, call_list
    from calls.visibility import calls_visible_to

    sql, params = calls_visible_to(user, call_list(filters=CallFilters(period="all")))[
        :50
    ].query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        print("\nEXPLAIN ANALYZE, the operator's call log page (team mode):")
        print("\n".join(row[0] for row in cursor.fetchall()))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=300_000)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the <db>_bench database afterwards")
    args = parser.parse_args()
    source_url = os.environ.get("DATABASE_URL", "")
    if not source_url:
        sys.exit("set DATABASE_URL to a PostgreSQL database; the benchmark runs in <that name>_bench")
    url, name, maintenance = bench_url(source_url, "_visibility_bench")
    recreate_database(maintenance, name)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mttcrm.settings")
    os.environ.setdefault("DEBUG", "false")
    # The seeded integration's (dummy) secret is encrypted at rest: a throwaway key.
    os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "MFrYsFw0Ayh8p2U2zB2k7Ppsz4qVhjVOFtYp1L5eDyE=")
    try:
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        people = seed(args.calls, args.contacts)
        took = time.perf_counter() - started
        print(f"seeded {args.calls:,} calls, {args.contacts:,} contacts in {took:.1f} s")
        measure(people, args.repeat)
        AccessSettings = django.apps.apps.get_model("contacts", "AccessSettings")
        AccessSettings.objects.update_or_create(pk=1, defaults={"visibility": "team"})
        explain(people["operator"])
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            recreate_database(maintenance, name, drop_only=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
