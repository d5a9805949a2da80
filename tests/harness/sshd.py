"""A local OpenSSH server standing in for a remote host: one dedicated account, one key, nothing else reachable.

`start_ssh_host(workdir)` needs root (this machine and CI run as root): it adds the account `orchestra-remote`
(home /var/lib/orchestra-remote/home, shell /bin/sh), writes the session's keys, configs and logs in workdir,
installs this checkout's orchestra where the account can run it, and starts `sshd -D` on 127.0.0.1 at a free
port. The clients' config (`ssh -F`) is in workdir too: OpenSSH reads ~/.ssh from the passwd entry, not $HOME,
so nothing here relies on ~/.ssh.

Layout under /var/lib/orchestra-remote (root's, 0755, except the home):
  home/                      the account's (0700); emptied when no other test session is using it
  sessions/<id>.lock         held by a live session, so that a concurrent one leaves its files alone
  sessions/<id>/             authorized_keys (sshd reads it as the account, so 0644, not 0600), a copy of
                             the venv (hard links when it can) and of src/, and the `orchestra` wrapper

The venv's own Python may live where the account cannot go (pyenv under /root): then the copy is pointed
at a system Python of the same version, as a real remote host would have.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

ACCOUNT = "orchestra-remote"
ALIAS = "orchestra-test"
BASE = Path("/var/lib/orchestra-remote")
HOME = BASE / "home"
SESSIONS = BASE / "sessions"
REPO = Path(__file__).resolve().parents[2]
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ACCOUNT_PATH = "/usr/local/bin:/usr/bin:/bin"
PRIVATE_KEY = re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")
READY_TIMEOUT = 10.0


class HarnessError(RuntimeError):
    """The ssh host cannot be set up; the message says why and what to do."""


@dataclass
class SshHost:
    """A running sshd for the account, and what tests need to reach it and look at it."""

    alias: str
    config: Path  # the client config to pass as `ssh -F`
    port: int
    user: str
    home: Path
    orchestra: Path  # the wrapper that runs this checkout's orchestra, as the account sees it
    key: Path  # the client's private key
    setup_seconds: float = 0.0
    _server: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _session: Path | None = field(default=None, repr=False)
    _lock: IO[str] | None = field(default=None, repr=False)

    def use(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Make orchestra reach the host through this config for one test."""
        monkeypatch.setenv("ORCHESTRA_SSH_CONFIG", str(self.config))

    def ssh(self, *command: str, options: tuple[str, ...] = ()) -> list[str]:
        """The argv of `ssh -F config [options] alias command...`."""
        return ["ssh", "-F", str(self.config), *options, self.alias, *command]

    def run(self, command: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run a shell command as the account, in its home, with its own environment (not over ssh)."""
        return subprocess.run([_tool("runuser"), "-u", self.user, "--", "/bin/sh", "-c", command], cwd=self.home,
                              env=_account_env(), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def drop_connections(self, timeout: float = 10.0) -> list[int]:
        """End every live connection to this server (its per-connection sshd processes) and return their pids.

        The listening daemon stays, and so does whatever the account runs that is not sshd (a detached
        supervisor must survive a dropped connection)."""
        if self._server is None:
            return []
        table = _processes()
        monitors = [pid for pid, (ppid, _, _) in table.items() if ppid == self._server.pid]
        children = [pid for pid, (ppid, uid, comm) in table.items()
                    if ppid in monitors and uid == self.uid and comm.startswith("sshd")]
        ended = children + monitors
        _kill(ended, signal.SIGTERM, timeout)
        return ended

    def find_private_keys(self) -> list[Path]:
        """Every file under the account's home that holds a private key (an OpenSSH or PEM header)."""
        found = []
        for folder, _, names in os.walk(self.home):
            for name in names:
                path = Path(folder, name)
                if path.is_file() and not path.is_symlink() and PRIVATE_KEY.search(path.read_bytes()):
                    found.append(path)
        return sorted(found)

    @property
    def uid(self) -> int:
        return pwd.getpwnam(self.user).pw_uid

    def stop(self) -> None:
        """Drop the connections, stop sshd and remove this session's files; when no other session is using
        the account, also end what it still runs (detached processes the tests left)."""
        self.drop_connections()
        if self._server is not None:
            _kill([self._server.pid], signal.SIGTERM, 5.0)
            self._server.wait(timeout=5)
            self._server = None
        if self._session is not None and self._lock is not None:
            if _clear_stale_sessions(keep=self._session) == 0:
                _kill(_account_pids(self.uid), signal.SIGKILL, 5.0)
            shutil.rmtree(self._session, ignore_errors=True)
            self._session.with_suffix(".lock").unlink(missing_ok=True)
            self._lock.close()
            self._session = self._lock = None


def start_ssh_host(workdir: Path) -> SshHost:
    """Set up the account and a session's keys, install orchestra for it and start sshd; HarnessError says
    what went wrong."""
    if os.geteuid() != 0:
        raise HarnessError(f"the ssh host needs root: it adds the account {ACCOUNT}, writes under {BASE} and runs "
                           "sshd (the tests run as root on this machine and in CI); run them as root")
    started = time.monotonic()
    sshd = _tool("sshd", "the OpenSSH server is not installed: `./dev test` installs it, or apt-get install "
                         "openssh-server")
    uid = _ensure_account()
    session, lock = _open_session()
    host = None
    try:
        if _clear_stale_sessions(keep=session) == 0:  # no other session uses the account: start it afresh
            _kill(_account_pids(uid), signal.SIGKILL, 5.0)
            _empty(HOME)
        host = _configure(workdir, session)
        host._session, host._lock = session, lock
        _install_orchestra(session)
        (session / "sshd_config").write_text(str(workdir / "sshd_config"))  # whose sshd it is, should we crash
        host._server = _start_sshd(sshd, workdir, host.port)
    except BaseException:
        if host is not None:
            host.stop()
        else:
            shutil.rmtree(session, ignore_errors=True)
            session.with_suffix(".lock").unlink()
            lock.close()
        raise
    host.setup_seconds = time.monotonic() - started
    return host


def _ensure_account() -> int:
    """Add the account if it is missing, and put right its home, shell and password field."""
    try:
        entry = pwd.getpwnam(ACCOUNT)
    except KeyError:
        # '*' and not useradd's '!': with UsePAM no, sshd refuses an account whose password is locked with '!'.
        _check([_tool("useradd"), "--system", "--user-group", "--home-dir", str(HOME), "--no-create-home",
                "--shell", "/bin/sh", "--password", "*", "--comment", "orchestra ssh tests", ACCOUNT])
        entry = pwd.getpwnam(ACCOUNT)
    locked = any(line.startswith(f"{ACCOUNT}:!") for line in Path("/etc/shadow").read_text().splitlines())
    if (entry.pw_dir, entry.pw_shell) != (str(HOME), "/bin/sh") or locked:
        _check([_tool("usermod"), "--home", str(HOME), "--shell", "/bin/sh", "--password", "*", ACCOUNT])
    for folder in (BASE, SESSIONS):
        folder.mkdir(mode=0o755, parents=True, exist_ok=True)
        os.chown(folder, 0, 0)
        folder.chmod(0o755)
    HOME.mkdir(mode=0o700, exist_ok=True)
    os.chown(HOME, entry.pw_uid, entry.pw_gid)
    HOME.chmod(0o700)
    return entry.pw_uid


def _open_session() -> tuple[Path, IO[str]]:
    """A new session directory, with its lock file held for as long as the session lives."""
    session = SESSIONS / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    lock = session.with_suffix(".lock").open("w")  # before the directory: a directory without one is stale
    fcntl.flock(lock, fcntl.LOCK_EX)
    session.mkdir(mode=0o755)
    return session, lock


def _clear_stale_sessions(keep: Path) -> int:
    """Remove the files of sessions that ended without cleaning up; return how many others are live."""
    live = 0
    for name in {entry.name.removesuffix(".lock") for entry in SESSIONS.iterdir()} - {keep.name}:
        session = SESSIONS / name
        with session.with_suffix(".lock").open("a") as lock:  # a directory left without one gets one, then goes
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                live += 1
                continue
            _end_orphaned_sshd(session)
            shutil.rmtree(session, ignore_errors=True)
            session.with_suffix(".lock").unlink()
    return live


def _end_orphaned_sshd(session: Path) -> None:
    """Stop the sshd of a session that ended without stopping it (its pytest was killed, say)."""
    try:
        config = (session / "sshd_config").read_bytes()
    except FileNotFoundError:
        return
    for pid, (_, uid, comm) in _processes().items():
        try:
            words = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ") + b" "  # sshd retitles itself
            if uid == 0 and comm == "sshd" and b" -f " + config + b" " in words:
                _kill([pid], signal.SIGTERM, 5.0)
        except OSError:  # it ended meanwhile
            pass


def _configure(workdir: Path, session: Path) -> SshHost:
    """Keys, sshd_config, known_hosts and the client config of one session."""
    for name in ("host_ed25519", "client_ed25519"):
        _check(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"orchestra-tests-{name}",
                "-f", str(workdir / name)], cwd=workdir)
    authorized = session / "authorized_keys"
    authorized.write_text((workdir / "client_ed25519.pub").read_text())
    authorized.chmod(0o644)  # sshd reads it as the account; the directory is root's, so the account cannot swap it
    port = _free_port()
    (workdir / "sshd_config").write_text(_sshd_config(workdir, port, authorized))
    kind, key = (workdir / "host_ed25519.pub").read_text().split()[:2]
    (workdir / "known_hosts").write_text(f"[127.0.0.1]:{port} {kind} {key}\n")
    config = workdir / "ssh_config"
    config.write_text(_client_config(workdir, port))
    return SshHost(ALIAS, config, port, ACCOUNT, HOME, session / "bin" / "orchestra", workdir / "client_ed25519")


