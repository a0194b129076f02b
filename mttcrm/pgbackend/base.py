"""Django's PostgreSQL backend with our connection pool (DATABASE_URL postgres://… selects it).

Two changes to the psycopg pool that Django's backend builds (``OPTIONS["pool"]``, Django 5.1+):

* **The health check is skipped for a connection that was just in use.** The pool checks a connection
  before handing it out (an empty query, a round trip to PostgreSQL), so that after a PostgreSQL restart
  its dead connections fail the check rather than a request. Under load every request paid that round
  trip on a connection another request had given back a millisecond before. One given back in a usable
  state less than ``RECENTLY_USED_SECONDS`` ago is handed out unchecked; one idle for longer is checked
  as before. The trade: a connection given back in the second before PostgreSQL went away fails the one
  request that takes it next (the pool then discards it) — a notification, which is spooled, not lost
  (integrations/spool.py), or a page, which answers the translated 503 (mttcrm/dbdown.py).
* **A checkout may wait less than the pool's timeout** (``checkout_wait``): the database gate
  (mttcrm/dbdown.py) opens the request's own connection with a short wait, instead of taking and giving
  back a separate one before the view takes another.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.postgresql import base
from psycopg_pool import AsyncConnectionPool, ConnectionPool

RECENTLY_USED_SECONDS = 1.0

# connection -> when it was last given back to the pool in a usable state (time.monotonic()).
_RETURNED: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()
# How long this context's next checkout may wait; None: the pool's timeout (DB_POOL_TIMEOUT).
_CHECKOUT_WAIT: ContextVar[float | None] = ContextVar("mttcrm_pool_checkout_wait", default=None)


def _recently_used(conn: Any) -> bool:
    returned = _RETURNED.get(conn)
    return returned is not None and time.monotonic() - returned < RECENTLY_USED_SECONDS


def check_unless_recently_used(conn: Any) -> None:
    """The pool's ``check`` callback: raise if the connection does not work."""
    if not _recently_used(conn):
        ConnectionPool.check_connection(conn)


async def check_unless_recently_used_async(conn: Any) -> None:
    """The same, for an ``AsyncConnectionPool`` (the notify URL's fast lane, integrations/fastlane.py)."""
    if not _recently_used(conn):
        await AsyncConnectionPool.check_connection(conn)


@contextmanager
def checkout_wait(seconds: float) -> Iterator[None]:
    """A connection opened inside this block waits at most ``seconds`` for the pool."""
    token = _CHECKOUT_WAIT.set(seconds)
    try:
        yield
    finally:
        _CHECKOUT_WAIT.reset(token)


class Pool(ConnectionPool):
    def getconn(self, timeout: float | None = None) -> Any:
        return super().getconn(_CHECKOUT_WAIT.get() if timeout is None else timeout)

    def putconn(self, conn: Any) -> None:
        # Noted here rather than in a ``reset`` callback: with one, psycopg_pool gives every connection
        # back through its worker thread (a thread hand-off per request). A connection given back
        # broken is discarded by the pool, so the note on it never counts.
        _RETURNED[conn] = time.monotonic()
        super().putconn(conn)


class AsyncPool(AsyncConnectionPool):
    async def putconn(self, conn: Any) -> None:
        _RETURNED[conn] = time.monotonic()
        await super().putconn(conn)


def async_pool(wrapper: Any, *, max_size: int, timeout: float) -> AsyncPool:
    """A pool of async connections to the database of Django's ``wrapper``, checked as the sync pool's
    (not opened: ``await pool.open()`` on the event loop that will use it)."""
    params = wrapper.get_connection_params()
    params.pop("cursor_factory", None)  # Django's is a sync cursor class
    params["autocommit"] = True
    return AsyncPool(
        kwargs=params,
        min_size=1,
        max_size=max_size,
        open=False,
        check=check_unless_recently_used_async,
        timeout=timeout,
        name="fast-lane",
    )


class DatabaseWrapper(base.DatabaseWrapper):
    _connection_pools: dict[str, Pool]  # Django's, shared by the class (not in django-stubs)

    @property
    def pool(self) -> Pool | None:
        # Django's own property (django/db/backends/postgresql/base.py, 5.2) with our class and check.
        pool_options = self.settings_dict["OPTIONS"].get("pool")
        if self.alias == NO_DB_ALIAS or not pool_options:
            return None
        if self.alias not in self._connection_pools:
            if self.settings_dict.get("CONN_MAX_AGE", 0) != 0:
                raise ImproperlyConfigured("Pooling doesn't support persistent connections.")
            connect_kwargs = self.get_connection_params()
            connect_kwargs["autocommit"] = True  # Django sets it properly later on
            pool = Pool(
                kwargs=connect_kwargs,
                open=False,  # opened by the first checkout, as Django's
                configure=self._configure_connection,  # type: ignore[attr-defined]
                check=check_unless_recently_used,
                **({} if pool_options is True else pool_options),
            )
            self._connection_pools.setdefault(self.alias, pool)
        return self._connection_pools[self.alias]
