"""Fleet work yields the CPU to the conductor's UI for real: under autogroup scheduling a process's own
niceness counts only within its session, so a detached supervisor's session is niced as a whole."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
