"""Checking entry signatures in-process against git's allowed signers file (sshsig, not ssh-keygen).

The allowed signers file is read the way `ssh-keygen -Y verify` reads it: a key counts for a
principal when a line lists the key with a principal pattern matching it (`*`, `?`, `!negation`,
comma lists), its namespaces option (if any) admits orchestra-ledger, and its valid-after /
valid-before options (if any) admit the entry's time. Certificate authorities are not supported.
Keys sshsig cannot verify (ECDSA, security keys) are checked by ssh-keygen, one entry at a time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any



NAMESPACE = "orchestra-ledger"


def fingerprint(public_blob: bytes) -> str:
    """The key's fingerprint as ssh-keygen -l prints it: SHA256:<base64, unpadded>."""
    digest = hashlib.sha256(public_blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


@dataclass(frozen=True)
class AllowedKey:
    """One usable line of an allowed signers file."""

    principals: str
    blob: bytes
    namespaces: str | None = None
    valid_after: str | None = None
    valid_before: str | None = None

    def to_json(self) -> list[Any]:
        return [self.principals, base64.b64encode(self.blob).decode("ascii"), self.namespaces,
                self.valid_after, self.valid_before]

    @staticmethod
    def from_json(item: list[Any]) -> AllowedKey:
        return AllowedKey(item[0], base64.b64decode(item[1]), item[2], item[3], item[4])


def load_allowed_signers(path: Path) -> list[AllowedKey]:
    """Parse an allowed signers file; ValueError (with the line) when it is malformed, OSError unreadable."""
    from sshsig.allowed_signers import AllowedSigner

    keys = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            parsed = AllowedSigner.parse(line)
            blob = base64.b64decode(parsed.base64_key, validate=True)
        except (ValueError, binascii.Error, IndexError) as error:
            raise ValueError(f"{path}:{number}: not an allowed signers line ({error})") from error
        options = parsed.options or {}
        if "cert-authority" in options:
            continue
        keys.append(AllowedKey(parsed.principals, blob, options.get("namespaces"),
                               options.get("valid-after"), options.get("valid-before")))
    return keys


@lru_cache(maxsize=256)
def _pattern(glob: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob), re.DOTALL)


def matches_pattern_list(text: str, patterns: str) -> bool:
    """OpenSSH's match_pattern_list: true when some pattern matches and no negated one does."""
    matched = False
    for pattern in patterns.split(","):
        negated = pattern.startswith("!")
        if _pattern(pattern[1:] if negated else pattern).fullmatch(text):
            if negated:
                return False
            matched = True
    return matched


def _ssh_time(text: str) -> datetime | None:
    """An allowed signers timestamp (YYYYMMDD[HHMM[SS]][Z]); None when malformed."""
    utc = text.endswith(("Z", "z"))
    digits = text.rstrip("Zz")
    formats = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}
    try:
        moment = datetime.strptime(digits, formats[len(digits)])
    except (KeyError, ValueError):
        return None
    return moment.replace(tzinfo=timezone.utc) if utc else moment.astimezone()


def _entry_time(text: object) -> datetime | None:
    try:
        return datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def _valid_at(key: AllowedKey, when: object) -> bool:
    if key.valid_after is None and key.valid_before is None:
        return True
    moment = _entry_time(when)
    after = _ssh_time(key.valid_after) if key.valid_after else None
    before = _ssh_time(key.valid_before) if key.valid_before else None
    if moment is None or (key.valid_after and after is None) or (key.valid_before and before is None):
        return False
    return (after is None or moment >= after) and (before is None or moment <= before)


