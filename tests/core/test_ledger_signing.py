"""Entries signed with the conductor's SSH key: what a tamperer without the key can no longer do."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
from pathlib import Path

import pytest

from orchestra.core.base.canonical import canonical_json
from orchestra.core.ledger import LedgerError
from orchestra.core.ledger.signing import SshSigner, read_signing_config
from tests.conftest import git
from tests.core.test_ledger_kit import (
    allow,
    assert_fails,
    configure_signing,
    decision_id,
    ledger_of,
    make_key,
    rechain,
    reject_fields,
    rewrite,
    signing_setup,
)

PRINCIPAL = "conductor@example.test"


@pytest.fixture
def signed(repo: Path, tmp_path: Path):
    """A repository with signing configured and three signed entries."""
    key = signing_setup(repo, tmp_path / "keys")
    ledger = ledger_of(repo)
    for n in range(3):
        ledger.append(reject_fields(f"r{n}", decision=decision_id(n)))
    return ledger, key


def forge(entries: list[dict], index: int, key: Path, claimed_key: str | None = None) -> list[dict]:
    """entries with entry index re-signed by key's owner, chain recomputed, as a forger with that key would."""
    fingerprint = subprocess.run(["ssh-keygen", "-lf", str(key)], capture_output=True, text=True,
                                 check=True).stdout.split()[1]
    entries = [dict(entry) for entry in entries]
    entries[index]["signer"] = {"principal": PRINCIPAL, "key": claimed_key or fingerprint}
    entries = rechain([{k: v for k, v in e.items() if k != "sig" or i != index} for i, e in enumerate(entries)])
    armored = subprocess.run(["ssh-keygen", "-Y", "sign", "-n", "orchestra-ledger", "-f", str(key)],
                             input=entries[index]["hash"].encode(), capture_output=True, check=True).stdout.decode()
    body = "".join(line for line in armored.splitlines() if not line.startswith("-----"))
    entries[index]["sig"] = base64.b64encode(base64.b64decode(body)).decode()
    return entries


def test_signed_entries_verify(signed) -> None:
    ledger, key = signed
    result = ledger.verify(require_signed=True)
    assert result.ok, result.problems
    assert (result.count, result.signed) == (3, 3)
    entry = ledger.entries()[0]
    fingerprint = subprocess.run(["ssh-keygen", "-lf", str(key)], capture_output=True, text=True).stdout.split()[1]
    assert entry["signer"] == {"principal": PRINCIPAL, "key": fingerprint}
    assert base64.b64decode(entry["sig"]).startswith(b"SSHSIG")


def test_ssh_keygen_accepts_the_signatures(signed, tmp_path: Path) -> None:
    ledger, _ = signed
    entry = ledger.entries()[1]
    sig = tmp_path / "entry.sig"
    body = base64.b64encode(base64.b64decode(entry["sig"])).decode()
    sig.write_text("-----BEGIN SSH SIGNATURE-----\n" + "\n".join(body[i:i + 70] for i in range(0, len(body), 70))
                   + "\n-----END SSH SIGNATURE-----\n")
    done = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(tmp_path / "keys" / "allowed_signers"),
                           "-I", PRINCIPAL, "-n", "orchestra-ledger", "-s", str(sig)],
                          input=entry["hash"].encode(), capture_output=True)
    assert done.returncode == 0, done.stderr


def test_altered_entry_with_chain_recomputed_fails_its_signature(signed) -> None:
    ledger, _ = signed
    entries = ledger.entries()
    entries[1]["reason"] = "a nicer reason"
    rewrite(ledger, entries, anchor=True)
    result = ledger.verify()
    assert_fails(result, "line 2: its signature does not match its content")
    assert_fails(result, "line 3: its signature does not match its content")  # its prev changed


def test_entry_resigned_with_another_key(signed, tmp_path: Path) -> None:
    ledger, _ = signed
    mallory = make_key(tmp_path / "mallory", "mallory")
    entries = ledger.entries()
    entries[2]["reason"] = "forged"
    rewrite(ledger, forge(entries, 2, mallory), anchor=True)
    result = ledger.verify()
    assert_fails(result, "line 3: key SHA256:", f"is not an allowed signer for {PRINCIPAL}")
    assert len(result.problems) == 1, result.problems


def test_entry_resigned_claiming_the_real_key(signed, tmp_path: Path) -> None:
    ledger, _ = signed
    mallory = make_key(tmp_path / "mallory", "mallory")
    entries = ledger.entries()
    real = entries[2]["signer"]["key"]
    entries[2]["reason"] = "forged"
    rewrite(ledger, forge(entries, 2, mallory, claimed_key=real), anchor=True)
    assert_fails(ledger.verify(), "line 3: it was signed by key", f"not by the key it names ({real})")


