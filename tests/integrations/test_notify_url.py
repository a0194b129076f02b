from __future__ import annotations

import copy
import json
from typing import Any
from unittest import mock

import pytest
from django.test import Client

from integrations.models import Integration, NotificationEvent
from integrations.selectors import NotifyTarget
from tests.conftest import FIXTURES, load_fixture

pytestmark = pytest.mark.django_db


def post_json(client: Client, url: str, body: Any) -> Any:
    return client.post(url, data=json.dumps(body, ensure_ascii=False), content_type="application/json")


@pytest.mark.parametrize("name", sorted(p.name for p in (FIXTURES / "notifications").glob("*.json")))
def test_every_guide_notification_is_stored_and_acknowledged(
    client: Client, integration: Integration, name: str
) -> None:
    body = load_fixture(f"notifications/{name}")
    response = post_json(client, integration.notify_path, body)
    assert response.status_code == 200, response.content
    assert response.json()["ok"] is True
    event = NotificationEvent.objects.get(integration=integration)
    assert event.body == body
    assert event.event == body["event"]
    integration.refresh_from_db()
    assert integration.last_notification_at is not None


def test_wrong_token_is_404_and_stores_nothing(client: Client, integration: Integration) -> None:
    body = load_fixture("notifications/01_incoming_trying.json")
    response = post_json(client, "/mtt/not-the-token/", body)
    assert response.status_code == 404
    assert client.get("/mtt/not-the-token/?code=x&state=y").status_code == 404
    assert NotificationEvent.objects.count() == 0


@pytest.mark.django_db(transaction=True)  # the refused INSERT must not abort the test's transaction
def test_an_integration_deleted_by_another_process_is_404_not_500(
    client: Client, integration: Integration
) -> None:
    """Another process deletes the integration between our token lookup and our INSERT: the foreign key
    refuses the row, the answer is 404."""
    from django.db import connection

    with connection.cursor() as cursor:  # as another process would
        cursor.execute("DELETE FROM integrations_integration WHERE id = %s", [integration.pk])
    body = load_fixture("notifications/01_incoming_trying.json")
    with mock.patch(
        "integrations.views.notify_target_for_token", return_value=NotifyTarget(integration_id=integration.pk)
    ):
        response = post_json(client, integration.notify_path, body)
    assert response.status_code == 404
    assert NotificationEvent.objects.count() == 0


def test_duplicate_notification_stored_once(client: Client, integration: Integration) -> None:
    body = load_fixture("notifications/01_incoming_trying.json")
    first = post_json(client, integration.notify_path, body)
    # Same content, other key order and white space: still the same notification (guide §6.5).
    second = client.post(
        integration.notify_path,
        data=json.dumps(body, indent=2, sort_keys=True),
        content_type="application/json",
    )
    assert first.status_code == second.status_code == 200
    assert second.json()["duplicate"] is True
    assert NotificationEvent.objects.count() == 1


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"[1, 2, 3]", "not a JSON object"),
        (b'"just a string"', "not a JSON object"),
        (b'{"result": {}}', "'event'"),
        (b'{"event": "callNotifications"}', "'result'"),
        (b'{"event": "callNotifications", "result": {"callInfo": {"state": "trying"}}}', "call.id"),
        (b'{"event": "callNotifications", "result": {"callInfo": {"call": {"id": "x"}}}}', "state"),
        (b'{"event": "vpbxNotifications", "result": {}}', "eventType"),
        (b'{"event": "somethingNew", "result": {"x": 1}}', "somethingNew"),
        (b'{"event": "vpbxNotifications", "result": {"eventType": "galaxyChanged"}}', "'galaxyChanged'"),
        (
            b'{"event": "callNotifications", "result": {"callInfo": {"call": {"id": "x"}, "state": "exploding"}}}',
            "'exploding'",
        ),
        (
            b'{"event": "callNotifications", "result": {"callInfo": {"call": {"id": "~~~"}, "state": "trying"}}}',
            "no Call-ID before '~'",
        ),
        (
            b'{"event": "callNotifications", "result": {"callInfo": {"call": {"id": "  "}, "state": "trying"}}}',
            "call.id' is missing",
        ),
        (b"[" * 5000 + b"]" * 5000, "nested"),
    ],
)
def test_json_that_is_no_notification_we_understand_is_kept_as_ignored_and_acknowledged(
    client: Client, integration: Integration, raw: bytes, reason: str, apply_inbox: Any
) -> None:
    """MTT promises no resend (API.md): what it sends is kept even when we cannot use it, with the reason
    (Admin → Notifications), and never applied."""
    response = client.post(integration.notify_path, data=raw, content_type="application/json")
    assert response.status_code == 200
    assert response.json()["ignored"] is True
    event = NotificationEvent.objects.get()
    assert event.status == NotificationEvent.Status.IGNORED
    assert reason in event.error
    assert apply_inbox().taken == 0  # nothing for the applier
    again = client.post(integration.notify_path, data=raw, content_type="application/json")
    assert again.json()["duplicate"] is True
    assert NotificationEvent.objects.count() == 1


