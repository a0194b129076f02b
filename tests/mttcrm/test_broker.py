"""The broker of a machine without Redis (`make run`): a worker never takes a message that is still being
written (kombu's filesystem transport did, and the worker stopped with "Unrecoverable error:
JSONDecodeError", taking `make run` down with it)."""

from __future__ import annotations

from pathlib import Path

from tests.mttcrm.settings_probe import fresh_env, run_python

# In a fresh process configured as `make run` is without Redis: a task message is published while, in the
# middle of writing it, the worker's side looks at the queue (a header whose JSON encoding does the look).
# Prints what the look found, then what the queue holds afterwards.
PROBE = """
import django
django.setup()
from kombu import Queue
from mttcrm.celery import app

looked = []
with app.connection_for_write() as producer, app.connection_for_read() as consumer:
    queue = consumer.SimpleQueue("probe")

    class LookWhileWritten:
        def __json__(self):
            try:
                message = queue.get(block=False)
                looked.append(f"took {message.payload!r}")
                message.ack()
            except queue.Empty:
                looked.append("nothing")
            except Exception as exc:
                looked.append(f"failed: {type(exc).__name__}")
            return "written"

    with producer.Producer() as publisher:
        publisher.publish(
            {"task": "probe"}, routing_key="probe", declare=[Queue("probe")],
            headers={"look": LookWhileWritten()},
        )
    print("while written:", *looked)
    message = queue.get(block=False)
    print("afterwards:", message.payload, message.headers["look"])
    message.ack()
"""


def test_a_message_being_written_is_not_taken_and_arrives_whole(tmp_path: Path) -> None:
    env = fresh_env({"VAR_DIR": str(tmp_path)}, without=("DJANGO_", "CELERY_", "REDIS_URL"))
    result = run_python(PROBE, env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-2:] == ["while written: nothing", "afterwards: {'task': 'probe'} written"], result.stdout
    # Nothing half-written is left behind in the queue's folder.
    assert [p.name for p in (tmp_path / "celery" / "queue").iterdir() if p.name.endswith(".part")] == []
