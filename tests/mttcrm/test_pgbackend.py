"""Our PostgreSQL backend's pool (mttcrm/pgbackend/base.py): the health check skipped for a connection
just given back, and a checkout that may wait less than the pool's timeout."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from unittest import mock

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from psycopg_pool import ConnectionPool, PoolTimeout

from mttcrm.pgbackend import base as pgbackend

pytestmark = pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "mttcrm.pgbackend", reason="needs PostgreSQL (DATABASE_URL)"
)


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The connections the pool's health check ran on (it still runs)."""
    seen: list[Any] = []
    real = ConnectionPool.check_connection

    def counting(conn: Any) -> None:
        seen.append(conn)
        real(conn)

    monkeypatch.setattr(ConnectionPool, "check_connection", staticmethod(counting))
    return seen


@pytest.fixture
def pool() -> Iterator[pgbackend.Pool]:
    """A pool of one connection to the test database, with the callbacks the backend gives its pool."""
    params = connection.get_connection_params()
    params["autocommit"] = True
    made = pgbackend.Pool(
        kwargs=params,
        min_size=1,
        max_size=1,
        check=pgbackend.check_unless_recently_used,
        open=True,
    )
    made.wait()
    yield made
    made.close()


@pytest.mark.django_db
def test_the_backend_builds_its_pool_with_these_callbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    assert connection.vendor == "postgresql"
    built = mock.MagicMock()
    monkeypatch.setattr(pgbackend, "Pool", built)
    wrapper = pgbackend.DatabaseWrapper(dict(connection.settings_dict), alias="pool_probe")
    try:
        assert wrapper.pool is built.return_value
    finally:
        wrapper._connection_pools.pop("pool_probe", None)
    options = built.call_args.kwargs
    assert options["check"] is pgbackend.check_unless_recently_used
    assert "reset" not in options  # with one, psycopg_pool gives connections back in its worker thread
    assert options["max_size"] == settings.DATABASES["default"]["OPTIONS"]["pool"]["max_size"]


def test_a_connection_given_back_within_a_second_is_handed_out_unchecked(
    pool: pgbackend.Pool, checks: list[Any]
) -> None:
    with pool.connection() as first:
        pass
    checks.clear()
    with pool.connection() as again:
        assert again is first
    assert checks == []  # no round trip: it was in use a moment ago

    # Idle for longer than RECENTLY_USED_SECONDS: checked, as the pool always did.
    pgbackend._RETURNED[first] = time.monotonic() - pgbackend.RECENTLY_USED_SECONDS - 1
    with pool.connection() as later:
        assert later.execute("SELECT 1").fetchone() == (1,)
    assert checks == [first]


def test_a_dead_connection_idle_for_a_while_is_caught_by_the_check(
    pool: pgbackend.Pool, checks: list[Any]
) -> None:
    """After a PostgreSQL restart: the check finds the old connection dead, and the request gets a new
    one instead of an error."""
    with pool.connection() as first:
        backend_pid = first.info.backend_pid
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as killer:
        killer.execute("SELECT pg_terminate_backend(%s)", [backend_pid])
    pgbackend._RETURNED[first] = time.monotonic() - pgbackend.RECENTLY_USED_SECONDS - 1
    with pool.connection() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert conn is not first
    assert first in checks


def test_checkout_wait_bounds_one_checkout_only() -> None:
    """The gate's short wait applies to the checkout inside the block; the pool's timeout elsewhere."""
    pool = pgbackend.Pool(
        kwargs={"host": "127.0.0.1", "port": 9, "connect_timeout": 1},  # nothing listens there
        min_size=0,
        max_size=1,
        timeout=30,
        open=True,
        reconnect_timeout=60,
    )
    try:
        started = time.monotonic()
        with pytest.raises(PoolTimeout), pgbackend.checkout_wait(0.3):
            pool.getconn()
        assert time.monotonic() - started < 5  # not the pool's 30 s
        assert pgbackend._CHECKOUT_WAIT.get() is None
    finally:
        pool.close(timeout=1)