@dataclass
class SignatureChecker:
    """Checks one entry's signature at a time; caches keys, so a ledger signed by one key is fast."""

    allowed: list[AllowedKey]
    source: str = "the allowed signers file"
    _public_keys: dict[bytes, Any] = field(default_factory=dict)
    _fingerprints: dict[bytes, str] = field(default_factory=dict)

    def problem(self, entry_hash: str, signer: object, sig: object, when: object) -> str | None:
        """Why the entry's signature does not hold, or None when it does."""
        if not (isinstance(signer, dict) and isinstance(signer.get("principal"), str)
                and isinstance(signer.get("key"), str)):
            return "its signer field is malformed (it must name a principal and a key)"
        outer = self._parse(sig)
        if outer is None:
            return "its signature is malformed (not a base64 SSHSIG blob)"
        if outer.namespace != NAMESPACE.encode():
            return f"its signature is for namespace {outer.namespace.decode('utf-8', 'replace')!r}, not {NAMESPACE}"
        used = self._fingerprint(outer.public_key)
        if used != signer["key"]:
            return f"it was signed by key {used}, not by the key it names ({signer['key']}): re-signed or forged"
        refusal = self._allowed(outer.public_key, signer["principal"], when)
        if refusal:
            return refusal
        if not self._verifies(outer, entry_hash.encode("ascii"), sig):
            return "its signature does not match its content (the entry was altered or the signature forged)"
        return None

    def _parse(self, sig: object) -> Any:
        from sshsig.sshsig import SshsigSignature

        if not isinstance(sig, str):
            return None
        try:
            return SshsigSignature(base64.b64decode(sig, validate=True))
        except (ValueError, binascii.Error, NotImplementedError, IndexError):
            return None

    def _fingerprint(self, blob: bytes) -> str:
        if blob not in self._fingerprints:
            self._fingerprints[blob] = fingerprint(blob)
        return self._fingerprints[blob]

    def _allowed(self, blob: bytes, principal: str, when: object) -> str | None:
        """Why blob may not sign for principal at that time (None: it may)."""
        listed = [key for key in self.allowed if key.blob == blob
                  and matches_pattern_list(principal, key.principals)]
        if not listed:
            return f"key {self._fingerprint(blob)} is not an allowed signer for {principal} in {self.source}"
        usable = [key for key in listed if key.namespaces is None
                  or matches_pattern_list(NAMESPACE, key.namespaces)]
        if not usable:
            return (f"key {self._fingerprint(blob)} is allowed for {principal} only in namespaces "
                    f"{listed[0].namespaces!r}, not {NAMESPACE}, in {self.source}")
        if not any(_valid_at(key, when) for key in usable):
            return f"key {self._fingerprint(blob)} was not valid for {principal} at the entry's time {when}"
        return None

    def _verifies(self, outer: Any, message: bytes, sig: str) -> bool:
        """Whether the SSHSIG signature holds over message (in-process; ssh-keygen for other key types)."""
        from sshsig import PublicKey
        from sshsig.sshsig import SshsigWrapper

        key = self._public_keys.get(outer.public_key)
        if key is None:
            try:
                key = PublicKey.from_ssh_encoding(outer.public_key)
            except NotImplementedError:
                return _ssh_keygen_verifies(sig, message)
            except ValueError:
                return False
            self._public_keys[outer.public_key] = key
        algo = outer.hash_algo.decode("ascii", "replace")
        if algo not in ("sha256", "sha512"):
            return False
        signed = SshsigWrapper(namespace=NAMESPACE.encode(), hash_algo=outer.hash_algo,
                               hash=hashlib.new(algo, message).digest()).to_bytes()
        try:
            return key.do_verify(outer.signature, signed) is None
        except (ValueError, AssertionError):
            return False


def _ssh_keygen_verifies(sig: str, message: bytes) -> bool:
    """Check a signature's cryptography with `ssh-keygen -Y check-novalidate` (the key is checked apart)."""
    from sshsig.sshsig import ssh_enarmor_sshsig

    with tempfile.NamedTemporaryFile("w", suffix=".sig") as handle:
        handle.write(ssh_enarmor_sshsig(base64.b64decode(sig)))
        handle.flush()
        try:
            done = subprocess.run(["ssh-keygen", "-Y", "check-novalidate", "-n", NAMESPACE, "-s", handle.name],
                                  input=message, capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return False
    return done.returncode == 0
