"""The sign-off ledger: a hash-chained, optionally signed record of decisions, anchored in git.

The names below are imported on first use, so the scan helper process (`python -m
orchestra.core.ledger.scan`) starts without loading the git layer.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestra.core.ledger.chain import GENESIS, Ledger, LedgerError
    from orchestra.core.ledger.verify import Verification
    from orchestra.core.ledger.factory import open_ledger

_HOMES = {"GENESIS": "chain", "Ledger": "chain", "LedgerError": "lines", "Verification": "verify",
          "open_ledger": "factory"}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
