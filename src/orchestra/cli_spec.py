"""`orchestra spec`: specs in files of their own (`spec new ID --template KIND` writes specs/ID.toml)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

    from orchestra.core.git.repo import Repository


def cmd_spec(repo: Repository, args: argparse.Namespace) -> int:
    """Write a new spec file from a template (the only action so far) and say where."""
    from orchestra.core.score.templates import write_spec
    path = write_spec(repo.score_path, args.spec_id, args.template)
    print(f"Wrote {path}: fill in its intent, boundaries and verify commands, then `orchestra spawn "
          f"{args.spec_id}`.")
    return 0
