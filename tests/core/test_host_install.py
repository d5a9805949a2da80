"""`orchestra hosts check NAME --install`, against the real SSH host (tests/harness/sshd.py).

The package index is not reached by tests: the checkout shipped here has a lock file with no packages, so pip
installs nothing, and everything else (the source going over ssh, the virtualenv, the command, the settings)
is what a real install does.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from orchestra.core.base.errors import OrchestraError
from orchestra.core.host_install import install, source_tar
from orchestra.core.hosts import load_hosts, set_host_command
from orchestra.core.settings import settings_path
from tests.core.helpers import write_settings
from tests.harness.sshd import SshHost

ROOT = Path(__file__).resolve().parents[2]


def checkout_without_packages(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    shutil.copytree(ROOT / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", root)
    (root / "requirements.lock").write_text("# no packages: the tests never reach the package index\n")
    return root


def test_install_ships_this_checkout_and_sets_the_hosts_command(ssh_host: SshHost, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    ssh_host.use(monkeypatch)
    write_settings(f'[ui]\ntheme = "nord"\n\n[[hosts]]\nname = "box"\nssh = "{ssh_host.alias}"\n'
                               f'path = "~/install-test"\nslots = 3\n')
    box, root = load_hosts()[1], checkout_without_packages(tmp_path)
    installed = install(box, root)
    assert installed.command == f"{ssh_host.home}/install-test/install/bin/orchestra"
    done = ssh_host.run(f"{installed.command} --version")
    assert done.returncode == 0 and done.stdout.startswith("orchestra "), done.stderr
    # It runs the shipped source, in a virtualenv of its own, as the host's account.
    where = ssh_host.run(f"{ssh_host.home}/install-test/install/venv/bin/python -c 'import orchestra; "
                         "print(orchestra.__file__)'")
    assert where.stdout.strip() == f"{ssh_host.home}/install-test/install/src/src/orchestra/__init__.py"
    set_host_command("box", installed.command)
    assert load_hosts()[1].orchestra == installed.command and load_hosts()[1].slots == 3
    assert 'theme = "nord"' in settings_path().read_text()  # the rest of the settings is kept
    # Installing again replaces the source, keeps the virtualenv.
    assert install(box, root).command == installed.command


def test_a_failing_install_says_what_the_host_said(ssh_host: SshHost, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    ssh_host.use(monkeypatch)
    root = checkout_without_packages(tmp_path)
    (root / "requirements.lock").write_text("not-a-package-name-at-all==1.0 --hash=sha256:00\n")
    write_settings(f'[[hosts]]\nname = "box"\nssh = "{ssh_host.alias}"\npath = "~/install-fail"\n')
    with pytest.raises(OrchestraError, match="installing orchestra at box failed: .*"):
        install(load_hosts()[1], root)


def test_the_shipped_source_has_no_caches() -> None:
    import io
    import tarfile
    names = tarfile.open(fileobj=io.BytesIO(source_tar(ROOT)), mode="r:gz").getnames()
    assert "requirements.lock" in names and "src/orchestra/cli.py" in names
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
