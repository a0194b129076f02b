"""The Redis channel layer's connections outlast its blocking receive (redis-py 8's 5 s default did not)."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers
from channels_redis.core import RedisChannelLayer

from tests.mttcrm.settings_probe import fresh_env, run_python

PROBE = """
import json, django
django.setup()
from channels.layers import get_channel_layer
from channels_redis.utils import create_pool
layer = get_channel_layer()
pool = create_pool(layer.hosts[0])
print(json.dumps({"socket_timeout": pool.connection_kwargs.get("socket_timeout"),
                  "brpop_timeout": layer.brpop_timeout, "db": pool.connection_kwargs.get("db")}))
"""


def test_socket_timeout_is_longer_than_the_blocking_receive() -> None:
    # Settings are read at start-up: a fresh process with REDIS_URL set (nothing connects to it).
    settings = {
        "REDIS_URL": "redis://127.0.0.1:1/7",
        "DATABASE_URL": "sqlite:///:memory:",
        "CELERY_BROKER_URL": "filesystem://",
    }
    env = fresh_env(settings, without=("DJANGO_", "REDIS_", "DATABASE_"))
    result = run_python(PROBE, env)
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["db"] == 7  # the URL's database is still honoured
    assert probe["socket_timeout"] is not None  # a dead Redis is still noticed
    assert probe["socket_timeout"] > probe["brpop_timeout"] + 5


@pytest.mark.asyncio
async def test_receive_on_a_quiet_channel_keeps_waiting_past_the_blocking_timeout() -> None:
    # A layer of its own, from the settings: the process-wide one may hold another test's event loop.
    layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
    if not isinstance(layer, RedisChannelLayer):
        pytest.skip("needs channels-redis: set REDIS_URL")
    channel = await layer.new_channel("quiet.")
    # Longer than one BZPOPMIN (5 s): the receive must still be waiting, not fail with a socket timeout.
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(layer.receive(channel), timeout=layer.brpop_timeout + 2)
    await layer.send(channel, {"type": "after.the.wait"})
    assert (await layer.receive(channel))["type"] == "after.the.wait"
    await layer.flush()
