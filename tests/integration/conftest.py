"""Integration fixtures: the core tests' fleet fixture (every run decided, every supervisor gone at teardown)."""

from tests.core.conftest import make_fleet  # noqa: F401 - re-exported as a fixture
