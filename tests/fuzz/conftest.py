"""Hypothesis profiles for the property-based fuzz tests (tests/fuzz/).

``HYPOTHESIS_PROFILE`` chooses one:

- ``dev`` (the default, ``make test``): 100 examples per property, derandomized like ``ci``: ``make test``
  must pass on every run, so it never depends on a random example (a new random failure is ``deep``'s
  to find, then pinned with ``@example``).
- ``ci`` (``.ci/run`` sets it): 500 examples per property — several thousand cases over the fuzz tests —
  with ``derandomize=True``: the examples follow from each test's source, so a CI run is reproducible
  and a failure in CI fails the same way on any machine. No example database (nothing to carry over).
- ``deep``: 5000 random examples per property, for hunting by hand (minutes, not for CI).

``deadline=None`` everywhere: one example is a few requests through Django and a database, whose time
varies with the machine's load; performance is measured in bench/, never asserted here.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# The database-backed tests take Django's function-scoped fixtures (client, db, integration) once per
# test and undo each example's writes themselves (tests/personas.py: rolled_back).
_CHECKS = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]

settings.register_profile(
    "dev", max_examples=100, deadline=None, derandomize=True, database=None, suppress_health_check=_CHECKS
)
settings.register_profile(
    "ci",
    max_examples=500,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=_CHECKS,
)
settings.register_profile("deep", max_examples=5000, deadline=None, suppress_health_check=_CHECKS)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
