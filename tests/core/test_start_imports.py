"""Opening the fleet for the UI's first frame loads only what that frame uses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.core.helpers import score_text, write_score

# What reading and showing the fleet does not use: deciding, the ledger and its signing, trust, cleanup,
# snapshots, the jail, processes (no run works here), and pathspec (the score has no globs).
NOT_AT_START = ("orchestra.core.fleet.decisions", "orchestra.core.fleet.trust", "orchestra.core.fleet.update",
                "orchestra.core.ledger", "orchestra.core.ledger.signing", "orchestra.core.git.cleanup",
                "orchestra.core.git.snapshot", "orchestra.core.git.worktrees", "orchestra.core.jail",
                "orchestra.core.supervise.processes", "orchestra.core.supervise.reaper", "pathspec", "ctypes")
PROBE = """\
import json, sys
from pathlib import Path
from orchestra.core.fleet import Fleet
from orchestra.core.git.repo import open_repository
from orchestra.core.runs.feed import FleetFeed
from orchestra.core.score import load_score
repo = open_repository(Path(sys.argv[1]))
fleet = Fleet(repo, load_score(repo.score_path))
FleetFeed(fleet.store).initial(fleet.runs())
print(json.dumps(sorted(sys.modules)))
"""


def test_reading_the_fleet_loads_no_decision_ledger_or_process_code(repo: Path) -> None:
    write_score(repo, score_text({"coder": "true"}, [{"id": "work", "intent": "Make it better"}]))
    # A journal left empty by finished decisions is nothing to converge: it loads no decision code either.
    (repo / ".git" / "orchestra" / "journal").mkdir(parents=True)
    done = subprocess.run([sys.executable, "-c", PROBE, str(repo)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    assert "orchestra.core.fleet.fleet" in loaded
    assert sorted(loaded & set(NOT_AT_START)) == []
