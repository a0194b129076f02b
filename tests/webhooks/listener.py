"""A local HTTP server thread that receives webhooks, as a customer's system would."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Listener:
    port: int
    received: list[Received] = field(default_factory=list)
    answer: int = 204

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/mttcrm"

    def ids(self) -> list[str]:
        return [r.headers["webhook-id"] for r in self.received]


def _handler(listener: Listener) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            listener.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(listener.answer)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def serving(listener: Listener) -> Iterator[Listener]:
    """Serve on ``listener.port`` (0: a free one, written back) until the block ends; then the port refuses
    connections, as a receiver that is down."""
    server = ThreadingHTTPServer(("127.0.0.1", listener.port), _handler(listener))
    listener.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield listener
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
