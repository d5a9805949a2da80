"""`orchestra doctor [--all]`: what the score's agents lack, then what orchestra's guarantees rest on here (the
repository's state, ledger signing, the sandbox, autonomy, the hosts runs may go to)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from orchestra.core.base.errors import OrchestraError

if TYPE_CHECKING:
    from orchestra.core.git.repo import Repository
    from orchestra.core.score import Score


def cmd_doctor(directory: Path, show_all: bool = False) -> int:
    """Print what stops the score's agents first, then what is there (doctor_report); 1 when something the
    score needs is missing."""
    from orchestra.core.onboarding.doctor import diagnose
    from orchestra.core.onboarding.doctor_report import doctor_report
    repo, score = doctor_repository(directory)
    findings = diagnose(score, os.environ, shutil.which)
    state = doctor_state(repo) if repo is not None else []
    report = doctor_report(findings, state, repo.root if repo else None, score.path if score else None, show_all)
    print("\n".join(report.lines))
    return 1 if report.gaps else 0


def doctor_repository(directory: Path) -> tuple[Repository | None, Score | None]:
    """The repository at directory and its score; (None, None) outside a repository."""
    from orchestra.core.git.repo import open_repository
    try:
        repo = open_repository(directory, require_commits=False)
    except (OrchestraError, OSError):
        return None, None
    from orchestra.core.score import load_score
    return repo, load_score(repo.score_path) if repo.score_path.exists() else None


def doctor_state(repo: Repository) -> list:
    """Findings about orchestra's own state in the repository (stray files, damaged or kept runs) and
    what its guarantees rest on there (ledger signing, the agents' reach)."""
    from orchestra.core.fleet.journal import Journal
    from orchestra.core.jail import probe
    from orchestra.core.ledger import LedgerError
    from orchestra.core.score import load_score
    from orchestra.core.ledger.signing import read_signing_config
    from orchestra.core.onboarding.doctor import repository_findings, trust_findings
    from orchestra.core.runs.store import RunStore
    store = RunStore(repo.state_dir)
    try:
        signing = read_signing_config(repo.root)
    except LedgerError:
        signing = None
    score_mode = load_score(repo.score_path).sandbox if repo.score_path.exists() else "auto"
    from orchestra.core.runs.hint import hinted_pairs
    from orchestra.core.hosts import load_hosts
    from orchestra.core.onboarding.doctor import host_findings
    from orchestra.core.settings import SettingsError
    try:
        hosts = host_findings(load_hosts())
    except SettingsError as error:
        from orchestra.core.onboarding.doctor import Finding
        hosts = [Finding("hosts", False, str(error), "fix the settings file")]
    return [*trust_findings(signing, probe(), score_mode, hinted_pairs(repo.state_dir)), *hosts,
            *repository_findings(repo.state_dir, store.list(), store.strays(), len(Journal(repo.state_dir).pending()))]