def _sshd_config(workdir: Path, port: int, authorized: Path) -> str:
    return f"""\
ListenAddress 127.0.0.1
Port {port}
HostKey {workdir / "host_ed25519"}
PidFile {workdir / "sshd.pid"}
AuthorizedKeysFile {authorized}
AuthorizedKeysCommand none
StrictModes yes
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
HostbasedAuthentication no
UsePAM no
PermitRootLogin no
AllowUsers {ACCOUNT}
AllowAgentForwarding no
AllowTcpForwarding no
AllowStreamLocalForwarding no
X11Forwarding no
PermitTunnel no
PermitUserEnvironment no
PermitUserRC no
MaxSessions 64
MaxStartups 100
PrintMotd no
PrintLastLog no
LogLevel VERBOSE
Subsystem sftp internal-sftp
"""


def _client_config(workdir: Path, port: int) -> str:
    return f"""\
Host {ALIAS}
  HostName 127.0.0.1
  Port {port}
  User {ACCOUNT}
  IdentityFile "{workdir / "client_ed25519"}"
  IdentitiesOnly yes
  UserKnownHostsFile "{workdir / "known_hosts"}"
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  UpdateHostKeys no
  BatchMode yes
  PasswordAuthentication no
  KbdInteractiveAuthentication no
  ForwardAgent no
  ForwardX11 no
  LogLevel ERROR
"""


