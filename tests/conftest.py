"""Shared fixtures: every test runs with a temporary HOME, XDG dirs and git identity."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.sshd import HarnessError, SshHost, start_ssh_host


@pytest.fixture(scope="session")
def llm_host_socket(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One llm host for the whole session (it loads litellm once), never the user's own."""
    return tmp_path_factory.mktemp("llm-host") / "host.sock"


@pytest.fixture(autouse=True)
def isolated_home(llm_host_socket: Path, tmp_path_factory: pytest.TempPathFactory,
                  monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point HOME, the XDG dirs and git's global config at a fresh temporary directory."""
    home = tmp_path_factory.mktemp("home")
    for name, sub in (
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_STATE_HOME", ".local/state"),
        ("XDG_CACHE_HOME", ".cache"),
    ):
        (home / sub).mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(name, str(home / sub))
    gitconfig = home / ".gitconfig"
    gitconfig.write_text(
        "[user]\n\tname = Test Conductor\n\temail = conductor@example.test\n"
        "[init]\n\tdefaultBranch = main\n"
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("ORCHESTRA_LLM_HOST_SOCKET", str(llm_host_socket))
    monkeypatch.setenv("ORCHESTRA_LLM_HOST_IDLE", "20")  # exits soon after the last llm test
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    path, bwrap = os.environ.get("PATH"), os.environ.get("ORCHESTRA_BWRAP")
    yield home
    if (os.environ.get("PATH"), os.environ.get("ORCHESTRA_BWRAP")) != (path, bwrap):
        # The sandbox probe is answered once per process: one taken under this test's PATH (no bubblewrap on
        # it, say) must not answer for the tests after it.
        from orchestra.core.jail import probe
        probe.cache_clear()


@pytest.fixture(scope="session")
def ssh_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshHost]:
    """A local sshd standing in for a remote host (tests/harness/sshd.py); needs root, fails clearly without."""
    try:
        host = start_ssh_host(tmp_path_factory.mktemp("sshd"))
    except HarnessError as error:
        pytest.fail(str(error), pytrace=False)
    yield host
    host.stop()


def git(cwd: Path, *args: str) -> str:
    """Run git in cwd and return its stdout; fail the test on a non-zero exit."""
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, f"git {' '.join(args)} failed: {done.stderr}"
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository on branch main with one commit holding README.md and src/app.py."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "README.md").write_text("# demo\n")
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text("def answer():\n    return 41\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root
