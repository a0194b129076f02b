"""Database routing for the embedded defaults: channels-lite's channel layer keeps its messages in a SQLite
database of its own ("channels", mttcrm/settings/services.py); nothing else goes there."""

from __future__ import annotations

from typing import Any

CHANNELS_DATABASE = "channels"


class ChannelsDatabaseOnlyForChannels:
    """channels-lite's own router sends its models to the "channels" database; this one keeps every other
    app's tables out of it."""

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool | None:
        if db == CHANNELS_DATABASE:
            return app_label == "channels_lite"
        return None
