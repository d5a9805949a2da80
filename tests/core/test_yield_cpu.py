"""Fleet work yields the CPU to the conductor's UI for real: under autogroup scheduling a process's own
niceness counts only within its session, so a detached supervisor's session is niced as a whole."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orchestra.core.base.procs import FLEET_NICENESS
from orchestra.core.jail import probe
from tests.core.conftest import MakeFleet
from tests.core.helpers import output_lines, score_text, wait_settled

AUTOGROUP = Path("/proc/self/autogroup")


def test_yield_cpu_nices_the_process_and_writes_the_sessions_autogroup(tmp_path: Path) -> None:
    fake = tmp_path / "autogroup"
    fake.write_text("/autogroup-1 nice 0\n")
    code = ("import os, sys; from pathlib import Path; from orchestra.core.base.procs import yield_cpu; "
            "yield_cpu(5, Path(sys.argv[1])); yield_cpu(3, Path(sys.argv[1])); print(os.nice(0))")
    done = subprocess.run([sys.executable, "-c", code, str(fake)], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "5"  # at least 5: a lower niceness asked later never raises its priority
    assert fake.read_text() == "3"  # what the last call asked of the session


def test_a_process_in_its_own_session_nices_its_autogroup() -> None:
    """On this kernel (autogroup on, as on the machines orchestra runs on); without one, the call still works."""
    code = ("import os; from orchestra.core.base.procs import yield_cpu; yield_cpu(7); "
            "print(open('/proc/self/autogroup').read() if os.path.exists('/proc/self/autogroup') else 'none')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          start_new_session=True)
    assert done.stdout.strip().endswith("nice 7") or (done.stdout.strip() == "none" and not AUTOGROUP.exists())


AGENT_SAYS = "cat /proc/self/autogroup; echo work > work.txt"
GATE_SAYS = "cat /proc/self/autogroup > autogroup-seen-by-gate"


@pytest.mark.skipif(not AUTOGROUP.exists(), reason="the kernel has no autogroup scheduling")
@pytest.mark.parametrize("sandbox", ["auto", "off"])
def test_agents_and_gates_run_in_niced_autogroups(repo: Path, make_fleet: MakeFleet, sandbox: str) -> None:
    """An agent and a gate each lead a session of their own (bubblewrap's --new-session, or the process's
    own): their session's autogroup is niced like the supervisor's, or they compete with the UI as equals."""
    if sandbox == "auto" and not probe().works:
        pytest.skip("needs bubblewrap: ./dev test installs it")
    fleet = make_fleet(repo, score_text({"worker": AGENT_SAYS},
                                        [{"id": "work", "intent": "work", "verify": [{"name": "look", "command": GATE_SAYS}]}],
                                        sandbox=sandbox))
    run = wait_settled(fleet, fleet.spawn("work")[0].id)
    assert run.state == "review", run.message
    agent_line = next(line for line in output_lines(fleet, run.id) if "autogroup" in line)
    assert agent_line.endswith(f"nice {FLEET_NICENESS}"), agent_line
    gate_line = (Path(run.worktree) / "autogroup-seen-by-gate").read_text().strip()
    assert gate_line.endswith(f"nice {FLEET_NICENESS}"), gate_line
