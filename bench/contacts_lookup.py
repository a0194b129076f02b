"""Benchmark: finding the contact behind a call's number among N contacts (PostgreSQL).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mttcrm \\
        .venv/bin/python bench/contacts_lookup.py --contacts 1000000 --lookups 20000

It never touches the database named in DATABASE_URL: it creates `<that name>_bench` next to it (dropping a
leftover one first), migrates it, seeds it with generate_series (server-side, no Python loop), times
`contacts.selectors.contact_find_by_number` for existing and missing numbers in every format the PBX
sends, prints p50/p95/p99/max and the EXPLAIN of the lookup query, then drops the database (--keep keeps
it for poking around). The role needs CREATEDB.

Seeded data: every contact has a mobile number (+79…, spread over the range so the index is not filled in
order), every 5th also a St Petersburg landline (+7812…), every 100th also a number that is not a phone
number (kept raw, found by its digits). Stored `raw` forms vary like the PBX's.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import bench_url, recreate_database

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MOBILE_STEP = 7919  # prime, coprime with 10**9: g -> g*7919 mod 10**9 is a permutation
LANDLINE_STEP = 104729
MOBILE_SPACE = 10**9
LANDLINE_SPACE = 10**7


def mobile_e164(g: int) -> str:
    return f"+79{(g * MOBILE_STEP) % MOBILE_SPACE:09d}"


def landline_e164(g: int) -> str:
    return f"+7812{(g * LANDLINE_STEP) % LANDLINE_SPACE:07d}"


def mobile_owner(national9: int, n: int) -> int | None:
    """Which seeded contact owns +79<national9>, if any (inverse of the permutation)."""
    g = (national9 * pow(MOBILE_STEP, -1, MOBILE_SPACE)) % MOBILE_SPACE
    return g if 1 <= g <= n else None


def formats(e164: str) -> list[str]:
    """The same number as the PBX and people send it (API.md: "Numbers arrive as the network gave them")."""
    digits = e164[1:]
    national = digits[1:]
    return [
        e164,
        digits,
        "8" + national,
        "00" + digits,
        national,
        digits + "@pstn",
        f"sip:{digits}@pstn",
        f"+7 ({national[:3]}) {national[3:6]}-{national[6:8]}-{national[8:]}",
    ]


def timed(label: str, action: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = action()
    print(f"  {label}: {time.perf_counter() - started:.1f} s", flush=True)
    return result


def seed(n: int, batch: int) -> dict[str, int]:
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
    for start in range(1, n + 1, batch):
        end = min(start + batch - 1, n)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO contacts_contact
                    (id, name, company, email, notes, source, created_at, updated_at)
                SELECT g, 'Клиент ' || g,
                       CASE WHEN g %% 3 = 0 THEN 'ООО Компания ' || (g %% 5000) ELSE '' END,
                       CASE WHEN g %% 7 = 0 THEN 'client' || g || '@example.com' ELSE '' END,
                       '', CASE WHEN g %% 4 = 0 THEN 'call' ELSE 'manual' END, now(), now()
                FROM generate_series(%(start)s::bigint, %(end)s::bigint) AS g
                """,
                {"start": start, "end": end},
            )
            # Mobile for everyone; the raw form cycles through the PBX's formats.
            cursor.execute(
                """
                INSERT INTO contacts_phonenumber
                    (contact_id, e164, raw, raw_digits, kind, created_at, extension)
                SELECT g, e164, raw, regexp_replace(split_part(raw, '@', 1), '\\D', '', 'g'), 'mobile',
                       now(), ''
                FROM (
                    SELECT g, e164,
                           CASE g %% 4 WHEN 0 THEN e164
                                      WHEN 1 THEN '8' || substr(e164, 3)
                                      WHEN 2 THEN substr(e164, 2)
                                      ELSE substr(e164, 2) || '@pstn' END AS raw
                    FROM (
                        SELECT g, '+79' || lpad(((g * %(step)s) %% %(space)s)::text, 9, '0') AS e164
                        FROM generate_series(%(start)s::bigint, %(end)s::bigint) AS g
                    ) numbered
                ) formatted
                """,
                {"start": start, "end": end, "step": MOBILE_STEP, "space": MOBILE_SPACE},
            )
            cursor.execute(
                """
                INSERT INTO contacts_phonenumber
                    (contact_id, e164, raw, raw_digits, kind, created_at, extension)
                SELECT g, e164, e164, substr(e164, 2), 'work', now(), ''
                FROM (
                    SELECT g, '+7812' || lpad(((g * %(step)s) %% %(space)s)::text, 7, '0') AS e164
                    FROM generate_series(%(start)s::bigint, %(end)s::bigint) AS g
                    WHERE g %% 5 = 0
                ) numbered
                """,
                {"start": start, "end": end, "step": LANDLINE_STEP, "space": LANDLINE_SPACE},
            )
            # Not phone numbers: kept raw, matched on digits.
            cursor.execute(
                """
                INSERT INTO contacts_phonenumber
                    (contact_id, e164, raw, raw_digits, kind, created_at, extension)
                SELECT g, '', 'доб. ' || g, g::text, 'other', now(), ''
                FROM generate_series(%(start)s::bigint, %(end)s::bigint) AS g
                WHERE g %% 100 = 0
                """,
                {"start": start, "end": end},
            )
        print(f"    {end:>10,} contacts", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT setval(pg_get_serial_sequence('contacts_contact', 'id'), %s)", [max(n, 1)])
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('contacts_phonenumber', 'id'), "
            "(SELECT coalesce(max(id), 1) FROM contacts_phonenumber))"
        )
        cursor.execute("SELECT count(*) FROM contacts_phonenumber")
        numbers = cursor.fetchone()[0]
    return {"contacts": n, "numbers": numbers}


