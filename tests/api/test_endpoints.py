"""Every endpoint × persona (tests/personas.py) × visibility mode: what each answers and which rows it shows.

The rules are the pages' (README "Security model"): in "all" every logged-in user sees every row; in "team"
team A (operator, manager, other operator; the supervisor supervises it) and team B (the outsider) see only
their own, and the admin everything. Rows a user may not see answer 404, as on the pages.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from calls.models import Call, CallbackTask, CallResult, FollowUpTask, RecordingAccess
from contacts.models import Contact
from tests.personas import MODES, ROLES, World, rolled_back, set_visibility

from .tokens import token_client

pytestmark = pytest.mark.django_db

TEAM_A = {"operator", "manager", "supervisor"}


def _sees_team_a(role: str, mode: str) -> bool:
    return role == "admin" or mode == "all" or role in TEAM_A


def _sees_team_b(role: str, mode: str) -> bool:
    return role == "admin" or mode == "all" or role == "outsider"


def _ids(response: Any) -> set[int]:
    return {row["id"] for row in response.json()["results"]}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("role", ROLES)
def test_every_endpoint(world: World, role: str, mode: str) -> None:
    set_visibility(mode)
    user = world.users[role]
    a, b = _sees_team_a(role, mode), _sees_team_b(role, mode)
    wrong: list[str] = []

    def expect(label: str, response: Any, status: int) -> None:
        if response.status_code != status:
            wrong.append(f"{label} as {role} ({mode}): expected {status}, got {response.status_code}")

    def expect_rows(label: str, response: Any, rows: set[int]) -> None:
        expect(label, response, 200)
        if response.status_code == 200 and _ids(response) != rows:
            wrong.append(
                f"{label} as {role} ({mode}): rows {sorted(_ids(response))}, expected {sorted(rows)}"
            )

    def seen(visible: bool) -> int:
        return 200 if visible else 404

    result, _ = CallResult.objects.get_or_create(name="Консультация")
    due = timezone.now() + timedelta(days=1)
    task_a = FollowUpTask.objects.create(
        call=world.other_call, assignee=world.other_operator, created_by=world.other_operator, due_at=due
    )
    task_b = FollowUpTask.objects.create(
        call=world.outsider_call,
        assignee=world.users["outsider"],
        created_by=world.users["outsider"],
        due_at=due,
    )
    calls_a = {world.own_call.pk, world.other_call.pk}
    calls_b = {world.outsider_call.pk}
    contacts_a = {world.contact.pk, world.managed_contact.pk}
    contacts_b = {world.outsider_contact.pk}

    with rolled_back():
        api = token_client(user)
        if user is None:
            for url in ("/api/v1/calls/", "/api/v1/contacts/", "/api/v1/recordings/", "/api/v1/callbacks/"):
                expect(f"GET {url}", api.get(url), 401)
            expect(
                "POST dial", api.post("/api/v1/calls/dial/", {"number": "+79031234567"}, format="json"), 401
            )
            expect("GET schema", api.get("/api/schema/"), 401)
            assert not wrong, "\n".join(wrong)
            return

        # Calls: the list, one call of each team, and the nested legs.
        expect_rows(
            "GET calls", api.get("/api/v1/calls/"), (calls_a if a else set()) | (calls_b if b else set())
        )
        own = api.get(f"/api/v1/calls/{world.own_call.pk}/")
        expect("GET own call", own, seen(a))
        if own.status_code == 200:
            assert [leg["leg_id"] for leg in own.json()["legs"]] == ["own-call~1o"]
        expect("GET outsider call", api.get(f"/api/v1/calls/{world.outsider_call.pk}/"), seen(b))
        expect("GET no call", api.get("/api/v1/calls/999999/"), 404)

        # Contacts: the list, search by number in any format, one of each team.
        expect_rows(
            "GET contacts",
            api.get("/api/v1/contacts/"),
            (contacts_a if a else set()) | (contacts_b if b else set()),
        )
        expect_rows(
            "GET contacts?number",
            api.get("/api/v1/contacts/", {"number": "8 (921) 946-27-61"}),
            {world.contact.pk} if a else set(),
        )
        expect("GET contact", api.get(f"/api/v1/contacts/{world.contact.pk}/"), seen(a))
        expect("GET outsider contact", api.get(f"/api/v1/contacts/{world.outsider_contact.pk}/"), seen(b))

        # Contacts: create, update, the personal manager (supervisors and the admin only).
        created = api.post(
            "/api/v1/contacts/", {"name": "Новый", "numbers": ["+7 903 111-22-33"]}, format="json"
        )
        expect("POST contact", created, 201)
        if created.status_code == 201:
            contact = Contact.objects.get(pk=created.json()["id"])
            assert contact.created_by == user and contact.numbers.get().e164 == "+79031112233"
        patched = api.patch(
            f"/api/v1/contacts/{world.contact.pk}/", {"company": "ООО Ромашка"}, format="json"
        )
        expect("PATCH contact", patched, seen(a))
        manager = world.users["manager"].pk
        may_assign = role in ("supervisor", "admin")
        expect(
            "PATCH personal manager",
            api.patch(f"/api/v1/contacts/{world.contact.pk}/", {"personal_manager": manager}, format="json"),
            (200 if may_assign else 403) if a else 404,
        )

        # Recordings: metadata, and the audio with the permission and the access log.
        expect_rows("GET recordings", api.get("/api/v1/recordings/"), {world.recording.pk} if a else set())
        expect("GET recording", api.get(f"/api/v1/recordings/{world.recording.pk}/"), seen(a))
        before = RecordingAccess.objects.count()
        audio = api.get(f"/api/v1/recordings/{world.recording.pk}/audio/")
        expect("GET audio", audio, seen(a))
        if audio.status_code == 200:
            assert b"".join(audio.streaming_content).startswith(b"ID3")
            assert RecordingAccess.objects.count() == before + 1
            assert RecordingAccess.objects.first().user == user  # type: ignore[union-attr]

        # Callback tasks: the list (the callback of team A's contact), taking one.
        expect_rows("GET callbacks", api.get("/api/v1/callbacks/"), {world.callback.pk} if a else set())
        taken = api.post(f"/api/v1/callbacks/{world.callback.pk}/take/")
        expect("POST take", taken, seen(a))
        if taken.status_code == 200:
            assert CallbackTask.objects.get(pk=world.callback.pk).assignee == user

        # Click-to-call: operators with a workplace; supervisor and admin have none (409, in words).
        dial = api.post("/api/v1/calls/dial/", {"number": "+7 903 123-45-67"}, format="json")
        has_workplace = role in ("operator", "manager", "outsider")
        expect("POST dial", dial, 200 if has_workplace else 409)
        if dial.status_code == 409:
            assert dial.json()["code"] == "no_workplace" and dial.json()["error"]

        # The wrap-up (issue 16's service) and follow-up tasks.
        wrapped = api.post(
            f"/api/v1/calls/{world.own_call.pk}/wrap-up/",
            {
                "result": result.pk,
                "comment": "Обещал перезвонить",
                "follow_up_at": due.isoformat(),
                "follow_up_note": "Перезвонить",
            },
            format="json",
        )
        expect("POST wrap-up", wrapped, seen(a))
        if wrapped.status_code == 200:
            assert wrapped.json()["result_name"] == "Консультация"
            assert Call.objects.get(pk=world.own_call.pk).wrapped_up_by == user
            task = FollowUpTask.objects.get(call=world.own_call)
            assert task.assignee == user and task.created_by == user
        expect(
            "POST wrap-up of another team's call",
            api.post(f"/api/v1/calls/{world.outsider_call.pk}/wrap-up/", {"comment": "x"}, format="json"),
            seen(b),
        )
        mine = set(FollowUpTask.objects.filter(created_by=user).values_list("pk", flat=True))
        expect_rows(
            "GET follow-ups",
            api.get("/api/v1/follow-ups/"),
            (({task_a.pk} if a else set()) | ({task_b.pk} if b else set())) | mine,
        )
        expect("GET follow-up", api.get(f"/api/v1/follow-ups/{task_a.pk}/"), seen(a))
        done = api.post(f"/api/v1/follow-ups/{task_b.pk}/complete/")
        expect("POST complete", done, seen(b))
        if done.status_code == 200:
            assert done.json()["done_by"] == user.pk and done.json()["is_open"] is False
        expect("GET call results", api.get("/api/v1/call-results/"), 200)

        expect("GET schema", api.get("/api/schema/"), 200)
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("role", [r for r in ROLES if r != "anonymous"])
def test_a_read_only_token_reads_but_changes_nothing(world: World, role: str) -> None:
    api = token_client(world.users[role], scope="read")
    assert api.get("/api/v1/calls/").status_code == 200
    for method, url, data in (
        ("post", "/api/v1/contacts/", {"name": "X"}),
        ("patch", f"/api/v1/contacts/{world.contact.pk}/", {"name": "X"}),
        ("post", f"/api/v1/callbacks/{world.callback.pk}/take/", {}),
        ("post", "/api/v1/calls/dial/", {"number": "+79031234567"}),
        ("post", f"/api/v1/calls/{world.own_call.pk}/wrap-up/", {"comment": "x"}),
    ):
        response = getattr(api, method)(url, data, format="json")
        assert response.status_code == 403, (method, url, response.status_code)
        assert "read" in response.json()["detail"]
    assert not Contact.objects.filter(name="X").exists()
    assert CallbackTask.objects.get(pk=world.callback.pk).assignee is None


@pytest.mark.parametrize(
    "moment",
    [
        "0001-01-01T00:00:00",
        "0001-01-01",
        "9999-12-31T23:59",
        "9999-12-31T23:59:59-05:00",
        "0001-01-01T00:00:00+05:00",
        "1969-12-31T23:59:59",
        "2101-01-01T00:00:00+03:00",
    ],
)
def test_a_wrap_up_follow_up_at_the_ends_of_the_calendar_is_a_field_error(world: World, moment: str) -> None:
    # The probe's year 1 overflowed (a 500) when the task was saved; year 9999 and zones past it are the class.
    api = token_client(world.users["operator"])
    response = api.post(
        f"/api/v1/calls/{world.own_call.pk}/wrap-up/",
        {"comment": "x", "follow_up_at": moment, "follow_up_note": "n"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {"follow_up_at": ["Enter a date from 1970-01-01 to 2100-12-31."]}
    assert not FollowUpTask.objects.exists()
    assert Call.objects.get(pk=world.own_call.pk).wrapped_up_at is None


def test_a_patch_answers_the_numbers_it_stored(world: World) -> None:
    # The answer was built from the numbers prefetched before the change: a client that trusted it kept
    # the old numbers (and its next PATCH, built from them, put them back).
    api = token_client(world.users["operator"])
    url = f"/api/v1/contacts/{world.contact.pk}/"
    replaced = api.patch(url, {"numbers": ["+7 903 111-22-33", "8 800 555-35-35 доб. 12"]}, format="json")
    assert replaced.status_code == 200
    assert [n["e164"] for n in replaced.json()["numbers"]] == ["+79031112233", "+78005553535"]
    assert replaced.json()["numbers"] == api.get(url).json()["numbers"]
    emptied = api.patch(url, {"numbers": []}, format="json")
    assert emptied.status_code == 200 and emptied.json()["numbers"] == []
    assert not world.contact.numbers.exists()


def test_an_unknown_field_is_refused_and_nothing_is_saved(world: World) -> None:
    # "phone" for "numbers": the contact was created without its number, and the client never knew.
    api = token_client(world.users["operator"])
    before = Contact.objects.count()
    response = api.post("/api/v1/contacts/", {"name": "Новый", "phone": "+7 903 111-22-33"}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["phone"]
    assert response.json()["phone"][0].startswith("No such field. The fields are: name, company, email,")
    assert Contact.objects.count() == before
    typo = api.post(
        f"/api/v1/calls/{world.own_call.pk}/wrap-up/",
        {"result": None, "coment": "перезвонить"},
        format="json",
    )
    assert typo.status_code == 400 and list(typo.json()) == ["coment"]
    world.own_call.refresh_from_db()
    assert world.own_call.wrapped_up_at is None


def test_a_contact_read_may_be_sent_back_with_its_read_only_fields(world: World) -> None:
    api = token_client(world.users["operator"])
    url = f"/api/v1/contacts/{world.contact.pk}/"
    read = api.get(url).json()
    sent = {key: value for key, value in read.items() if key not in ("numbers", "email")}
    response = api.patch(url, {**sent, "company": "ООО Ромашка"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["company"] == "ООО Ромашка"
