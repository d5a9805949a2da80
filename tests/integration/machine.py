"""What every real coding-agent CLI finds around it in the integration tests: itself on PATH under its own
name (the pinned executable ./dev installed and named in ORCHESTRA_<CLI>_BIN), the key, and a proxy that
records and refuses every request not to 127.0.0.1 (tests/integration/test_aider.py's RefusingProxy)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


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