def test_a_key_allowed_for_someone_else(signed, tmp_path: Path) -> None:
    ledger, _ = signed
    mallory = make_key(tmp_path / "mallory", "mallory")
    allow(tmp_path / "keys" / "allowed_signers", "mallory@example.test", mallory)
    entries = ledger.entries()
    entries[2]["reason"] = "forged"
    rewrite(ledger, forge(entries, 2, mallory), anchor=True)
    assert_fails(ledger.verify(), f"is not an allowed signer for {PRINCIPAL}")


def test_a_forgery_that_would_pass_needs_the_key(signed) -> None:
    """The control for the forgeries above: signed with the real key, the same edit verifies."""
    ledger, key = signed
    entries = ledger.entries()
    entries[2]["reason"] = "edited by the key's owner"
    rewrite(ledger, forge(entries, 2, key), anchor=True)
    assert ledger.verify(require_signed=True).ok


def test_unsigned_entry_appended_by_hand(signed) -> None:
    ledger, _ = signed
    entries = ledger.entries()
    rewrite(ledger, [*entries, reject_fields("r9", anchored=True)], anchor=True)
    relaxed = ledger.verify()
    assert relaxed.ok and (relaxed.count, relaxed.signed) == (4, 3)
    assert_fails(ledger.verify(require_signed=True), "1 of 4 entries are not signed (line 4)")


def test_unsigned_entry_inserted_breaks_the_signatures_after_it(signed) -> None:
    ledger, _ = signed
    entries = ledger.entries()
    rewrite(ledger, [entries[0], reject_fields("r9"), *entries[1:]], anchor=True)
    assert_fails(ledger.verify(), "line 3: its signature does not match its content")


def test_stripped_signature(signed) -> None:
    ledger, _ = signed
    entries = ledger.entries()
    del entries[1]["sig"]
    rewrite(ledger, entries, anchor=True)
    assert_fails(ledger.verify(), f"line 2: it names signer {PRINCIPAL} but carries no signature")


def test_signed_entries_without_an_allowed_signers_file(signed) -> None:
    ledger, _ = signed
    git(ledger.anchor.root, "config", "--global", "--unset", "gpg.ssh.allowedSignersFile")
    assert_fails(ledger.verify(), "3 entries are signed but their signatures cannot be checked",
                 "git config names no allowed signers file")


def test_a_key_restricted_to_the_git_namespace(repo: Path, tmp_path: Path) -> None:
    key = make_key(tmp_path / "keys")
    allowed = tmp_path / "keys" / "allowed_signers"
    allow(allowed, PRINCIPAL, key, options='namespaces="git"')
    configure_signing(repo, key, allowed)
    ledger = ledger_of(repo)
    ledger.append(reject_fields("r1"))
    assert_fails(ledger.verify(), 'only in namespaces \'git\'', "not orchestra-ledger")


def test_the_allowed_signers_file_set_in_the_repository_is_a_note(signed, tmp_path: Path) -> None:
    ledger, _ = signed
    root = ledger.anchor.root
    git(root, "config", "--global", "--unset", "gpg.ssh.allowedSignersFile")
    git(root, "config", "gpg.ssh.allowedSignersFile", str(tmp_path / "keys" / "allowed_signers"))
    result = ledger.verify()
    assert result.ok and any("this repository's own git config" in note for note in result.notes)


# --- signing that cannot work ------------------------------------------------------------------------


def test_a_missing_key_refuses_before_anything_changes(signed) -> None:
    ledger, key = signed
    before = ledger.path.read_bytes()
    key.unlink()
    with pytest.raises(LedgerError, match="signing key .* does not exist"):
        ledger.check_appendable()
    with pytest.raises(LedgerError) as caught:
        ledger.append(reject_fields("r9"))
    assert "\n" not in str(caught.value)
    assert ledger.path.read_bytes() == before and not ledger.pending_path.exists()
    assert ledger.verify().ok


def test_a_failing_ssh_keygen_refuses(signed) -> None:
    ledger, _ = signed
    git(ledger.anchor.root, "config", "gpg.ssh.program", "false")
    with pytest.raises(LedgerError, match="cannot sign with user.signingkey: false failed"):
        ledger.check_appendable()
    git(ledger.anchor.root, "config", "gpg.ssh.program", "/nonexistent/ssh-keygen")
    with pytest.raises(LedgerError, match="was not found"):
        ledger.append(reject_fields("r9"))
    assert len(ledger.entries()) == 3


