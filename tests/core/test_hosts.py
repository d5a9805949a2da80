"""The machines runs may go to (issue 14, its first part): [[hosts]] in the user's settings file, never the
repository's, each entry checked with a clear message; `orchestra hosts check` asks each host, over a
non-interactive ssh that forwards nothing, for git, Python 3.11+ and orchestra, and says what to do."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from orchestra.core.hosts import LOCAL, Host, HostCheck, check_host, load_hosts, probe_argv
from orchestra.core.settings import SettingsError
from tests.core.helpers import cli, write_settings

UNREACHABLE = "ssh://nobody@127.0.0.1:1"  # nothing listens on port 1: refused at once


settings = write_settings


def test_without_hosts_there_is_the_local_machine_without_a_limit() -> None:
    assert load_hosts() == [Host(LOCAL, None, None)]


def test_with_other_hosts_the_local_machine_takes_a_run_per_core() -> None:
    settings('[[hosts]]\nname = "box"\nssh = "dev@box.example"\n')
    assert load_hosts() == [Host(LOCAL, None, os.cpu_count() or 1), Host("box", "dev@box.example", 1)]


def test_hosts_are_read_from_the_users_settings(tmp_path: Path) -> None:
    settings('[[hosts]]\nname = "box"\nssh = "dev@box.example"\nslots = 4\npath = "~/orchestra"\n'
             '[[hosts]]\nname = "local"\nslots = 1\n'
             '[[hosts]]\nname = "gpu"\nssh = "gpu-alias"\norchestra = "/opt/orchestra/bin/orchestra"\n')
    assert load_hosts() == [Host(LOCAL, None, 1), Host("box", "dev@box.example", 4, "~/orchestra"),
                            Host("gpu", "gpu-alias", 1, None, "/opt/orchestra/bin/orchestra")]


@pytest.mark.parametrize("text, message", [
    ('hosts = "box"\n', "hosts must be an array of tables ([[hosts]])"),
    ('[[hosts]]\nname = "box"\nssh = "a@b"\nslot = 2\n', "'slot' is not a host setting (did you mean 'slots'?)"),
    ('[[hosts]]\nname = "Big Box"\nssh = "a@b"\n', "name must be a short name"),
    ('[[hosts]]\nname = "box"\n', "ssh must name the machine as ssh does"),
    ('[[hosts]]\nname = "box"\nssh = "-oProxyCommand=touch /tmp/pwned"\n', "is not a destination"),
    ('[[hosts]]\nname = "box"\nssh = "a@b c"\n', "is not a destination"),
    ('[[hosts]]\nname = "local"\nssh = "a@b"\n', "the name local is the machine orchestra runs on"),
    ('[[hosts]]\nname = "box"\nssh = "a@b"\n[[hosts]]\nname = "box"\nssh = "c@d"\n', "'box' is used twice"),
    ('[[hosts]]\nname = "box"\nssh = "a@b"\nslots = 0\n', "slots must be a whole number from 1 to 256"),
    ('[[hosts]]\nname = "box"\nssh = "a@b"\nslots = true\n', "slots must be a whole number from 1 to 256"),
    ('[[hosts]]\nname = "box"\nssh = "a@b"\nslots = 1000\n', "slots must be a whole number from 1 to 256"),
    ('[[hosts]]\nname = "box"\nssh = "a@b"\npath = "relative/dir"\n', "path must be absolute or start with ~"),
    ('[[hosts]]\nname = "box"\nssh = "a@b"\norchestra = ""\n', "orchestra must be the command"),
    ('[[hosts\n', "cannot be read"),
])
def test_a_wrong_host_is_a_clear_error_naming_the_file(text: str, message: str) -> None:
    path = settings(text)
    with pytest.raises(SettingsError) as raised:
        load_hosts()
    assert message in str(raised.value) and str(path) in str(raised.value)
    assert path.read_text() == text  # nothing lost: the file is left as it is


def test_the_local_host_has_what_a_run_needs() -> None:
    found = check_host(load_hosts()[0])
    assert found.ok, found.problems
    assert found.git.startswith("git version") and found.python.startswith("3.")
    assert "(this one)" in found.orchestra


def test_an_unreachable_host_says_so_and_how_to_check() -> None:
    found = check_host(Host("box", UNREACHABLE, 2))
    assert not found.ok and not found.reached
    assert found.problems[0].startswith("cannot reach it: ") and "Connection refused" in found.problems[0]
    assert f"`ssh {UNREACHABLE} true`" in found.problems[0]


def test_a_host_is_asked_without_forwarding_anything_or_a_prompt_and_options_cannot_hide_in_its_name() -> None:
    argv = probe_argv(Host("box", "dev@box", 1))
    assert argv[0] == "ssh" and "-a" in argv and "-x" in argv and "BatchMode=yes" in argv
    assert "ForwardAgent=no" in argv and argv[argv.index("--") + 1] == "dev@box"


@pytest.mark.parametrize("python, problem", [
    (None, "python3 is missing: orchestra needs Python 3.11 or later (apt-get install python3)"),
    ("3.9.2", "python3 is 3.9.2: orchestra needs 3.11 or later"), ("3.12.1", None)])
def test_what_a_host_lacks_is_said_with_what_to_do(python: str | None, problem: str | None) -> None:
    from orchestra.core.hosts import _missing
    found = HostCheck(Host("box", "a@b", 1), reached=True, git="git version 2.39.5", python=python,
                      orchestra="/usr/local/bin/orchestra")
    assert [p for p in _missing(found) if p.startswith("python3")] == ([problem] if problem else [])
    found.orchestra = None
    assert any("'orchestra' is not on its PATH: `orchestra hosts check box --install` installs it there" in p
               for p in _missing(found))


def test_orchestra_hosts_lists_and_checks_on_the_command_line(tmp_path: Path) -> None:
    settings(f'[[hosts]]\nname = "box"\nssh = "{UNREACHABLE}"\nslots = 3\n')
    listed = cli("hosts", cwd=tmp_path)  # no repository needed: hosts are yours
    assert listed.returncode == 0 and listed.stdout.splitlines()[1].split()[:2] == ["box", "ssh"]
    assert [h["name"] for h in json.loads(cli("hosts", "--json", cwd=tmp_path).stdout)] == ["local", "box"]
    checked = cli("hosts", "check", cwd=tmp_path)
    assert checked.returncode == 1
    assert checked.stdout.startswith("local: ok (") and "box: NOT READY" in checked.stdout
    assert "cannot reach it" in checked.stdout
    only_local = cli("hosts", "check", "local", "--json", cwd=tmp_path)
    assert only_local.returncode == 0 and [c["host"]["name"] for c in json.loads(only_local.stdout)] == ["local"]
    unknown = cli("hosts", "check", "nosuch", cwd=tmp_path)
    assert unknown.returncode == 2 and "no host nosuch (hosts: local, box)" in unknown.stderr


def test_doctor_says_what_a_host_is_trusted_with(tmp_path: Path) -> None:
    from orchestra.core.onboarding.doctor import host_findings
    assert host_findings([Host(LOCAL, None, None)]) == []  # this machine alone: nothing to say
    settings('[[hosts]]\nname = "box"\nssh = "dev@box.example"\nslots = 2\n')
    [said] = host_findings(load_hosts())
    assert said.warning and "box (dev@box.example, 2 slots)" in said.detail
    assert "no key but what a run declares, and no ledger" in said.detail
