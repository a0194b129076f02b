from __future__ import annotations

from collections.abc import Iterator

import pytest

from contacts import services


@pytest.fixture(autouse=True)
def _no_foreign_merge_hooks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[services.MergeHook]]:
    """Each test starts with an empty hook registry (other apps may have registered theirs)."""
    hooks: list[services.MergeHook] = []
    monkeypatch.setattr(services, "MERGE_HOOKS", hooks)
    yield hooks
