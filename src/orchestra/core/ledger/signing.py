"""Signing entries with the conductor's SSH key, the way git signs commits (gpg.format = ssh).

Each entry's hash is signed with `ssh-keygen -Y sign -n orchestra-ledger`; the entry's hashed body
names the signer ({"principal": user.email, "key": "SHA256:…"}) and the signature (the SSHSIG
blob, base64) goes in ``sig``, outside the hash. The key's fingerprint is learnt from a trial
signature, so a private key file, a public key whose private half is in ssh-agent, and a
``key::`` literal all work alike.
"""

from __future__ import annotations

import base64
import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from orchestra.core.base.errors import GitError
from orchestra.core.git.config import read_config
from orchestra.core.ledger.lines import LedgerError
from orchestra.core.ledger.signers import NAMESPACE, fingerprint

TRIAL_MESSAGE = b"orchestra-ledger trial signature"
_KEYS = ("gpg.format", "user.signingkey", "user.email", "gpg.ssh.allowedsignersfile", "gpg.ssh.program")
_LITERAL_PREFIXES = ("key::", "ssh-", "ecdsa-", "sk-")
_SIGN_TIMEOUT = 120.0  # a hardware key may wait for a touch


@dataclass(frozen=True)
class SigningConfig:
    """What git's configuration says about SSH signing, as read in one repository."""

    signing_key: str | None = None      # user.signingkey, when gpg.format is ssh
    principal: str | None = None        # user.email
    program: str = "ssh-keygen"         # gpg.ssh.program
    allowed_signers: Path | None = None  # gpg.ssh.allowedSignersFile
    allowed_signers_scope: str | None = None
    root: Path | None = None

    @property
    def enabled(self) -> bool:
        """Whether appends are signed."""
        return self.signing_key is not None


def read_signing_config(root: Path) -> SigningConfig:
    """Read the signing settings with `git config` in root; LedgerError when git cannot read them."""
    try:
        found = read_config(root, _KEYS)
    except GitError as error:
        raise LedgerError(f"cannot read git's signing configuration: {error.stderr or error}") from error
    value = {key: item.value for key, item in found.items()}
    is_ssh = value.get("gpg.format", "").lower() == "ssh"
    allowed = value.get("gpg.ssh.allowedsignersfile") or None
    return SigningConfig(
        signing_key=(value.get("user.signingkey") or None) if is_ssh else None,
        principal=value.get("user.email") or None,
        program=value.get("gpg.ssh.program") or "ssh-keygen",
        allowed_signers=(root / allowed) if allowed else None,  # an absolute path replaces root
        allowed_signers_scope=found["gpg.ssh.allowedsignersfile"].scope if allowed else None,
        root=root,
    )


def signature_key(sig_blob: bytes) -> bytes:
    """The public key blob embedded in an SSHSIG signature; ValueError when it is not one."""
    from sshsig.sshsig import SshsigSignature

    return SshsigSignature(sig_blob).public_key


class SshSigner:
    """Signs with user.signingkey through ssh-keygen; every failure is a one-line LedgerError."""

    _fingerprints: dict[tuple[str, str], str] = {}  # (program, key) -> fingerprint, learnt by a trial

    def __init__(self, config: SigningConfig) -> None:
        if not config.enabled or config.signing_key is None:
            raise ValueError("signing is not configured")
        self.config = config
        self.key: str = config.signing_key

    def signer_field(self) -> dict[str, str]:
        """The entry's `signer` member: the principal and the key's fingerprint."""
        if not self.config.principal:
            raise LedgerError("signing is configured (gpg.format = ssh) but user.email is not set: "
                              "it names the signer in every entry")
        cache_key = (self.config.program, self.key)
        if cache_key not in self._fingerprints:
            self._fingerprints[cache_key] = fingerprint(signature_key(self._run(TRIAL_MESSAGE)))
        return {"principal": self.config.principal, "key": self._fingerprints[cache_key]}

    def trial(self) -> None:
        """Sign a trial message now (not from the cache): LedgerError when signing cannot work."""
        self._fingerprints.pop((self.config.program, self.key), None)
        self.signer_field()

    def sign(self, message: bytes, expected_key: str) -> str:
        """The base64 SSHSIG blob signing message; LedgerError when the key used is not expected_key."""
        blob = self._run(message)
        used = fingerprint(signature_key(blob))
        if used != expected_key:
            self._fingerprints.pop((self.config.program, self.key), None)
            raise LedgerError(f"the signing key changed while signing ({used}, expected {expected_key}); "
                              "nothing was written, try again")
        return base64.b64encode(blob).decode("ascii")

    def _run(self, message: bytes) -> bytes:
        """Run ssh-keygen -Y sign on message and return the raw SSHSIG blob."""
        with self._key_file() as (path, in_agent):
            argv = [self.config.program, "-Y", "sign", "-n", NAMESPACE, "-f", str(path)]
            if in_agent:
                argv.append("-U")
            armored = _run_signer(argv, message, self.config.root)
        try:
            from sshsig.sshsig import ssh_dearmor_sshsig

            return ssh_dearmor_sshsig(armored)
        except ValueError as error:
            raise LedgerError(f"{self.config.program} printed no usable signature ({error})") from error

    @contextmanager
    def _key_file(self) -> Iterator[tuple[Path, bool]]:
        """The key file to pass with -f, and whether the private key is in ssh-agent."""
        key = self.key
        if key.startswith(_LITERAL_PREFIXES):
            literal = key.removeprefix("key::")
            with tempfile.NamedTemporaryFile("w", prefix="orchestra-signing-", suffix=".pub") as handle:
                handle.write(literal.strip() + "\n")
                handle.flush()
                yield Path(handle.name), True
            return
        path = Path(os.path.expanduser(key))
        if self.config.root is not None:
            path = self.config.root / path
        if not path.is_file():
            raise LedgerError(f"the signing key {path} (user.signingkey) does not exist or is not a file")
        yield path, path.suffix == ".pub"


def _run_signer(argv: list[str], message: bytes, cwd: Path | None) -> bytes:
    """Run the signing program without a terminal (it must never prompt over the UI)."""
    env = {**os.environ, "SSH_ASKPASS_REQUIRE": "never"}
    try:
        done = subprocess.run(argv, input=message, capture_output=True, cwd=cwd, env=env,
                              timeout=_SIGN_TIMEOUT, start_new_session=True)
    except FileNotFoundError as error:
        raise LedgerError(f"cannot sign: {argv[0]} was not found (gpg.ssh.program)") from error
    except subprocess.TimeoutExpired as error:
        raise LedgerError(f"cannot sign: {argv[0]} did not answer in {_SIGN_TIMEOUT:.0f} s") from error
    if done.returncode != 0:
        lines = [line for line in done.stderr.decode("utf-8", "replace").splitlines()
                 if line.strip() and "Signing data on standard input" not in line]
        reason = lines[-1].strip() if lines else f"exit status {done.returncode}"
        raise LedgerError(f"cannot sign with user.signingkey: {argv[0]} failed: {reason}")
    return done.stdout
