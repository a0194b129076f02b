"""The calls tests' fixtures, for the webhooks' end-to-end tests: the PBX directory, the production path of a
notification (notify URL → applier → after commit), and the sandbox serving records."""

from __future__ import annotations

from tests.calls.conftest import directory, notify  # noqa: F401
from tests.calls.test_recordings import record_host, recordings_settings  # noqa: F401