def test_huge_body_is_413(client: Client, integration: Integration) -> None:
    body = {"event": "callNotifications", "result": {"callInfo": {"padding": "x" * (300 * 1024)}}}
    response = post_json(client, integration.notify_path, body)
    assert response.status_code == 413
    assert NotificationEvent.objects.count() == 0


def test_call_notifications_wait_for_the_applier(
    client: Client, integration: Integration, apply_inbox: Any
) -> None:
    post_json(client, integration.notify_path, load_fixture("notifications/01_incoming_trying.json"))
    event = NotificationEvent.objects.get()
    assert event.status == NotificationEvent.Status.PENDING  # stored and answered; the applier applies
    assert event.priority == NotificationEvent.Priority.CARD
    apply_inbox()
    event.refresh_from_db()
    assert event.status == NotificationEvent.Status.APPLIED


@pytest.mark.parametrize("suffix", ["/", ""])
def test_the_notify_url_works_with_or_without_its_trailing_slash(
    client: Client, integration: Integration, suffix: str, settings: Any
) -> None:
    """A POST cannot be redirected by APPEND_SLASH: without the slash it was a 500 under DEBUG and a 301
    otherwise, the notification lost (issue 18, probe 5)."""
    for debug in (True, False):
        settings.DEBUG = debug
        body = {**load_fixture("notifications/01_incoming_trying.json"), "debug": debug}
        response = post_json(client, integration.notify_path.rstrip("/") + suffix, body)
        assert response.status_code == 200, response.content
    assert NotificationEvent.objects.count() == 2


def test_get_and_post_only(client: Client, integration: Integration) -> None:
    assert client.put(integration.notify_path, data="{}").status_code == 405


@pytest.mark.django_db(transaction=True)
def test_directory_notifications_trigger_one_debounced_sync(
    client: Client, integration: Integration, apply_inbox: Any
) -> None:
    with mock.patch("integrations.tasks.sync_integration.apply_async") as apply_async:
        for i in range(10):
            body = {"event": "vpbxNotifications", "result": {"eventType": "workplacesChanged"}, "n": i}
            assert post_json(client, integration.notify_path, body).status_code == 200
        apply_inbox()
    assert apply_async.call_count == 1
    assert apply_async.call_args.kwargs["countdown"] > 0
    assert NotificationEvent.objects.filter(status=NotificationEvent.Status.APPLIED).count() == 10
    integration.refresh_from_db()
    assert integration.sync_requested_at is not None


