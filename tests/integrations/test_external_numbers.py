"""Our lines found in whatever form MTT names them (guide §6.4), and sent back as MTT listed them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from integrations.models import ExternalNumber, Integration
from integrations.parking import external_numbers_set_parking
from integrations.selectors import external_number_for, external_number_ids_by_key
from integrations.services import integration_sync_directory
from sandbox.testing import RunningSandbox, running_sandbox
from tests.mtt_sandbox import connect

LINE = "74996497803"
FORMS = [
    "74996497803",
    "+74996497803",
    "84996497803",
    "0074996497803",
    "74996497803@pstn",
    "sip:74996497803@10.133.33.136:5073",
]


@pytest.mark.django_db
@pytest.mark.parametrize("raw", FORMS)
def test_the_line_is_found_in_every_form(integration: Integration, raw: str) -> None:
    line = ExternalNumber.objects.create(integration=integration, number=LINE)
    ExternalNumber.objects.create(integration=integration, number="78005560251")
    assert line.normalized == "+74996497803"
    assert external_number_for(integration_id=integration.pk, raw=raw) == line


@pytest.mark.django_db
def test_a_number_that_is_none_of_ours(integration: Integration) -> None:
    ExternalNumber.objects.create(integration=integration, number=LINE)
    other = Integration.objects.create(name="Other", client_id="c", client_secret="s")
    for raw in ("74996497804", "", "anonymous", "883140000000001"):
        assert external_number_for(integration_id=integration.pk, raw=raw) is None
    # Another integration's line is not ours.
    assert external_number_for(integration_id=other.pk, raw="84996497803") is None


@pytest.mark.django_db
def test_an_active_line_wins_over_a_gone_one_with_the_same_key(integration: Integration) -> None:
    gone = ExternalNumber.objects.create(integration=integration, number="+74996497803", is_active=False)
    active = ExternalNumber.objects.create(integration=integration, number=LINE)
    assert external_number_for(integration_id=integration.pk, raw="84996497803") == active
    assert external_number_ids_by_key(integration_id=integration.pk) == {"+74996497803": active.pk}
    ExternalNumber.objects.filter(pk=active.pk).update(is_active=False)
    assert external_number_for(integration_id=integration.pk, raw="84996497803") == gone


@pytest.mark.django_db
def test_ids_by_key_for_an_in_memory_directory(integration: Integration) -> None:
    line = ExternalNumber.objects.create(integration=integration, number=LINE, is_parking=True)
    free = ExternalNumber.objects.create(integration=integration, number="78005560251")
    assert external_number_ids_by_key(integration_id=integration.pk) == {
        "+74996497803": line.pk,
        "+78005560251": free.pk,
    }
    assert external_number_ids_by_key(integration_id=integration.pk, parking_only=True) == {
        "+74996497803": line.pk
    }


@pytest.mark.django_db
def test_the_key_follows_the_number_on_save(integration: Integration) -> None:
    line = ExternalNumber.objects.create(integration=integration, number=LINE)
    line.number = "78005560251"
    line.save(update_fields=["number"])
    line.refresh_from_db()
    assert line.normalized == "+78005560251"


# --- the data migration --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_migration_fills_the_key_of_existing_rows() -> None:
    executor = MigrationExecutor(connection)
    before, after = (
        [("integrations", "0003_notification_queue")],
        [("integrations", "0004_externalnumber_normalized")],
    )
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before).apps
        integration = old.get_model("integrations", "Integration").objects.create(
            name="Old", client_id="c", client_secret="s", notify_token=uuid.uuid4().hex
        )
        Number = old.get_model("integrations", "ExternalNumber")
        for raw in ("74996497803", "88005560251", "880023213"):
            Number.objects.create(integration_id=integration.pk, number=raw)
        executor = MigrationExecutor(connection)
        executor.migrate(after)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    keys = dict(ExternalNumber.objects.values_list("number", "normalized"))
    assert keys == {"74996497803": "+74996497803", "88005560251": "+78005560251", "880023213": "880023213"}
    assert external_number_for(integration_id=integration.pk, raw="0074996497803") is not None


# --- the directory sync and parking against the sandbox ------------------------------------------


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox(step_delay=0.01, auto_click_to_call=False) as sb:
        yield sb


@pytest.fixture(autouse=True)
def _own_limiter_keys(settings: Any) -> None:
    settings.MTT_RATE_LIMIT_KEY_PREFIX = f"test-lines:{uuid.uuid4().hex}:"


@pytest.mark.django_db
def test_sync_keys_lines_listed_in_any_form_and_parking_sends_them_as_listed(
    sandbox: RunningSandbox, django_capture_on_commit_callbacks: Any
) -> None:
    # The PBX may list a line with a "+" or a trunk 8 (guide §6.4 says nothing about its own lists).
    sandbox.control(
        "POST",
        "directory",
        {"numbers": [{"number": "+74996497803"}, {"number": "88005560251", "type": "8800"}]},
    )
    mtt = connect(sandbox, django_capture_on_commit_callbacks)
    integration_sync_directory(integration_id=mtt.pk)
    line = external_number_for(integration_id=mtt.pk, raw="84996497803")
    hotline = external_number_for(integration_id=mtt.pk, raw="78005560251@pstn")
    assert line is not None and (line.number, line.normalized) == ("+74996497803", "+74996497803")
    assert hotline is not None and (hotline.number, hotline.normalized) == ("88005560251", "+78005560251")

    sandbox.control("DELETE", "requests")
    external_numbers_set_parking(integration=mtt, numbers=[line.number, hotline.number], is_parking=True)
    [request] = [r for r in sandbox.control("GET", "requests") if r["path"] == "/setParkingNumbers"]
    # Exactly as MTT listed them: the sandbox, like MTT, knows its numbers only in its own form.
    assert sorted(request["json"]["params"]["numbers"]) == ["+74996497803", "88005560251"]
    assert request["status"] == 200
    assert sandbox.state.is_parking("+74996497803") and sandbox.state.is_parking("88005560251")