def vacuum() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) contacts_contact")
        cursor.execute("VACUUM (ANALYZE) contacts_phonenumber")


def make_lookups(n: int, count: int, rng: random.Random) -> list[tuple[str, int | None, str]]:
    """(number as sent, the contact id it must find or None, what kind of case)."""
    cases: list[tuple[str, int | None, str]] = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.55:
            g = rng.randint(1, n)
            cases.append((rng.choice(formats(mobile_e164(g))), g, "existing mobile"))
        elif roll < 0.65 and n >= 5:
            g = rng.randrange(5, n + 1, 5)
            cases.append((rng.choice(formats(landline_e164(g))), g, "existing landline"))
        elif roll < 0.70 and n >= 100:
            g = rng.randrange(100, n + 1, 100)
            cases.append((rng.choice([str(g), f"sip:{g}@pbx"]), g, "existing raw digits"))
        else:
            while True:
                national9 = rng.randrange(MOBILE_SPACE)
                if mobile_owner(national9, n) is None:
                    break
            missing = f"+79{national9:09d}"
            cases.append((rng.choice(formats(missing)), None, "missing"))
    return cases


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def report(label: str, samples_ms: list[float]) -> None:
    values = sorted(samples_ms)
    print(
        f"  {label:<22} n={len(values):>6}  p50={percentile(values, 50):.3f}  "
        f"p95={percentile(values, 95):.3f}  p99={percentile(values, 99):.3f}  max={values[-1]:.3f}  "
        f"mean={statistics.fmean(values):.3f}  (ms)"
    )


def measure(n: int, lookups: int, seed_value: int) -> bool:
    from contacts import phones
    from contacts.selectors import contact_find_by_number

    rng = random.Random(seed_value)
    warmup = make_lookups(n, min(2000, lookups), rng)
    for number, _, _ in warmup:
        contact_find_by_number(number=number)
    cases = make_lookups(n, lookups, rng)
    by_kind: dict[str, list[float]] = {}
    all_ms: list[float] = []
    wrong: list[tuple[str, int | None, int | None]] = []
    for number, expected, kind in cases:
        started = time.perf_counter()
        contact = contact_find_by_number(number=number)
        elapsed = (time.perf_counter() - started) * 1000
        all_ms.append(elapsed)
        by_kind.setdefault(kind, []).append(elapsed)
        found = contact.pk if contact is not None else None
        if found != expected:
            wrong.append((number, expected, found))
    print(
        f"\ncontact_find_by_number (normalise + one query, in-process, over a local socket), "
        f"load average {os.getloadavg()}:"
    )
    report("all", all_ms)
    for kind in sorted(by_kind):
        report(kind, by_kind[kind])
    normalise_ms: list[float] = []
    for number, _, _ in cases[:5000]:
        started = time.perf_counter()
        phones.normalize(number)
        normalise_ms.append((time.perf_counter() - started) * 1000)
    report("of which normalize()", normalise_ms)
    print(f"  wrong answers: {len(wrong)}" + (f"  e.g. {wrong[:5]}" if wrong else ""))
    return not wrong


