"""The broker of a machine without Redis (`make run`): kombu's filesystem transport, messages written whole.

kombu's filesystem transport keeps every queue as files in one folder shared by the web processes, the
applier, the worker and beat. It creates a message's file and then writes into it, so a worker that looks
at the folder in between takes an empty file, cannot decode it and stops ("Unrecoverable error:
JSONDecodeError", celery/kombu#1551, open), and the message is lost with it. This channel writes a message
under a name the consumer never takes (a dot file) and renames it into the queue once it is whole: a rename
within one folder is atomic, so a consumer sees a message completely or not at all. Everything else is
kombu's; ``_put`` is the method every virtual transport's channel implements
(``kombu.transport.virtual.Channel``), and ``CELERY_BROKER_TRANSPORT`` names this transport (a class path
is what kombu's ``transport`` argument takes).
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    # kombu's filesystem channel's own signature (its stubs' AbstractChannel names the message differently).
    def _put(self, queue: str, payload: dict[str, Any], **kwargs: Any) -> None:  # type: ignore[override]
        # The same name as kombu's (the consumer takes files in name order: oldest first).
        name = f"{round(time.monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        folder = self.data_folder_out
        final = os.path.join(folder, name)
        partial = os.path.join(folder, f".{name}.part")
        try:
            with open(partial, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.remove(partial)
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
