"""Schemathesis against the live schema with a token: for every operation, generated requests (valid, and
invalid ones) never get a 5xx, and every answer matches the schema (content type, body).

Deterministic and bounded: Hypothesis derandomized, EXAMPLES per operation and generation mode. It uses
schemathesis' Python API (``schemathesis.openapi.from_wsgi`` and each operation's ``as_strategy``): its pytest
plugin's lazy fixtures do not run on pytest 9. The same run against a running server is ``schemathesis run``
(README "Using the API").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from api.services import api_token_create
from mttcrm.wsgi import application
from tests.personas import World

pytestmark = pytest.mark.django_db

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
EXAMPLES = 20


@pytest.fixture
def _one_connection() -> Iterator[None]:
    """The WSGI app runs in the test's thread, inside its transaction: like Django's test client, keep the
    connection open across requests (the handler's signals would close it)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_api_matches_its_schema(world: World, _one_connection: None, settings: Any, mode: Any) -> None:
    settings.API_THROTTLE_RATE = "1000000/min"
    # The admin: every row is visible, so generated ids can reach real rows.
    token = api_token_create(user=world.users["admin"], name="schemathesis", scope="write")[1]
    headers = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application, headers=headers)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @hypothesis_settings(
            max_examples=EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except Exception as exc:
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)
