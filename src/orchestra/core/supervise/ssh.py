"""How orchestra talks to a host over ssh: one place builds every ssh command line.

Every connection to a host shares one multiplexed ssh connection (OpenSSH's ControlMaster), started on first
use and ended ten minutes after its last: a run's start, its event stream, git's pushes and fetches, a stop
and an attach are channels of it. Nothing is forwarded (no agent, no X11, no ports), no password is ever
asked for (BatchMode), and `ORCHESTRA_SSH_CONFIG` names a config file to use instead of ~/.ssh/config.

The host is untrusted: what it answers is data, parsed and checked by whoever asked.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestra.core.base.errors import OrchestraError
from orchestra.core.base.files import file_lock

DEFAULT_PATH = "~/.orchestra"  # where orchestra keeps its mirrors, worktrees and run state on a host
CONTROL_PERSIST = "600"  # seconds the shared connection stays after its last use
CONNECT_TIMEOUT = 8
MASTER_TIMEOUT = 30.0
COMMAND_TIMEOUT = 120.0
SOCKET_DIR_MAX = 40  # a socket's path holds at most 107 bytes
NO_FORWARDING = ("-a", "-x", "-o", "ForwardAgent=no", "-o", "ForwardX11=no", "-o", "ClearAllForwardings=yes",
                 "-o", "PermitLocalCommand=no")


@dataclass(frozen=True)
class Place:
    """A host as a run's relay reaches it: its ssh destination, orchestra's command and directory there."""

    name: str
    ssh: str
    orchestra: str = "orchestra"
    path: str = DEFAULT_PATH
    repo: str | None = None  # the key of the repository's mirror there, for a run's commands

    def remote(self, verb: str, *args: str) -> str:
        """The command line (for the host's shell) of `orchestra remote VERB`; the host's orchestra command is
        the user's own setting and kept as written, every argument is quoted."""
        words = ["remote", verb, *args, "--path", self.path, *(["--repo", self.repo] if self.repo else [])]
        return f"{self.orchestra} {shlex.join(words)}"


def control_dir() -> Path:
    """Where the shared connections' sockets live: short (a socket path has ~100 bytes), private to the user."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    if len(base) > SOCKET_DIR_MAX:  # cm-%C is 43 bytes, and ssh adds 17 while it binds: a long base cannot hold it
        base = tempfile.gettempdir()
    path = Path(base) / f"orchestra-ssh-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def base_options() -> list[str]:
    """Options of every ssh orchestra runs: the user's config file if named, nothing forwarded, no prompts."""
    config = os.environ.get("ORCHESTRA_SSH_CONFIG")
    return [*(["-F", config] if config else []), *NO_FORWARDING, "-o", "BatchMode=yes",
            "-o", f"ConnectTimeout={CONNECT_TIMEOUT}", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"]


def shared_options() -> list[str]:
    """Options that make a command a channel of the shared connection (or a connection of its own when there is
    none: a dropped connection never stops a command from trying)."""
    return ["-o", f"ControlPath={control_dir()}/cm-%C", "-o", "ControlMaster=no"]


def ssh_argv(place: Place, command: str, tty: bool = False) -> list[str]:
    """The argv that runs command (a shell command line) on the host, over the shared connection."""
    return ["ssh", *base_options(), *shared_options(), "-tt" if tty else "-T", "--", place.ssh, command]


def git_ssh_command() -> str:
    """GIT_SSH_COMMAND for git's pushes and fetches to a host: the same options, the same shared connection."""
    return shlex.join(["ssh", *base_options(), *shared_options()])


def git_url(place: Place, path: str) -> str:
    """A git URL of an absolute path on the host."""
    if place.ssh.startswith("ssh://"):
        return place.ssh.rstrip("/") + path
    return f"{place.ssh}:{path}"


def ensure_connection(place: Place, timeout: float = MASTER_TIMEOUT) -> str | None:
    """Start the host's shared connection unless it is up; None when it is, else why it could not be started
    (the commands then connect on their own, and say why they cannot)."""
    common = ["ssh", *base_options(), "-o", f"ControlPath={control_dir()}/cm-%C"]
    with file_lock(control_dir() / f"{_key(place.ssh)}.lock"):
        check = subprocess.run([*common, "-O", "check", "--", place.ssh], stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=timeout)
        if check.returncode == 0:
            return None
        try:  # -f: it goes to the background once connected; its output must not hold anyone's pipes open
            # ControlMaster=yes alone: with -M as well, OpenSSH asks before each session (and, without a terminal,
            # refuses it: every command would then connect on its own).
            done = subprocess.run([*common, "-o", "ControlMaster=yes", "-o", f"ControlPersist={CONTROL_PERSIST}",
                                   "-N", "-f", "--", place.ssh], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout,
                                  start_new_session=True)
        except subprocess.TimeoutExpired:
            return f"no answer from {place.ssh} within {timeout:g} s"
        if done.returncode != 0:
            said = done.stderr.decode("utf-8", "replace").strip().splitlines()
            return said[-1] if said else f"ssh exited with status {done.returncode}"
        return None


def end_connection(place: Place) -> None:
    """End the host's shared connection (its channels end with it); tests use it to drop one."""
    subprocess.run(["ssh", *base_options(), "-o", f"ControlPath={control_dir()}/cm-%C", "-O", "exit", "--",
                    place.ssh], stdin=subprocess.DEVNULL, capture_output=True, timeout=MASTER_TIMEOUT)


class HostFailed(OrchestraError):
    """A host could not do what it was asked (or could not be reached); the message says what it said."""


def call(place: Place, verb: str, *args: str, stdin: bytes | None = None,
         timeout: float = COMMAND_TIMEOUT) -> dict[str, Any]:
    """Run `orchestra remote VERB` on the host; its one JSON answer, or HostFailed with what went wrong."""
    try:
        done = subprocess.run(ssh_argv(place, place.remote(verb, *args)), input=stdin,
                              stdin=None if stdin is not None else subprocess.DEVNULL, capture_output=True,
                              timeout=timeout, start_new_session=True)
    except subprocess.TimeoutExpired:
        raise HostFailed(f"{place.name} gave no answer within {timeout:g} s") from None
    except OSError as error:
        raise HostFailed(f"ssh could not be run: {error}") from None
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise HostFailed(f"{place.name}: " + (said[-1][:300] if said else f"ssh exited with status {done.returncode}"))
    try:
        answer = json.loads(done.stdout.decode("utf-8").strip().splitlines()[-1])
    except (ValueError, IndexError):
        answer = None
    if not isinstance(answer, dict):
        raise HostFailed(f"{place.name} answered something orchestra cannot read")
    return answer


def repo_key(root: Path, common_dir: Path) -> str:
    """The name of a repository's mirror on hosts: its directory's name and a hash of where it is, on which
    machine (two clones of one project have mirrors of their own, and so runs of their own)."""
    name = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in root.name)[:40].strip("-") or "repo"
    where = f"{socket.gethostname()}\0{os.path.realpath(common_dir)}"
    return f"{name}-{hashlib.sha256(where.encode()).hexdigest()[:12]}"


def _key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
