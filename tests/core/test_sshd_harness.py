"""The ssh test host (tests/harness/sshd.py): a local sshd for one dedicated account, reached with one key through
a config file, forwarding nothing; its connections can be dropped while what the account detached lives on, and
it runs this checkout's orchestra."""

from __future__ import annotations

import json
import os
import select
import subprocess
from pathlib import Path

import pytest

from tests.core.helpers import cli, wait_for, write_settings
from tests.harness import sshd
from tests.harness.sshd import SshHost


def ssh(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL, env=env)


def test_batch_mode_ssh_through_the_config_reaches_the_account(ssh_host: SshHost) -> None:
    done = ssh(ssh_host.ssh('id -un; echo "$HOME"'))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [sshd.ACCOUNT, str(ssh_host.home)]
    assert "BatchMode yes" in ssh_host.config.read_text() and "StrictHostKeyChecking yes" in ssh_host.config.read_text()


def test_agent_forwarding_is_asked_for_and_refused(ssh_host: SshHost, tmp_path: Path) -> None:
    socket_path = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(socket_path)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        wait_for(socket_path.exists, timeout=10, message="ssh-agent's socket")
        done = ssh(ssh_host.ssh('echo "sock=[$SSH_AUTH_SOCK]"', options=("-v", "-A")),
                   env={**os.environ, "SSH_AUTH_SOCK": str(socket_path)})
    finally:
        agent.terminate()
        agent.wait(timeout=10)
    assert done.returncode == 0, done.stderr
    assert "Requesting authentication agent forwarding" in done.stderr  # the client did ask
    assert done.stdout.strip() == "sock=[]"


def test_only_the_sessions_key_and_account_get_in(ssh_host: SshHost, tmp_path: Path) -> None:
    other_key = tmp_path / "other_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other_key)], check=True, timeout=30)

    def attempt(user: str, key: Path) -> subprocess.CompletedProcess[str]:  # no config: every option is here
        return ssh(["ssh", "-F", "/dev/null", "-p", str(ssh_host.port), "-i", str(key), "-o", "IdentitiesOnly=yes",
                    "-o", "IdentityAgent=none", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                    "-o", f"UserKnownHostsFile={ssh_host.config.parent / 'known_hosts'}",
                    f"{user}@127.0.0.1", "true"])

    assert attempt(sshd.ACCOUNT, ssh_host.key).returncode == 0
    for user, key in ((sshd.ACCOUNT, other_key), ("root", ssh_host.key), ("nobody", ssh_host.key)):
        refused = attempt(user, key)
        assert refused.returncode == 255 and "Permission denied (publickey)" in refused.stderr, (user, key)


def test_dropping_connections_ends_them_but_not_what_the_account_detached(ssh_host: SshHost) -> None:
    started = ssh(ssh_host.ssh("setsid sh -c 'echo $$ > detached.pid; exec sleep 60' </dev/null >/dev/null 2>&1 &"))
    assert started.returncode == 0, started.stderr
    detached = int(wait_for(lambda: ssh_host.run("cat detached.pid").stdout.strip(), timeout=10))
    live = subprocess.Popen(ssh_host.ssh("echo $$; exec sleep 60"), stdout=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    remote_sleep = None
    try:
        assert select.select([live.stdout], [], [], 15)[0], "the live connection never started its command"
        remote_sleep = int(live.stdout.readline())
        assert ssh_host.drop_connections()
        assert live.wait(timeout=10) == 255  # the client saw its connection end
        assert ssh_host.run(f"kill -0 {detached}").returncode == 0, "the detached process did not survive"
        assert ssh(ssh_host.ssh("true")).returncode == 0  # the server itself still listens
    finally:
        live.kill()
        live.wait(timeout=10)
        ssh_host.run(f"kill {detached} {remote_sleep or ''}; rm -f detached.pid")


def test_the_account_runs_this_checkouts_orchestra_and_cannot_read_roots_files(ssh_host: SshHost) -> None:
    over_ssh = ssh(ssh_host.ssh(f"{ssh_host.orchestra} --help"))
    assert over_ssh.returncode == 0 and over_ssh.stdout.startswith("usage: orchestra"), over_ssh.stderr
    verbose = ssh_host.run(f"PYTHONVERBOSE=1 {ssh_host.orchestra} --help")  # says where each module came from
    assert verbose.returncode == 0, verbose.stderr
    assert f"{ssh_host.orchestra.parent.parent}/src/orchestra/cli.py" in verbose.stderr
    assert f"{sshd.REPO}/src/" not in verbose.stderr  # the copy, not the clone the account may not read
    assert ssh_host.run("ls /root").returncode != 0


def test_private_keys_in_the_home_are_found(ssh_host: SshHost) -> None:
    made = ssh_host.run("mkdir -p probe && ssh-keygen -q -t ed25519 -N '' -f probe/id_probe")
    assert made.returncode == 0, made.stderr
    try:
        found = ssh_host.find_private_keys()
        assert ssh_host.home / "probe" / "id_probe" in found
        assert ssh_host.home / "probe" / "id_probe.pub" not in found
    finally:
        ssh_host.run("rm -rf probe")
    assert ssh_host.home / "probe" / "id_probe" not in ssh_host.find_private_keys()


def test_orchestra_hosts_check_reports_the_ssh_host_ok(ssh_host: SshHost, repo: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    ssh_host.use(monkeypatch)
    write_settings(f'[[hosts]]\nname = "box"\nssh = "{ssh_host.alias}"\n'
                               f'orchestra = "{ssh_host.orchestra}"\n')
    checked = cli("hosts", "check", "box", "--json", cwd=repo)
    [box] = json.loads(checked.stdout)
    assert box["ok"] and checked.returncode == 0, box["problems"]
    assert box["orchestra"] == str(ssh_host.orchestra) and box["python"].startswith("3.")


def test_without_root_the_harness_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sshd.os, "geteuid", lambda: 1000)
    with pytest.raises(sshd.HarnessError, match="the ssh host needs root: it adds the account orchestra-remote"):
        sshd.start_ssh_host(tmp_path)
