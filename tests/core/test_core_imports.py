"""The core never imports the UI stack or litellm; neither does the CLI until it opens the UI."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from functools import cache

import pytest

import orchestra.core

FORBIDDEN = ("textual", "rich", "litellm")
CORE_MODULES = sorted(info.name for info in pkgutil.walk_packages(orchestra.core.__path__, "orchestra.core."))
PROBE = (
    "import importlib, json, sys\n"
    "importlib.import_module(sys.argv[1])\n"
    "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {forbidden!r})))\n"
).format(forbidden=set(FORBIDDEN))


@cache
def imported_by_all() -> dict[str, list[str] | str]:
    """Import every module in its own fresh interpreter, all at once; the forbidden modules each pulled in."""
    procs = {name: subprocess.Popen([sys.executable, "-c", PROBE, name], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
             for name in [*CORE_MODULES, "orchestra.cli"]}
    results: dict[str, list[str] | str] = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=60)
        results[name] = json.loads(out) if proc.returncode == 0 else f"import failed: {err}"
    return results


def test_the_core_modules_are_discovered() -> None:
    assert {"orchestra.core.fleet.fleet", "orchestra.core.supervise.supervisor", "orchestra.core.git.worktrees",
            "orchestra.core.ledger.chain"} <= set(CORE_MODULES)


@pytest.mark.parametrize("module", [*CORE_MODULES, "orchestra.cli"])
def test_importing_does_not_pull_in_the_ui_stack_or_litellm(module: str) -> None:
    assert imported_by_all()[module] == []
