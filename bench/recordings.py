"""Recording download benchmark: the worker's memory while it copies a 200 MB record.

    .venv/bin/python bench/recordings.py [--megabytes 200]

A separate process serves a generated mp3 of that size (the sandbox's recording repeated, with a
Content-Length, sent in 64 KB writes). This process runs `recording_download` — what the Celery task
calls — on a throw-away SQLite database with MEDIA_ROOT in a temporary folder, after one small warm-up
download, while a thread samples its resident memory (VmRSS) every 5 ms. It prints the idle RSS, the
peak during the download and the difference, and checks the stored file (size, sha256). Goal: peak
under idle + 50 MB.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from _common import free_port  # noqa: E402

MP3 = (ROOT / "sandbox" / "static" / "recording.mp3").read_bytes()
BLOCK = (MP3 * (1024 * 1024 // len(MP3) + 1))[: 1024 * 1024]


def body_bytes(size: int) -> Iterator[bytes]:
    """The first ``size`` bytes of MP3 repeated, in 64 KB pieces (memory-flat on the server too)."""
    sent = 0
    while sent < size:
        piece = BLOCK[: min(len(BLOCK), size - sent)]
        for i in range(0, len(piece), 64 * 1024):
            yield piece[i : i + 64 * 1024]
        sent += len(piece)


def serve(port: int, size: int) -> None:
    from werkzeug.serving import make_server

    def app(environ: Any, start_response: Any) -> Any:
        wanted = MP3 if environ["PATH_INFO"].endswith("warmup.mp3") else None
        length = len(MP3) if wanted else size
        start_response("200 OK", [("Content-Type", "audio/mpeg"), ("Content-Length", str(length))])
        return [wanted] if wanted else body_bytes(size)

    make_server("127.0.0.1", port, app, threaded=True).serve_forever()


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class Sampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(0.005)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--megabytes", type=int, default=200)
    args = parser.parse_args()
    size = args.megabytes * 1024 * 1024

    port = free_port()
    server = multiprocessing.get_context("fork").Process(target=serve, args=(port, size), daemon=True)
    server.start()
    workdir = Path(tempfile.mkdtemp(prefix="mttcrm-bench-rec-"))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "mttcrm.settings",
            "VAR_DIR": str(workdir),
            "MEDIA_ROOT": str(workdir / "media"),
            "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
            "LOG_LEVEL": "WARNING",
        }
    )
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.utils import timezone

    from calls.models import Call, Recording
    from calls.recordings.services import recording_download
    from calls.recordings.storage import recording_storage_key
    from integrations.models import Integration

    call_command("migrate", verbosity=0)
    entry = f"127.0.0.1:{port}"
    settings.RECORDINGS_ALLOWED_HOSTS = [entry]
    settings.RECORDINGS_ALLOW_PRIVATE_HOSTS = [entry]
    settings.RECORDINGS_ALLOW_HTTP = True
    settings.RECORDINGS_MAX_BYTES = size

    integration = Integration.objects.create(name="bench", client_id="c", client_secret="s")
    call = Call.objects.create(integration=integration, call_key="bench")

    def recording(name: str) -> Recording:
        url = f"http://{entry}/records/{name}"
        return Recording.objects.create(
            integration=integration,
            call=call,
            leg_call_id="bench",
            source_url=url,
            storage_key=recording_storage_key(received_at=timezone.now(), name=name, source_url=url),
            mtt_expires_at=timezone.now(),
        )

    for _ in range(50):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    warmup = recording("warmup.mp3")
    assert recording_download(recording_id=warmup.pk) == "stored"

    big = recording("big.mp3")
    idle = rss_bytes()
    sampler = Sampler()
    sampler.start()
    started = time.monotonic()
    status = recording_download(recording_id=big.pk)
    elapsed = time.monotonic() - started
    sampler.stop.set()
    sampler.join()

    big.refresh_from_db()
    expected = hashlib.sha256()
    for piece in body_bytes(size):
        expected.update(piece)
    ok = status == "stored" and big.size == size and big.sha256 == expected.hexdigest()
    mb = 1024 * 1024
    print(f"download of {size / mb:.0f} MB: {status}, {elapsed:.1f} s ({size / mb / elapsed:.0f} MB/s)")
    growth = (sampler.peak - idle) / mb
    print(f"RSS idle {idle / mb:.1f} MB, peak {sampler.peak / mb:.1f} MB, growth {growth:.1f} MB")
    print(
        f"stored file checked (size, sha256): {'ok' if ok else 'MISMATCH'}; duration {big.duration_seconds} s"
    )
    server.terminate()
    import shutil

    shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok and sampler.peak - idle < 50 * mb else 1


if __name__ == "__main__":
    sys.exit(main())