def explain(n: int) -> None:
    from django.db import connection

    from contacts.selectors import contact_lookup_sql

    g = max(1, n // 2)
    for label, number in [
        ("by e164 (an existing mobile, sent as 8…)", "8" + mobile_e164(g)[2:]),
        ("by e164 (a missing number, sent as …@pstn)", "79990000000@pstn"),
        ("raw-digits fallback (a number that is not a phone number)", str(max(100, (n // 200) * 100))),
    ]:
        lookup = contact_lookup_sql(number=number)
        assert lookup is not None
        sql, params = lookup
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        print(f"\nEXPLAIN ANALYZE, {label}: {number!r} -> {params}\n{sql}\n{plan}")


def search_sample(n: int) -> None:
    """The search page's query at this size (not the hot path; for information)."""
    from contacts.selectors import contact_search

    existing = "8" + mobile_e164(max(1, n // 3))[2:]
    print("\ncontact_search, the list page's work (count + first page of 50), for information:")
    for label, query in [
        ("whole number (index)", existing),
        ("whole number, missing", "89990000000"),
        ("name substring", f"Клиент {n // 7}"),
        ("company substring", "Компания 42"),
        ("partial number", "946-27"),
    ]:
        started = time.perf_counter()
        qs = contact_search(query=query)
        total = qs.count()
        list(qs[:50])
        elapsed = (time.perf_counter() - started) * 1000
        print(f"  {label:<22} {query!r:<16} {total:>7} found  {elapsed:8.1f} ms")


def search_queries(n: int, count: int, rng: random.Random) -> dict[str, list[str]]:
    """What operators type into the contact list's search box, per kind, ``count`` of each."""

    def fragment(g: int) -> str:
        digits = mobile_e164(g)[1:]
        start = rng.randrange(2, 7)
        part = digits[start : start + rng.randrange(5, 8)]
        return rng.choice([f"{part[:3]}-{part[3:]}", part, f"{part[:3]} {part[3:]}"])

    def prefix(g: int) -> str:
        national = mobile_e164(g)[2:]
        return rng.choice(
            [
                f"8 {national[:3]} {national[3:6]}",
                f"+7 ({national[:3]})",
                f"+7 {national[:3]} {national[3:5]}",
            ]
        )

    return {
        "name substring": [f"иент {rng.randint(1, n)}" for _ in range(count)],
        "company substring": [f"пания {rng.randint(0, 4999)}" for _ in range(count)],
        "partial number": [fragment(rng.randint(1, n)) for _ in range(count)],
        "number prefix": [prefix(rng.randint(1, n)) for _ in range(count)],
        "whole number": [rng.choice(formats(mobile_e164(rng.randint(1, n)))) for _ in range(count)],
    }


def search_timing(n: int, count: int, seed_value: int) -> None:
    """The contact list's search as the page runs it (count + first page of 50), ``count`` different
    queries per kind: p50 / p95 / p99 / max."""
    from django.core.paginator import Paginator

    from contacts.models import Contact
    from contacts.selectors import contacts_search

    # The list page's queryset for a user who sees every contact (contacts/views.py contact_list).
    listed = Contact.objects.current().select_related("personal_manager").prefetch_related("numbers")
    rng = random.Random(seed_value + 1)
    print(
        f"\ncontacts_search, the list page's work (count + first page of 50), {count} queries per kind, "
        f"load average {os.getloadavg()}:"
    )
    for kind, queries in search_queries(n, count, rng).items():
        samples, found = [], []
        for query in queries:
            started = time.perf_counter()
            page = Paginator(contacts_search(queryset=listed, query=query), 50).get_page(1)
            list(page.object_list)
            samples.append((time.perf_counter() - started) * 1000)
            found.append(page.paginator.count)
        report(kind, samples)
        print(f"  {'':<22} found per query: median {statistics.median(found):.0f}, max {max(found)}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=250_000, help="contacts per seeding transaction")
    parser.add_argument("--seed", type=int, default=20241126, help="random seed of the lookups")
    parser.add_argument("--keep", action="store_true", help="keep the <db>_bench database afterwards")
    parser.add_argument("--skip-search", action="store_true", help="do not time the search query")
    parser.add_argument("--searches", type=int, default=200, help="search queries timed per kind")
    args = parser.parse_args()

    source_url = os.environ.get("DATABASE_URL", "")
    if not source_url:
        sys.exit("set DATABASE_URL to a PostgreSQL database; the benchmark runs in <that name>_bench")
    url, name, maintenance = bench_url(source_url)
    print(f"bench database: {name} (created and dropped by this script)", flush=True)
    recreate_database(maintenance, name)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mttcrm.settings")
    # Production runs with DEBUG off: no per-query logging in connection.queries (DEBUG=true to compare).
    os.environ.setdefault("DEBUG", "false")
    ok = False
    try:
        import django
        from django.core.management import call_command
        from django.db import connection

        django.setup()
        from django.conf import settings

        with connection.cursor() as cursor:
            cursor.execute("SELECT version()")
            print(cursor.fetchone()[0])
        print(f"DEBUG={settings.DEBUG}, {os.cpu_count()} CPUs, load average {os.getloadavg()}")
        print(f"seeding {args.contacts:,} contacts:", flush=True)
        timed("migrate", lambda: call_command("migrate", verbosity=0))
        started = time.perf_counter()
        counts = seed(args.contacts, args.batch)
        print(
            f"  seeded {counts['contacts']:,} contacts, {counts['numbers']:,} numbers "
            f"in {time.perf_counter() - started:.1f} s"
        )
        timed("vacuum analyze", vacuum)
        explain(args.contacts)
        ok = measure(args.contacts, args.lookups, args.seed)
        if not args.skip_search:
            search_sample(args.contacts)
            search_timing(args.contacts, args.searches, args.seed)
    finally:
        from django.db import connections

        connections.close_all()
        if args.keep:
            print(f"\nkept database {name}")
        else:
            recreate_database(maintenance, name, drop_only=True)
            print(f"\ndropped database {name}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
