"""Fixtures: private PostgreSQL and Redis servers that fault tests may stop and start (servers.py).

Never the machine's own 5432/6379: other people's work runs on them. Without the binaries the tests
skip with the reason; in CI (CI=true), where .ci/run runs on a machine that has them, that is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from .servers import PrivatePostgres, PrivateRedis, missing_postgres_reason, missing_redis_reason


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(reason + " — fault tests must run in CI")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    reason = missing_postgres_reason()
    if reason:
        _unavailable(reason)
    server = PrivatePostgres()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def postgres(private_postgres: PrivatePostgres) -> Iterator[PrivatePostgres]:
    """The private PostgreSQL, running at the start and at the end of the test whatever it did."""
    if not private_postgres.running():
        private_postgres.start()
    yield private_postgres
    if not private_postgres.running():
        private_postgres.start()


@pytest.fixture(scope="session")
def private_redis() -> Iterator[PrivateRedis]:
    reason = missing_redis_reason()
    if reason:
        _unavailable(reason)
    server = PrivateRedis()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def redis_server(private_redis: PrivateRedis) -> Iterator[PrivateRedis]:
    """The private Redis, running at the start and at the end of the test whatever it did."""
    if not private_redis.running():
        private_redis.start()
    yield private_redis
    if not private_redis.running():
        private_redis.start()
