"""Fixtures the UI tests share with the core tests: make_fleet, for real runs (spawned, gated, accepted)."""

from tests.core.conftest import make_fleet  # noqa: F401  (a fixture: pytest finds it here)