# --- Found by fuzzing (tests/fuzz/test_notify_fuzz.py): each was a 500, or worse, before -----------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        # Each was a 500 or worse before it was refused; now each is kept as the text it came as, and ignored.
        # (NaN and Infinity were too: a cleaned copy is stored now, test_a_nan_or_infinity_keeps_the_call.)
        # Nesting json.loads accepts but Django's JSON encoding of the row did not (RecursionError, 500).
        (b'{"event": "e", "result": {"x": ' + b"[" * 900 + b"]" * 900 + b"}}", "nested deeper"),
        # Deeper than json.loads reads at all (RecursionError: where depends on the stack): the same words.
        (b'{"event": "e", "result": {"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}", "nested deeper"),
        # A number past int's 4,300 digits (ValueError in json.loads).
        (b'{"event": "e", "result": {"x": 1' + b"0" * 5000 + b"}}", "number too long"),
    ],
)
def test_json_that_cannot_be_stored_as_json_is_kept_as_text_and_ignored(
    client: Client, integration: Integration, raw: bytes, reason: str
) -> None:
    response = client.post(integration.notify_path, data=raw, content_type="application/json")
    assert response.status_code == 200
    event = NotificationEvent.objects.get()
    assert event.status == NotificationEvent.Status.IGNORED
    assert reason in event.error
    assert event.body == {"unreadable_body": raw.decode()}


@pytest.mark.parametrize("length", ["abc", "1e3", "12 34"])
def test_a_content_length_that_is_no_number_is_400(
    client: Client, integration: Integration, length: str
) -> None:
    # Django's request.body raised ValueError on it (a 500).
    body = json.dumps(load_fixture("notifications/01_incoming_trying.json"))
    response = client.post(
        integration.notify_path, body, content_type="application/json", CONTENT_LENGTH=length
    )
    assert response.status_code == 400
    assert NotificationEvent.objects.count() == 0


def test_a_nul_in_the_token_is_404(client: Client, integration: Integration) -> None:
    # On PostgreSQL the token lookup raised DataError ("cannot contain NUL"): a 500 on GET.
    assert client.get("/mtt/%00/", {"code": "c", "state": "s"}).status_code == 404
    assert client.get(f"{integration.notify_path[:-1]}%00/").status_code == 404


# --- A byte-order mark, a chunked body (probe of the notify URL) ------------------------------------------


