"""The fault tests' fixtures (tests/faults/fixtures.py): private PostgreSQL and Redis servers."""

from .fixtures import postgres, private_postgres, private_redis, redis_server  # noqa: F401
