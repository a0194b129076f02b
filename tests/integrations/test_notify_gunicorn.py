"""The notify URL behind the server we run (gunicorn, mttcrm/gunicorn.py): what only a real server shows."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from urllib.parse import urlsplit

from tests.browser.stack import running_stack
from tests.conftest import load_fixture


def _post_chunked(url: str, chunks: list[bytes]) -> tuple[int, bytes]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        # No Content-Length: http.client sends an iterable body with Transfer-Encoding: chunked.
        conn.request(
            "POST",
            parts.path,
            body=iter(chunks),
            headers={"Content-Type": "application/json"},
            encode_chunked=True,
        )
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_a_chunked_notification_through_gunicorn_is_stored(tmp_path: Path) -> None:
    """MTT (or a proxy before us: Caddy forwards a chunked body as it comes) may send a notification chunked,
    without Content-Length. gunicorn says the input ends with the body (wsgi.input_terminated): it is read
    whole and stored; past MTT_NOTIFY_MAX_BYTES it is 413."""
    body = json.dumps(load_fixture("notifications/01_incoming_trying.json"), ensure_ascii=False).encode()
    with running_stack(tmp_path, extra_env={"MTT_NOTIFY_MAX_BYTES": "4096"}, processes=("web",)) as stack:
        status, content = _post_chunked(stack.notify_url, [body[:10], body[10:100], body[100:]])
        assert status == 200, content
        answer = json.loads(content)
        assert answer["ok"] is True and answer["duplicate"] is False and "ignored" not in answer
        # The same body again (one chunk): the same notification, so the first was stored whole.
        status, content = _post_chunked(stack.notify_url, [body])
        assert status == 200 and json.loads(content)["duplicate"] is True, content
        status, content = _post_chunked(stack.notify_url, [b'{"event": "x", "pad": "', b"x" * 5000, b'"}'])
        assert status == 413, content