@pytest.mark.parametrize("name", ["01_incoming_trying.json", "07_incoming_finished.json"])
def test_a_body_that_begins_with_a_byte_order_mark_is_stored_and_applied_as_without_it(
    client: Client, integration: Integration, apply_inbox: Any, name: str
) -> None:
    """Some HTTP stacks write a UTF-8 BOM before JSON; RFC 8259 lets a reader ignore it, and we do."""
    body = load_fixture(f"notifications/{name}")
    raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
    response = client.post(
        integration.notify_path, data=b"\xef\xbb\xbf" + raw, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    assert "ignored" not in response.json()
    event = NotificationEvent.objects.get()
    assert event.body == body
    # The same body without the mark is the same notification.
    again = client.post(integration.notify_path, data=raw, content_type="application/json")
    assert again.json()["duplicate"] is True
    assert apply_inbox().applied == 1
    event.refresh_from_db()
    assert event.status == NotificationEvent.Status.APPLIED


def _wsgi_post(path: str, body: bytes, *, terminated: bool, content_length: str | None = None) -> Any:
    """A POST through Django's WSGI handler with the environ a server builds for a chunked request: no
    CONTENT_LENGTH, the whole body in wsgi.input, and (gunicorn, mod_wsgi) wsgi.input_terminated."""
    import io

    from django.core.handlers.wsgi import WSGIHandler

    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if terminated:
        environ["wsgi.input_terminated"] = True
    if content_length is not None:
        environ["CONTENT_LENGTH"] = content_length
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        started["status"] = int(status.split()[0])

    chunks = WSGIHandler()(environ, start_response)
    content = b"".join(chunks)
    return started["status"], content


@pytest.mark.django_db(transaction=True)  # the WSGI handler closes the connection after the request
def test_a_chunked_body_without_content_length_is_read_when_the_server_terminates_the_input(
    integration: Integration,
) -> None:
    body = json.dumps(load_fixture("notifications/01_incoming_trying.json")).encode()
    status, content = _wsgi_post(integration.notify_path, body, terminated=True)
    assert status == 200, content
    assert NotificationEvent.objects.get().body == json.loads(body)


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_past_the_limit_is_413(integration: Integration, settings: Any) -> None:
    body = json.dumps(
        {"event": "callNotifications", "pad": "x" * (settings.MTT_NOTIFY_MAX_BYTES + 10)}
    ).encode()
    status, _content = _wsgi_post(integration.notify_path, body, terminated=True)
    assert status == 413
    assert NotificationEvent.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_without_content_length_and_an_unterminated_input_the_body_is_empty_as_wsgi_says(
    integration: Integration,
) -> None:
    """PEP 3333: without CONTENT_LENGTH (and no promise that the input ends) nothing may be read."""
    body = json.dumps(load_fixture("notifications/01_incoming_trying.json")).encode()
    status, content = _wsgi_post(integration.notify_path, body, terminated=False)
    # Nothing was read: what is kept is an empty body, ignored, and the answer says so.
    assert status == 200
    assert json.loads(content)["reason"] == "body is empty"
    assert NotificationEvent.objects.get().status == NotificationEvent.Status.IGNORED
    # A declared length is used as today, terminated input or not.
    status, _content = _wsgi_post(
        integration.notify_path, body, terminated=True, content_length=str(len(body))
    )
    assert status == 200
    assert NotificationEvent.objects.count() == 2


# --- NUL characters and lone surrogates: kept as received, applied as a cleaned copy ----------------------


def _with_display_name(name_json: str) -> bytes:
    """Fixture 01 with the caller's displayName written as the JSON text ``name_json`` (escapes kept)."""
    body = load_fixture("notifications/01_incoming_trying.json")
    body["result"]["callInfo"]["caller"]["displayName"] = "@@NAME@@"
    return json.dumps(body, ensure_ascii=False).replace('"@@NAME@@"', name_json).encode()


@pytest.mark.parametrize(
    ("name_json", "stored"),
    [
        ('"a\\u0000b"', "a\ufffdb"),
        ('"\\ud800"', "\ufffd"),
        ('"\\udfff x \\u0000"', "\ufffd x \ufffd"),
        # A surrogate pair is one character, not a lone surrogate: kept as it is.
        ('"\\ud83d\\ude00 \\ud800"', "\U0001f600 \ufffd"),
    ],
)
def test_a_nul_or_lone_surrogate_in_a_string_keeps_the_call(
    client: Client, integration: Integration, apply_inbox: Any, name_json: str, stored: str
) -> None:
    """A caller's displayName with a NUL or a lone surrogate made the whole notification ignored: the call
    and the operator's card were lost. The body is kept exactly as received (``received_text``), and a copy
    with U+FFFD in place of those characters (which PostgreSQL's jsonb cannot hold) is stored and applied."""
    from calls.models import Call

    raw = _with_display_name(name_json)
    response = client.post(integration.notify_path, data=raw, content_type="application/json")
    assert response.status_code == 200, response.content
    assert "ignored" not in response.json()
    event = NotificationEvent.objects.get()
    assert event.received_text == raw.decode()
    assert event.body["result"]["callInfo"]["caller"]["displayName"] == stored
    assert event.error == ""
    assert apply_inbox().applied == 1
    event.refresh_from_db()
    assert event.status == NotificationEvent.Status.APPLIED
    assert Call.objects.get().client_number == "+78124241500"
    # Sent again (other white space): the same notification.
    again = client.post(integration.notify_path, data=b"  " + raw, content_type="application/json")
    assert again.json()["duplicate"] is True
    # Its copy, sent with U+FFFD itself, is another notification: the fingerprint is of what was received.
    copy = json.dumps(event.body, ensure_ascii=False).encode()
    other = client.post(integration.notify_path, data=copy, content_type="application/json")
    assert other.json()["duplicate"] is False


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"event": "e", "result": {"x": "a\\u0000b"}}', "NUL"),
        (b'{"event": "e", "result": {"\\u0000": 1}}', "NUL"),
        (b'{"event": "e\\u0000", "result": {}}', "NUL"),
        (b'{"event": "e", "result": {"x": "\\ud800"}}', "surrogate"),
    ],
)
def test_a_nul_or_lone_surrogate_in_a_body_we_do_not_understand_is_kept_ignored_with_both_reasons(
    client: Client, integration: Integration, raw: bytes, reason: str
) -> None:
    response = client.post(integration.notify_path, data=raw, content_type="application/json")
    assert response.status_code == 200
    event = NotificationEvent.objects.get()
    assert event.status == NotificationEvent.Status.IGNORED
    assert "not one the guide describes" in event.error and reason in event.error
    assert event.received_text == raw.decode()
    assert "\x00" not in json.dumps(event.body, ensure_ascii=False)


