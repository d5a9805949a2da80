"""What every real coding-agent CLI finds around it in the integration tests: itself on PATH under its own
name (the pinned executable ./dev installed and named in ORCHESTRA_<CLI>_BIN), the key, and a proxy that
records and refuses every request not to 127.0.0.1."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypeVar

import pytest

from tests.conftest import git

M = TypeVar("M")


class RefusingProxy:
    """An HTTP(S) proxy that records every request sent through it and refuses it with 403."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def refuse(self) -> None:
                proxy.requests.append(f"{self.command} {self.path}")
                self.send_response(403)
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True

            do_CONNECT = do_GET = do_POST = do_HEAD = do_PUT = refuse

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def hosts(self) -> set[str]:
        """host:port of every request seen (CONNECT names it; a plain request has a full URL)."""
        found = set()
        for request in self.requests:
            target = request.split(" ", 1)[1]
            if "://" in target:
                netloc = target.split("://", 1)[1].split("/", 1)[0]
                target = netloc if ":" in netloc else netloc + (":443" if target.startswith("https") else ":80")
            found.add(target)
        return found

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def surroundings(machine: type[M], tmp_path: Path) -> Iterator[M]:
    """A module's `machine` fixture: its Machine around a refusing proxy, closed at the end."""
    proxy = RefusingProxy()
    try:
        yield machine(tmp_path, proxy)  # type: ignore[call-arg]
    finally:
        proxy.close()


def cli_executable(variable: str, title: str) -> Path:
    """The CLI ./dev installed, named in variable; a failure (not a skip) when it is missing, so a run of plain
    pytest cannot look green while testing nothing."""
    value = os.environ.get(variable)
    if not value:
        pytest.fail(f"{variable} is not set: run these tests with `./dev test` (it installs the pinned {title} "
                    "outside the checkout and sets the variable), not with plain pytest", pytrace=False)
    path = Path(value)
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"{variable}={value} is not an executable file: run `./dev test` again", pytrace=False)
    return path


class CliMachine:
    """A CLI's surroundings; subclasses name it (cli, variable, title) and may add to env()."""

    cli = ""
    variable = ""
    title = ""

    def __init__(self, tmp_path: Path, proxy: object, key_env: str, key: str) -> None:
        self.proxy = proxy
        self.bin = tmp_path / f"{self.cli}-bin"
        self.key_env, self.key = key_env, key

    def env(self) -> dict[str, str]:
        """Variables to add to the environment the CLI starts in (checked here: a missing CLI fails the test)."""
        if not self.bin.exists():
            self.bin.mkdir()
            (self.bin / self.cli).symlink_to(cli_executable(self.variable, self.title))
        env = {"PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}", self.key_env: self.key}
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            env[name] = env[name.lower()] = self.proxy.url  # type: ignore[attr-defined]
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"  # the fake model server
        return env

    def enter(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Make the supervisor, and so the CLI, inherit env()."""
        for name, value in self.env().items():
            monkeypatch.setenv(name, value)


BUGGY = "def mean(values):\n    return sum(values) / (len(values) - 1)\n"
FIXED = "def mean(values):\n    return sum(values) / len(values)\n"


def buggy_repo(root: Path) -> Path:
    """A git repository on main with calc/stats.py, whose mean() is off by one (BUGGY; FIXED is the fix)."""
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "calc").mkdir()
    (root / "calc" / "stats.py").write_text(BUGGY)
    (root / "README.md").write_text("# calc\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


def written_files(fleet) -> list[Path]:
    """Every file orchestra wrote for the repository's runs: state, logs, ledger, and the runs' private homes."""
    places = [fleet.repo.state_dir, fleet.repo.jails_dir]
    return [path for place in places if place.exists() for path in place.rglob("*") if path.is_file()]


def files_holding(files: list[Path], text: str) -> list[Path]:
    """The files that hold text. One gone since it was listed (an atomic write's temporary file, renamed
    meanwhile by a supervisor still running) is skipped: what it held is read under its final name."""
    holding = []
    for path in files:
        try:
            if text in path.read_text(errors="replace"):
                holding.append(path)
        except FileNotFoundError:
            continue
    return holding
