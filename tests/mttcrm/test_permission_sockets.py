"""The permission matrix's WebSockets (WS_MATRIX, tests/mttcrm/permission_table.py): every socket route
against every persona (tests/personas.py), and no socket for a page of another site."""

from __future__ import annotations

from typing import Any

import pytest

from tests.calls.realtime_fixtures import TIMEOUT, own_loop, socket
from tests.mttcrm.permission_table import WS_MATRIX
from tests.personas import ROLES, build_world

pytestmark = pytest.mark.django_db


# --- WebSockets ----------------------------------------------------------------------------------------
# Through the whole ASGI stack (origin check, session auth, consumers) with channels' test communicator,
# as tests/calls/test_realtime.py drives it; one socket per test, so that each stays well inside
# own_loop's time limit even on a loaded machine.


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("path", "role"), [(path, role) for path in sorted(WS_MATRIX) for role in ROLES])
def test_the_websocket_matrix(integration: Any, path: str, role: str) -> None:
    user = build_world(integration).users[role]
    expected = WS_MATRIX[path][role]

    @own_loop
    async def run() -> None:
        comm = await socket(user, path="/" + path)
        ok, _ = await comm.connect(timeout=TIMEOUT)
        assert ok, "handshake refused"
        try:
            if expected:
                assert await comm.receive_output(timeout=TIMEOUT) == {
                    "type": "websocket.close",
                    "code": expected,
                }
            else:
                assert await comm.receive_nothing(timeout=0.2), "expected to stay open"
        finally:
            await comm.disconnect()

    run()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", sorted(WS_MATRIX))
def test_no_websocket_for_a_foreign_origin(integration: Any, path: str) -> None:
    # Whoever the user, a page of another site cannot open the socket (mttcrm/wsorigin.py).
    admin = build_world(integration).users["admin"]

    @own_loop
    async def run() -> None:
        comm = await socket(admin, path="/" + path, origin=b"https://evil.example")
        ok, _ = await comm.connect(timeout=TIMEOUT)
        assert not ok

    run()
