"""Django's ASGI handler, made cheap per request: the middleware chain in one hop, on a reused thread.

Two costs of Django's own handler under Daphne, measured with py-spy on one process serving a trivial
view (bench/notify_cost.py gives the CPU per request):

* Django builds the middleware chain in async mode wherever a middleware can run async. Ours mixes the
  two kinds (WhiteNoise and our own are sync-only; Django's are both, through ``MiddlewareMixin``, whose
  async mode runs each ``process_request``/``process_response`` through ``sync_to_async``), so every
  request crossed between the event loop and a thread some twenty times. Here the whole chain runs
  synchronously, in one ``sync_to_async`` call. All our views are synchronous; the one async view,
  /healthz, runs through ``async_to_sync`` on the server's event loop, as Django does for an async view
  in a sync chain.
* Each request got a new thread (``ThreadSensitiveContext`` creates an executor per request and shuts it
  down after). Here a request takes an idle single-thread executor from a small pool and gives it back,
  as a WSGI server's thread pool does. Still one thread per request at a time: the request's database
  connection is the one ``request_finished`` returns to the pool, and a slow view (an MTT call) holds
  only its own request.

Together they took a trivial view from ~4.4 to ~1.6 ms of CPU (BENCHMARKS.md, "What a request costs").
WebSockets are not affected (Channels consumers, ``mttcrm/asgi.py``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase

# More idle threads than this are let go (shut down when their request ends): a burst of concurrent
# requests does not leave a crowd of threads behind.
MAX_IDLE_EXECUTORS = 16

# Per request: True while its thread may still be running a view (set around get_response).
_BUSY: ContextVar[list[bool] | None] = ContextVar("mttcrm_request_thread_busy", default=None)


class ExecutorPool:
    """Idle single-thread executors. Used from the event loop's thread only: no lock needed."""

    def __init__(self, max_idle: int = MAX_IDLE_EXECUTORS) -> None:
        self.max_idle = max_idle
        self.idle: list[ThreadPoolExecutor] = []

    def take(self) -> ThreadPoolExecutor:
        return self.idle.pop() if self.idle else ThreadPoolExecutor(1, thread_name_prefix="request")

    def give(self, executor: ThreadPoolExecutor, *, reusable: bool) -> None:
        if reusable and len(self.idle) < self.max_idle:
            self.idle.append(executor)
        else:
            # Its thread ends when it has finished what it runs (a view whose client went away).
            executor.shutdown(wait=False)


class SyncChainASGIHandler(ASGIHandler):
    executors = ExecutorPool()

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = self.executors.take()
        busy = [False]
        token = _BUSY.set(busy)
        reusable = False
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
            # A request cancelled while its view ran (the client went away): the view and Django's
            # request_finished still run on that thread; it is let go rather than handed out again.
            reusable = not busy[0]
        finally:
            _BUSY.reset(token)
            self.executors.give(executor, reusable=reusable)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        busy = _BUSY.get()
        if busy is not None:
            busy[0] = True
        response = await sync_to_async(self.get_response, thread_sensitive=True)(request)
        if busy is not None:
            busy[0] = False
        return response


def get_asgi_application() -> SyncChainASGIHandler:
    """Like ``django.core.asgi.get_asgi_application``, with this handler."""
    import django

    django.setup(set_prefix=False)
    return SyncChainASGIHandler()
