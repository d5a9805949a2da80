"""`orchestra init` writes a starter score, even in a repository with no commits yet."""

from __future__ import annotations

import subprocess
from pathlib import Path

from orchestra.cli import main
from orchestra.core.score import load_score


def test_init_works_before_the_first_commit(tmp_path: Path, capsys) -> None:
    subprocess.run(["git", "init", "-q", "-b", "main", str(tmp_path)], check=True)
    assert main(["-C", str(tmp_path), "init"]) == 0
    assert load_score(tmp_path / "orchestra.toml").agents
    assert "Wrote" in capsys.readouterr().out
    assert main(["-C", str(tmp_path), "init"]) == 1  # never overwrites