def _install_orchestra(session: Path) -> Path:
    """Copy the running venv and src/ where the account can read them, and write the `orchestra` wrapper."""
    prefix = Path(sys.prefix)
    if prefix == Path(sys.base_prefix):
        raise HarnessError(f"the tests run from {prefix}, not a virtualenv: run them with ./dev test (.venv)")
    venv, src, wrapper = session / "venv", session / "src", session / "bin" / "orchestra"
    if subprocess.run(["cp", "-al", str(prefix), str(venv)], capture_output=True).returncode != 0:
        shutil.rmtree(venv, ignore_errors=True)  # another file system: hard links cannot cross it
        _check(["cp", "-a", str(prefix), str(venv)])
    for pth in venv.glob("lib/python*/site-packages/*.pth"):
        if str(REPO) in pth.read_text():  # the editable install points back into the clone: the copy is used
            pth.unlink()  # unlink, never write: the file may be a hard link to the venv's own
    _point_at_a_python_the_account_runs(venv)
    _check(["cp", "-R", "--preserve=timestamps", str(REPO / "src"), str(src)])
    _check(["chmod", "-R", "u=rwX,go=rX", str(src)])
    wrapper.parent.mkdir(mode=0o755)
    wrapper.write_text(f"#!/bin/sh\n# This checkout's orchestra for {ACCOUNT} (tests/harness/sshd.py).\n"
                       f"PYTHONPATH={_sh_quote(str(src))}\nexport PYTHONPATH\n"
                       f"exec {_sh_quote(str(venv / 'bin' / 'python'))} -m orchestra.cli \"$@\"\n")
    wrapper.chmod(0o755)
    done = _as_account([str(wrapper), "--help"])
    if done.returncode != 0 or "usage" not in done.stdout:
        raise HarnessError(f"{wrapper} --help does not run as {ACCOUNT}: {done.stderr.strip() or done.stdout}")
    return wrapper


