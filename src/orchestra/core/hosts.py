"""The machines runs may go to: `[[hosts]]` in the user's settings file, and what each has of what a run needs.

Which machines you own is yours, not the repository's: hosts live in `$XDG_CONFIG_HOME/orchestra/settings.toml`,
never in the committed score. Each is `name`, `ssh` (a destination as ssh understands it, so ~/.ssh/config
aliases, ports and jump hosts work), `slots` (runs at once), and optionally `path` (where orchestra keeps its
repositories and worktrees there) and `orchestra` (the command that runs orchestra there). The local machine
is a host too, `local`: with no other host it has no limit (every run starts at once, as it always did); once
there are others it takes one run per core, unless a `[[hosts]]` entry named local without `ssh` says otherwise.

`check` asks each host, over one non-interactive ssh connection (no agent forwarding, no X11, no password
prompt), for git, a Python of 3.11 or later and orchestra, and says what is missing and how to fix it.
Placing runs on hosts is fleet.placement's; how a run works on one, supervise.relay's and fleet.hosted's.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestra.core.score.model import HOST_NAME as NAME
from orchestra.core.supervise.ssh import DEFAULT_PATH, Place
from orchestra.core.settings import SettingsError, load_settings, refuse_unknown, settings_path, update_settings

LOCAL = "local"
FIELDS = ("name", "ssh", "slots", "path", "orchestra")
MAX_SLOTS = 256
MIN_PYTHON = (3, 11)
CHECK_TIMEOUT = 20.0  # seconds for one host's answer, the connection included
# What a host is asked (POSIX sh on stdin): one "key=value" line each. ORCHESTRA is the host's orchestra command.
PROBE = """\
echo "git=$(git --version 2>/dev/null | head -n 1)"
echo "python=$(python3 -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null)"
if command -v "$ORCHESTRA" >/dev/null 2>&1; then echo "orchestra=$(command -v "$ORCHESTRA")"; else echo "orchestra="; fi
"""


@dataclass(frozen=True)
class Host:
    """One machine runs may go to; ssh None is the local machine."""

    name: str
    ssh: str | None = None
    slots: int | None = 1  # None: no limit (the local machine when it is the only host)
    path: str | None = None
    orchestra: str = "orchestra"

    @property
    def local(self) -> bool:
        return self.ssh is None

    def place(self) -> Place:
        """How a remote run's relay reaches it (supervise.ssh)."""
        assert self.ssh is not None, "the local host is not reached over ssh"
        return Place(self.name, self.ssh, self.orchestra, self.path or DEFAULT_PATH)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ssh": self.ssh, "slots": self.slots, "path": self.path,
                "orchestra": self.orchestra, "local": self.local}


def load_hosts(path: Path | None = None) -> list[Host]:
    """The local host, then each [[hosts]] entry of the settings file; SettingsError names the file, the entry
    and the key at fault (nothing is guessed: a host that is wrong is not half used)."""
    path = path or settings_path()
    raw = (load_settings(path).raw or {}).get("hosts", [])
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise SettingsError(f"{path}: hosts must be an array of tables ([[hosts]])")
    local = Host(LOCAL, slots=None)
    found: dict[str, Host] = {}
    for i, table in enumerate(raw):
        host = _host(path, i, table)
        if host.name in found:
            raise SettingsError(f"{path}: hosts[{i}] name {host.name!r} is used twice")
        found[host.name] = host
    if LOCAL in found:
        local = found.pop(LOCAL)
    elif found:
        local = Host(LOCAL, slots=os.cpu_count() or 1)
    return [local, *found.values()]


def _host(path: Path, i: int, table: dict[str, Any]) -> Host:
    at = f"{path}: hosts[{i}]"
    refuse_unknown(table, FIELDS, f"{at}: {{key!r}} is not a host setting")
    name = table.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise SettingsError(f"{at}: name must be a short name of lower-case letters, digits, '-' and '_' "
                            f"(got {name!r})")
    ssh = table.get("ssh")
    if name == LOCAL and ssh is None:
        return Host(LOCAL, None, _slots(at, table.get("slots", os.cpu_count() or 1)))
    if not isinstance(ssh, str) or not ssh.strip():
        raise SettingsError(f"{at} ({name}): ssh must name the machine as ssh does (user@host, an alias of "
                            "~/.ssh/config, ssh://user@host:port)")
    if ssh.startswith("-") or any(ch.isspace() or ord(ch) < 32 for ch in ssh):
        raise SettingsError(f"{at} ({name}): ssh {ssh!r} is not a destination: no spaces, control characters "
                            "or leading '-' (put options in ~/.ssh/config)")
    if name == LOCAL:
        raise SettingsError(f"{at}: the name local is the machine orchestra runs on; give this ssh host another")
    where = table.get("path")
    if where is not None and (not isinstance(where, str) or not where.startswith(("/", "~"))):
        raise SettingsError(f"{at} ({name}): path must be absolute or start with ~ (got {where!r})")
    command = table.get("orchestra", "orchestra")
    if not isinstance(command, str) or not command.strip() or "\n" in command:
        raise SettingsError(f"{at} ({name}): orchestra must be the command that runs orchestra there")
    return Host(name, ssh, _slots(at, table.get("slots", 1)), where, command)


