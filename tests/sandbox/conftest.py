"""Fixtures for sandbox tests; ``sandbox`` is a thin wrapper so tests/conftest.py can reuse it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.testing import Receiver, RunningSandbox, running_receiver, running_sandbox


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox(step_delay=0.01) as running:
        yield running


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running
