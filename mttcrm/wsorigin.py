"""The live connections' origin check: the page's ``Origin`` must be one of the allowed origins exactly.

Browsers send an origin serialized (RFC 6454): lower-case scheme and host, the port only when it is not
the scheme's default. The allowed origins are put in that form once; the header is then compared as a
string and never parsed, so a hostile value (``http://host:8000.evil.example``, ``null``, a path, junk)
is refused like any other foreign origin instead of raising. An ASGI middleware of a few lines, in the
shape Channels documents for middleware (a callable taking the inner application); a refused handshake is
closed before it is accepted (the ASGI spec: the server answers 403).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


def serialized_origin(url: str) -> str:
    """``https://CRM.example.com:443/`` → ``https://crm.example.com``; raises ValueError on a bad URL."""
    parts = urlsplit(url.strip())
    scheme, host, port = parts.scheme.lower(), (parts.hostname or ""), parts.port
    if not scheme or not host:
        raise ValueError(f"not an origin: {url!r}")
    if ":" in host:
        host = f"[{host}]"  # IPv6
    if port is None or port == DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


class ExactOriginValidator:
    def __init__(self, application: Any, allowed: Iterable[str]) -> None:
        self.application = application
        self.allowed = frozenset(serialized_origin(origin) for origin in allowed)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and self._origin(scope) not in self.allowed:
            message = await receive()
            if message["type"] == "websocket.connect":
                await send({"type": "websocket.close"})
            return None
        return await self.application(scope, receive, send)

    @staticmethod
    def _origin(scope: dict[str, Any]) -> str | None:
        values = [value for name, value in scope.get("headers", []) if name == b"origin"]
        if len(values) != 1:
            return None  # none, or two: refused
        return values[0].decode("latin-1").lower()
