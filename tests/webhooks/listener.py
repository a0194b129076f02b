"""A local HTTP server thread that receives webhooks, as a customer's system would."""

from __future__ import annotations

import threading
import time
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
    # An answer of this many bytes (0: "ok"), sent without a length, and how many of them the receiver
    # managed to send before the sender hung up.
    answer_bytes: int = 0
    answer_sent: int = 0
    # ... in blocks of this many bytes, this many seconds apart (a receiver that drips it).
    answer_block: int = 65536
    answer_pause: float = 0.0

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
            if not listener.answer_bytes:
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                return
            self.send_header("Connection", "close")
            self.end_headers()
            block = b"x" * listener.answer_block
            try:
                while listener.answer_sent < listener.answer_bytes:
                    self.wfile.write(block)
                    self.wfile.flush()
                    listener.answer_sent += len(block)
                    time.sleep(listener.answer_pause)
            except OSError:
                pass  # the sender hung up

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
