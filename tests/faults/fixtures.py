"""Fixtures: private PostgreSQL and Redis servers that fault tests may stop and start (servers.py).

Never the machine's own 5432/6379: other people's work runs on them. Without the binaries the tests
skip with the reason; in CI (CI=true), where .ci/run runs on a machine that has them, that is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from .servers import PrivatePostgres, PrivateRedis, missing_postgres_reason, missing_redis_reason

S = TypeVar("S", PrivatePostgres, PrivateRedis)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(reason + " — fault tests must run in CI")
    pytest.skip(reason)


def _session_server(missing_reason: Callable[[], str | None], make: Callable[[], S]) -> Iterator[S]:
    reason = missing_reason()
    if reason:
        _unavailable(reason)
    server = make()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


def _running_around_the_test(server: S) -> Iterator[S]:
    if not server.running():
        server.start()
    yield server
    if not server.running():
        server.start()


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    yield from _session_server(missing_postgres_reason, PrivatePostgres)


@pytest.fixture
def postgres(private_postgres: PrivatePostgres) -> Iterator[PrivatePostgres]:
    """The private PostgreSQL, running at the start and at the end of the test whatever it did."""
    yield from _running_around_the_test(private_postgres)


@pytest.fixture(scope="session")
def private_redis() -> Iterator[PrivateRedis]:
    yield from _session_server(missing_redis_reason, PrivateRedis)


@pytest.fixture
def redis_server(private_redis: PrivateRedis) -> Iterator[PrivateRedis]:
    """The private Redis, running at the start and at the end of the test whatever it did."""
    yield from _running_around_the_test(private_redis)
