"""The ledger of a repository, wired with its anchor in git, its signer and git's merge commits."""

from __future__ import annotations

from orchestra.core.git.repo import Repository
from orchestra.core.ledger.anchor import GitAnchor
from orchestra.core.ledger.chain import Ledger
from orchestra.core.ledger.crosscheck import GitHistory
from orchestra.core.ledger.signing import read_signing_config


def open_ledger(repo: Repository) -> Ledger:
    """The repository's ledger: anchored at refs/orchestra/ledger, signed when git config says so
    (read at each append and verify), and cross-checked against the repository's merge commits."""
    root = repo.root
    return Ledger(repo.ledger_path, anchor=GitAnchor(root), signing=lambda: read_signing_config(root),
                  history=GitHistory(root, repo.common_dir))
