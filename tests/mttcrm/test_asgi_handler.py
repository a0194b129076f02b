"""The ASGI handler: Django's middleware chain synchronously, in one hop to the request's thread, and
that thread reused by the next request unless a view may still be running on it."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponse
from django.urls import path

from mttcrm.asgi_handler import ExecutorPool, SyncChainASGIHandler

SEEN: dict[str, Any] = {}


class RecordingMiddleware:
    """Sync-only on purpose: notes the thread it runs on."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        SEEN["middleware"] = threading.get_ident()
        return self.get_response(request)


RELEASE = threading.Event()


def sync_view(request: HttpRequest) -> HttpResponse:
    SEEN["view"] = threading.get_ident()
    SEEN.setdefault("views", []).append(threading.get_ident())
    SEEN["language"] = request.LANGUAGE_CODE  # type: ignore[attr-defined]
    return HttpResponse("sync")


async def async_view(request: HttpRequest) -> HttpResponse:
    SEEN["async_view_loop"] = id(asyncio.get_running_loop())
    return HttpResponse("async")


def slow_view(request: HttpRequest) -> HttpResponse:
    SEEN["slow"] = threading.get_ident()
    RELEASE.wait(10)
    return HttpResponse("slow")


urlpatterns = [path("sync", sync_view), path("async", async_view), path("slow", slow_view)]


def recorded_settings(settings: Any) -> None:
    settings.ROOT_URLCONF = __name__
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{__name__}.RecordingMiddleware"]


def communicator(app: Any, url: str) -> ApplicationCommunicator:
    return ApplicationCommunicator(
        app, {"type": "http", "method": "GET", "path": url, "headers": [(b"host", b"testserver")],
              "query_string": b""}
    )  # fmt: skip


@pytest.fixture
def handler(settings: Any) -> SyncChainASGIHandler:
    """The test URLs and the recording middleware; a pool of its own, nothing seen, /slow held."""
    recorded_settings(settings)
    handler = SyncChainASGIHandler()
    handler.executors = ExecutorPool()
    SEEN.clear()
    RELEASE.clear()
    return handler


async def start_slow(handler: SyncChainASGIHandler) -> ApplicationCommunicator:
    """A request to /slow, its view started and waiting for RELEASE."""
    slow = communicator(handler, "/slow")
    await slow.send_input({"type": "http.request", "body": b""})
    while "slow" not in SEEN:
        await asyncio.sleep(0.01)
    return slow


async def get(app: Any, url: str) -> tuple[int, bytes]:
    comm = communicator(app, url)
    await comm.send_input({"type": "http.request", "body": b""})
    start = await comm.receive_output(timeout=10)
    body = await comm.receive_output(timeout=10)
    await comm.wait(timeout=10)
    return start["status"], body["body"]


def test_the_chain_is_synchronous_where_djangos_would_be_async(settings: Any) -> None:
    # Django's own handler turns the chain async (its middleware can run both ways): the test can fail.
    assert asyncio.iscoroutinefunction(ASGIHandler()._middleware_chain)
    assert not asyncio.iscoroutinefunction(SyncChainASGIHandler()._middleware_chain)


@pytest.mark.django_db
async def test_middleware_and_view_run_on_one_thread_off_the_event_loop(
    handler: SyncChainASGIHandler,
) -> None:
    status, body = await get(handler, "/sync")
    assert (status, body) == (200, b"sync")
    assert SEEN["middleware"] == SEEN["view"] != threading.get_ident()
    assert SEEN["language"] == "ru"  # the whole chain ran: our language middleware included


@pytest.mark.django_db
async def test_the_next_request_reuses_the_thread(handler: SyncChainASGIHandler) -> None:
    for _ in range(3):
        assert await get(handler, "/sync") == (200, b"sync")
    assert len(set(SEEN["views"])) == 1
    assert len(handler.executors.idle) == 1


@pytest.mark.django_db
async def test_a_slow_view_holds_only_its_own_request(handler: SyncChainASGIHandler) -> None:
    slow = await start_slow(handler)
    try:
        assert await get(handler, "/sync") == (200, b"sync")  # while /slow still waits
        assert SEEN["view"] != SEEN["slow"]
    finally:
        RELEASE.set()
    assert (await slow.receive_output(timeout=10))["status"] == 200
    await slow.wait(timeout=10)
    assert len(handler.executors.idle) == 2  # both threads idle again, kept for the next requests


@pytest.mark.django_db
async def test_a_thread_whose_view_outlived_its_client_is_not_reused(handler: SyncChainASGIHandler) -> None:
    slow = await start_slow(handler)
    try:
        await slow.send_input({"type": "http.disconnect"})  # the client goes away: Django cancels
        await asyncio.sleep(0.2)
        # Another request meanwhile is not queued behind the abandoned view.
        assert await get(handler, "/sync") == (200, b"sync")
        assert SEEN["view"] != SEEN["slow"]
    finally:
        RELEASE.set()
    await slow.wait(timeout=10)
    # Only the /sync request's thread is kept; the abandoned view's is let go.
    assert len(handler.executors.idle) == 1
    assert SEEN["slow"] not in {e._threads and next(iter(e._threads)).ident for e in handler.executors.idle}


def test_the_pool_keeps_a_bounded_number_of_idle_threads() -> None:
    pool = ExecutorPool(max_idle=2)
    executors = [pool.take() for _ in range(3)]
    assert len({id(e) for e in executors}) == 3  # none idle: each request its own
    for executor in executors:
        pool.give(executor, reusable=True)
    assert pool.idle == executors[:2]
    assert executors[2]._shutdown  # the third is let go
    pool.give(pool.take(), reusable=False)
    assert len(pool.idle) == 1


@pytest.mark.django_db
async def test_an_async_view_runs_on_the_servers_event_loop(handler: SyncChainASGIHandler) -> None:
    status, body = await get(handler, "/async")
    assert (status, body) == (200, b"async")
    assert SEEN["async_view_loop"] == id(asyncio.get_running_loop())


def test_the_production_application_uses_it() -> None:
    from mttcrm import asgi

    assert isinstance(asgi.django_asgi_app, SyncChainASGIHandler)
