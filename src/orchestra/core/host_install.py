"""`orchestra hosts check NAME --install`: orchestra installed at a host from this checkout and its hashed lock.

The checkout's source (pyproject.toml, requirements.lock, src/, themes/) goes to the host over the same ssh as
everything else, into `<path>/install/src`; there a virtualenv is filled from requirements.lock with
`pip install --require-hashes --no-deps` (the lock lists every package, each pinned with its sha256: exactly
those are installed, and an older pip's resolver, which trips over extras when hashes are required, is not
asked; the host fetches them from the package index itself), the source is put on its path, and `<path>/install/bin/orchestra` runs it.
The host's `orchestra` in your settings is then set to that command. The lock is made for CPython 3.11 on Linux
x86_64: a host with another Python or machine gets pip's refusal, as said.
"""

from __future__ import annotations

import io
import shlex
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import orchestra
from orchestra.core.base.errors import OrchestraError
from orchestra.core.hosts import Host
from orchestra.core.supervise.ssh import Place, ssh_argv

SHIPPED = ("pyproject.toml", "requirements.lock", "README.md", "src", "themes")
SKIPPED = ("__pycache__", ".pyc", ".pyo")
# Run by the host's sh with the source's tar on stdin; $1 is the install directory (~/ is the host's home).
SCRIPT = r"""
set -eu
case $1 in "~/"*) dir="$HOME/${1#"~/"}" ;; "~") dir=$HOME ;; *) dir=$1 ;; esac
mkdir -p "$dir" && cd "$dir"
rm -rf src.new && mkdir src.new && tar -xzf - -C src.new
rm -rf src.old && { [ ! -d src ] || mv src src.old; } && mv src.new src && rm -rf src.old
if [ ! -x venv/bin/python ] && ! python3 -m venv venv; then
    echo "python3 -m venv failed (on Debian: apt-get install python3-venv)" >&2; exit 1
fi
venv/bin/python -m pip install --disable-pip-version-check --quiet --no-deps --require-hashes \
    -r src/requirements.lock
site=$(venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
printf '%s\n' "$PWD/src/src" > "$site/orchestra-source.pth"
mkdir -p bin
printf '#!/bin/sh\nexec "%s/venv/bin/python" -m orchestra.cli "$@"\n' "$PWD" > bin/orchestra.new
chmod 755 bin/orchestra.new && mv bin/orchestra.new bin/orchestra
bin/orchestra --version >/dev/null
echo "orchestra=$PWD/bin/orchestra"
"""


@dataclass(frozen=True)
class Installed:
    host: str
    command: str  # the orchestra command there


def checkout() -> Path:
    """The checkout this orchestra runs from (its lock file is what the host installs from)."""
    root = Path(orchestra.__file__).resolve().parents[2]
    if not (root / "requirements.lock").is_file() or not (root / "pyproject.toml").is_file():
        raise OrchestraError(f"this orchestra was not installed from a checkout (no requirements.lock beside "
                             f"{root / 'src'}); install it at the host from a clone: git clone …, then ./dev setup")
    return root


def source_tar(root: Path) -> bytes:
    """The checkout's source as a gzip'd tar (no caches)."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        for name in SHIPPED:
            if (root / name).exists():
                tar.add(root / name, arcname=name, filter=_without_caches)
    return data.getvalue()


def _without_caches(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
    if any(part in SKIPPED or part.endswith(SKIPPED[1:]) for part in Path(member.name).parts):
        return None
    member.uid = member.gid = 0
    member.uname = member.gname = ""
    return member


def install(host: Host, root: Path | None = None) -> Installed:
    """Install orchestra at host from root (this checkout); OrchestraError with what the host said."""
    if host.local:
        raise OrchestraError("local is this machine: orchestra is here already")
    place: Place = host.place()
    directory = f"{place.path.rstrip('/')}/install"
    command = f"sh -c {shlex.quote(SCRIPT)} orchestra-install {shlex.quote(directory)}"
    done = subprocess.run(ssh_argv(place, command), input=source_tar(root or checkout()), capture_output=True)
    said = done.stdout.decode("utf-8", "replace").splitlines()
    if done.returncode != 0 or not said or not said[-1].startswith("orchestra="):
        errors = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise OrchestraError(f"installing orchestra at {host.name} failed: "
                             + (errors[-1][:400] if errors else f"exit status {done.returncode}"))
    return Installed(host.name, said[-1].removeprefix("orchestra="))