# json.loads takes NaN, Infinity and 1e400 (= inf); JSON does not (PostgreSQL's jsonb and SQLite's JSON_VALID
# refuse them), as they come from a Python json.dumps anywhere between the PBX and us.
NOT_FINITE = ["NaN", "Infinity", "-Infinity", "1e400", "-1E+999"]


@pytest.mark.parametrize("number", NOT_FINITE)
def test_a_nan_or_infinity_keeps_the_call(
    client: Client, integration: Integration, apply_inbox: Any, number: str
) -> None:
    """A finished whose duration was NaN (or any field Infinity) was kept only as text and ignored: the end
    of the call was lost, the operator stayed busy until the reconcile closed the call hours later as ended
    without a notification. Now, as with a NUL in a name, the body is kept exactly as received
    (``received_text``) and a copy with null in place of the number is stored and applied."""
    from calls.models import Call

    trying = load_fixture("notifications/01_incoming_trying.json")
    finished = copy.deepcopy(trying)
    finished["result"]["callInfo"].update(state="finished", duration=0, reason="Normal call clearing")
    finished["result"]["callInfo"].pop("startTime")
    raw = json.dumps(finished).replace('"duration": 0', f'"duration": {number}').encode()
    assert post_json(client, integration.notify_path, trying).status_code == 200
    response = client.post(integration.notify_path, data=raw, content_type="application/json")
    assert response.status_code == 200, response.content
    assert "ignored" not in response.json()
    event = NotificationEvent.objects.get(pk=response.json()["id"])
    assert event.received_text == raw.decode()
    assert event.body["result"]["callInfo"]["duration"] is None
    assert apply_inbox().applied == 2
    event.refresh_from_db()
    assert (event.status, event.error) == (NotificationEvent.Status.APPLIED, "")
    call = Call.objects.get()
    assert call.status == Call.Status.MISSED and call.ended_at is not None
    # Sent again: the same notification; sent with null (as stored): another one.
    assert client.post(integration.notify_path, data=raw, content_type="application/json").json()["duplicate"]
    plain = json.dumps(event.body).encode()
    assert not client.post(integration.notify_path, data=plain, content_type="application/json").json()[
        "duplicate"
    ]


@pytest.mark.parametrize("number", NOT_FINITE)
def test_a_nan_or_infinity_in_a_body_we_do_not_understand_is_kept_ignored_with_both_reasons(
    client: Client, integration: Integration, number: str
) -> None:
    raw = b'{"event": "e", "result": {"x": %s, "y": "a\\u0000b"}}' % number.encode()
    response = client.post(integration.notify_path, data=raw, content_type="application/json")
    assert response.status_code == 200
    event = NotificationEvent.objects.get()
    assert event.status == NotificationEvent.Status.IGNORED
    assert "not one the guide describes" in event.error
    assert "not finite" in event.error or "NUL" in event.error
    assert event.received_text == raw.decode()
    assert event.body == {"event": "e", "result": {"x": None, "y": "a\ufffdb"}}