def _slots(at: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SLOTS:
        raise SettingsError(f"{at}: slots must be a whole number from 1 to {MAX_SLOTS} (got {value!r})")
    return value


@dataclass
class HostCheck:
    """What one host has of what a run needs, and what to do about the rest."""

    host: Host
    reached: bool = False
    git: str | None = None
    python: str | None = None
    orchestra: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.reached and not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"host": self.host.to_json(), "ok": self.ok, "reached": self.reached, "git": self.git,
                "python": self.python, "orchestra": self.orchestra, "problems": self.problems}


def probe_argv(host: Host) -> list[str]:
    """How a host is asked: sh reading the probe on stdin, locally or over a non-interactive ssh connection
    that forwards nothing (no agent, no X11) and never asks for a password."""
    if host.local:
        return ["/bin/sh", "-s"]
    from orchestra.core.supervise.ssh import base_options
    return ["ssh", *base_options(), "-T", "--", host.ssh, "sh", "-s"]


def check_host(host: Host, timeout: float = CHECK_TIMEOUT) -> HostCheck:
    """Ask host for git, Python and orchestra; never raises for what the host lacks or a connection failing."""
    found = HostCheck(host)
    script = f"ORCHESTRA={shlex.quote(host.orchestra)}\n{PROBE}"
    try:
        done = subprocess.run(probe_argv(host), input=script, capture_output=True, text=True, timeout=timeout,
                              start_new_session=True)
    except FileNotFoundError:
        found.problems.append("ssh is not installed here (apt-get install openssh-client)")
        return found
    except subprocess.TimeoutExpired:
        found.problems.append(f"no answer within {timeout:g} s: is {host.ssh} reachable (`ssh {host.ssh} true`)?"
                              if not host.local else f"the check gave no answer within {timeout:g} s")
        return found
    answers = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    if done.returncode != 0 or "git" not in answers:
        said = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        found.problems.append(f"cannot reach it: {said} (check `ssh {host.ssh} true` works without a prompt: a key "
                              "in your agent or ~/.ssh/config)" if not host.local else f"the check failed: {said}")
        return found
    found.reached = True
    found.git, found.python, found.orchestra = (answers.get(k) or None for k in ("git", "python", "orchestra"))
    if host.local:  # local runs use this orchestra and its Python, whatever PATH holds
        found.python = "%d.%d.%d" % sys.version_info[:3]
        found.orchestra = f"{sys.executable} (this one)"
    found.problems += _missing(found)
    return found


def _missing(found: HostCheck) -> list[str]:
    problems = []
    if not found.git:
        problems.append("git is missing (apt-get install git)")
    version = tuple(int(part) for part in (found.python or "0.0").split(".")[:2])
    if not found.python:
        problems.append("python3 is missing: orchestra needs Python 3.11 or later (apt-get install python3)")
    elif version < MIN_PYTHON:
        problems.append(f"python3 is {found.python}: orchestra needs 3.11 or later")
    if not found.orchestra:
        problems.append(f"{found.host.orchestra!r} is not on its PATH: `orchestra hosts check {found.host.name} "
                        "--install` installs it there from this checkout and its hashed lock (or set `orchestra` to "
                        "its path there)")
    return problems
def set_host_command(name: str, command: str, path: Path | None = None) -> Path:
    """Set the orchestra command of host name in the settings file (after `hosts check --install`); the rest of the
    file is kept. SettingsError when it cannot be read (it is not overwritten) or written."""
    def point(raw: dict[str, Any]) -> None:
        hosts = [dict(table) for table in raw.get("hosts", []) if isinstance(table, dict)]
        for table in hosts:
            if table.get("name") == name:
                table["orchestra"] = command
        raw["hosts"] = hosts
    return update_settings(point, path)