def _point_at_a_python_the_account_runs(venv: Path) -> None:
    """Keep the venv's base Python if the account can run it, else use a system Python of the same version."""
    base = (venv / "bin" / "python").resolve()
    if _as_account([str(base), "-c", ""]).returncode == 0:
        return
    version = "%d.%d" % sys.version_info[:2]
    for candidate in (Path(f"/usr/local/bin/python{version}"), Path(f"/usr/bin/python{version}")):
        if candidate.is_file() and _as_account([str(candidate), "-c", ""]).returncode == 0:
            break
    else:
        raise HarnessError(f"{ACCOUNT} cannot run the venv's Python {base} (it lives in a private directory) and "
                           f"there is no python{version} in /usr/bin or /usr/local/bin: apt-get install "
                           f"python{version}")
    for link in (venv / "bin").iterdir():
        if link.is_symlink() and link.resolve() == base:
            link.unlink()
            link.symlink_to(candidate)
    cfg = venv / "pyvenv.cfg"
    kept = [line for line in cfg.read_text().splitlines()
            if not line.startswith(("version =", "executable =", "command ="))]  # those name the old one
    lines = [f"home = {candidate.parent}" if line.startswith("home =") else line for line in kept]
    cfg.unlink()  # a hard link to the venv's own: replace it, never write through it
    cfg.write_text("\n".join(lines) + "\n")


def _start_sshd(sshd: str, workdir: Path, port: int) -> subprocess.Popen[bytes]:
    """Start sshd in the foreground and return once its port accepts connections."""
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # its privilege-separation directory
    log_path = workdir / "sshd.log"
    with log_path.open("ab") as log:
        server = subprocess.Popen([sshd, "-D", "-e", "-f", str(workdir / "sshd_config")], stdin=subprocess.DEVNULL,
                                  stdout=log, stderr=log, env={"PATH": SYSTEM_PATH}, cwd=workdir)
    deadline = time.monotonic() + READY_TIMEOUT
    while server.poll() is None and time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            time.sleep(0.02)
    _kill([server.pid], signal.SIGKILL, 5.0)
    server.wait(timeout=5)
    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-10:])
    raise HarnessError(f"sshd did not accept connections on 127.0.0.1:{port} within {READY_TIMEOUT:g}s "
                       f"(exit status {server.returncode}); {log_path}:\n{tail}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _empty(folder: Path) -> None:
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _processes() -> dict[int, tuple[int, int, str]]:
    """pid: (parent pid, uid, command name) of every live process (zombies left out)."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            uid = os.stat(entry.path).st_uid
        except OSError:  # it ended meanwhile
            continue
        comm, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        if rest[0] != "Z":
            table[int(entry.name)] = (int(rest[1]), uid, comm)
    return table


def _account_pids(uid: int) -> list[int]:
    return [pid for pid, (_, owner, _) in _processes().items() if owner == uid]


def _kill(pids: list[int], sig: signal.Signals, timeout: float) -> None:
    """Send sig to each pid and wait (bounded) until they are gone."""
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while (left := set(pids) & _processes().keys()) and time.monotonic() < deadline:
        time.sleep(0.02)
    if left:
        raise HarnessError(f"processes {sorted(left)} did not end within {timeout:g}s of signal {sig.name}")


def _account_env() -> dict[str, str]:
    return {"PATH": ACCOUNT_PATH, "HOME": str(HOME), "USER": ACCOUNT, "LOGNAME": ACCOUNT, "SHELL": "/bin/sh",
            "LANG": "C.UTF-8"}


def _as_account(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_tool("runuser"), "-u", ACCOUNT, "--", *argv], cwd=HOME, env=_account_env(),
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def _tool(name: str, missing: str = "") -> str:
    found = shutil.which(name, path=SYSTEM_PATH)
    if found is None:
        raise HarnessError(missing or f"{name} is not installed (it comes with util-linux / passwd)")
    return found


def _check(argv: list[str], cwd: Path | None = None) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env={"PATH": SYSTEM_PATH, "HOME": "/"},
                          timeout=60, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        said = done.stderr.strip() or done.stdout.strip()
        raise HarnessError(f"{' '.join(argv)} failed (exit status {done.returncode}): {said}")
    return done.stdout


def _sh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"
