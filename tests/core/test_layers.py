"""The core's architecture as contracts: its layers, the UI/litellm split, and one home for GitPython.

The contracts live in pyproject.toml ([tool.importlinter]); import-linter checks them statically,
next to the fresh-interpreter import test in test_core_imports.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT = ("import sys; from importlinter.cli import lint_imports; "
        "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True))")


def lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", LINT], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_import_contracts_are_kept() -> None:
    done = lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "BROKEN" not in done.stdout and "KEPT" in done.stdout


def test_a_core_module_that_reaches_upwards_breaks_the_contract(tmp_path: Path) -> None:
    """The check can fail: a copy of the tree where the git layer imports the fleet is refused."""
    copy = tmp_path / "tree"
    copy.mkdir()
    subprocess.run(["cp", "-r", str(ROOT / "src"), str(ROOT / "pyproject.toml"), str(copy)], check=True)
    runner = copy / "src" / "orchestra" / "core" / "git" / "runner.py"
    runner.write_text(runner.read_text() + "\nfrom orchestra.core.fleet import Fleet  # noqa\n")
    done = subprocess.run([sys.executable, "-c", LINT], cwd=copy, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(copy / "src"), "PATH": "/usr/bin:/bin"})
    assert done.returncode != 0
    assert "orchestra.core.git is not allowed to import orchestra.core.fleet" in done.stdout, done.stdout