def test_an_encrypted_key_never_prompts(repo: Path, tmp_path: Path) -> None:
    key = tmp_path / "keys" / "locked"
    key.parent.mkdir()
    subprocess.run(["ssh-keygen", "-t", "ed25519", "-N", "secret", "-f", str(key), "-q"], check=True)
    configure_signing(repo, key, None)
    with pytest.raises(LedgerError, match="cannot sign"):
        ledger_of(repo).check_appendable()


def test_signing_is_read_from_git_config(repo: Path, tmp_path: Path) -> None:
    assert not read_signing_config(repo).enabled
    key = signing_setup(repo, tmp_path / "keys")
    config = read_signing_config(repo)
    assert config.enabled and config.signing_key == str(key) and config.principal == PRINCIPAL
    assert config.allowed_signers == tmp_path / "keys" / "allowed_signers"
    assert config.allowed_signers_scope == "global"
    git(repo, "config", "gpg.format", "openpgp")
    assert not read_signing_config(repo).enabled


@pytest.fixture
def agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An ssh-agent of the test's own (killed at the end), as SSH_AUTH_SOCK."""
    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    for _ in range(200):
        if sock.exists():
            break
        subprocess.run(["sleep", "0.01"])
    monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
    yield sock
    os.kill(proc.pid, signal.SIGTERM)
    proc.wait(timeout=10)


@pytest.mark.parametrize("form", ["pub", "literal"])
def test_a_key_held_by_ssh_agent(repo: Path, tmp_path: Path, agent: Path, form: str) -> None:
    key = make_key(tmp_path / "keys")
    subprocess.run(["ssh-add", "-q", str(key)], check=True, capture_output=True)
    public = key.with_name("key.pub")
    allowed = tmp_path / "keys" / "allowed_signers"
    allow(allowed, PRINCIPAL, key)
    key.unlink()  # only the agent holds the private half now
    configure_signing(repo, public if form == "pub" else "key::" + public.read_text().strip(), allowed)
    ledger = ledger_of(repo)
    ledger.check_appendable()
    ledger.append(reject_fields("r1"))
    result = ledger.verify(require_signed=True)
    assert result.ok and result.signed == 1, result.problems


def test_the_signer_checks_the_key_it_signed_with(signed) -> None:
    ledger, _ = signed
    signer = SshSigner(ledger.signing_config())
    field = signer.signer_field()
    with pytest.raises(LedgerError, match="signing key changed"):
        signer.sign(b"x" * 64, "SHA256:someone-else")
    assert signer.sign(b"x" * 64, field["key"])


def test_signatures_survive_a_canonical_rewrite(signed) -> None:
    """Re-serialising the lines (keys in another order, spaces) changes nothing verify depends on."""
    ledger, _ = signed
    import json

    lines = [json.dumps(json.loads(line), indent=None) for line in ledger.path.read_text().splitlines()]
    assert lines[0] != canonical_json(json.loads(lines[0]))
    ledger.path.write_text("\n".join(lines) + "\n")
    assert ledger.verify(require_signed=True).ok


def test_signatures_are_checked_in_parallel_parts_too(signed, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestra.core.ledger import scan

    ledger, _ = signed
    mallory = make_key(tmp_path / "mallory", "mallory")
    for n in range(3, 12):
        ledger.append(reject_fields(f"r{n}", decision=decision_id(n)))
    entries = ledger.entries()
    entries[9]["reason"] = "forged"
    rewrite(ledger, forge(entries, 9, mallory), anchor=True)
    whole = ledger.verify()
    monkeypatch.setattr(scan, "PARALLEL_MIN_BYTES", 256)
    monkeypatch.setattr(scan, "_cores", lambda: 4)
    parted = ledger.verify()
    assert parted == whole and parted.signed == 12
    assert_fails(parted, "line 10: key SHA256:", "is not an allowed signer")


def test_a_missing_allowed_signers_file(signed, repo: Path, tmp_path: Path) -> None:
    ledger, _ = signed
    (tmp_path / "keys" / "allowed_signers").unlink()
    assert_fails(ledger.verify(), "3 entries are signed but their signatures cannot be checked",
                 "allowed_signers (gpg.ssh.allowedSignersFile) cannot be used")


def test_an_unusable_allowed_signers_file_is_only_a_note_for_unsigned_entries(repo: Path, tmp_path: Path) -> None:
    git(repo, "config", "--global", "gpg.ssh.allowedSignersFile", str(tmp_path / "nowhere"))
    ledger = ledger_of(repo)
    ledger.append(reject_fields("r1"))
    result = ledger.verify()
    assert result.ok and any("cannot be used" in note for note in result.notes)
