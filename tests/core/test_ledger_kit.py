"""What the ledger tests share: repositories with real merge commits, SSH keys, and a tamperer's tools.

Holds no tests itself. The tamperer knows the format and recomputes everything it can without a
key: the chain, the head file and, when asked, the anchor ref.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import orchestra
from orchestra.core.base.canonical import canonical_json
from orchestra.core.git.repo import Repository, open_repository
from orchestra.core.ledger import Ledger, Verification, open_ledger
from orchestra.core.ledger.anchor import ANCHOR_REF, anchor_message
from orchestra.core.ledger.lines import GENESIS, entry_hash, hashed_body
from orchestra.core.ledger.sidefiles import Tip
from tests.conftest import git

SRC = str(Path(orchestra.__file__).resolve().parent.parent)
ACTOR = "Test Conductor <conductor@example.test>"


def ledger_of(root: Path) -> Ledger:
    return open_ledger(open_repository(root))


def repository(root: Path) -> Repository:
    return open_repository(root)


def merge_commit(root: Path, run: str, decision: str | None = None, accepted_by: str = ACTOR) -> str:
    """Merge a one-file branch into main with a commit carrying the fleet's trailers; its id."""
    base = git(root, "rev-parse", "main")
    (root / f"{run}.txt").write_text(f"work of {run}\n")
    git(root, "checkout", "-q", "-b", f"orchestra/{run}")
    git(root, "add", f"{run}.txt")
    git(root, "commit", "-q", "-m", f"work of {run}")
    git(root, "checkout", "-q", "main")
    trailers = f"Orchestra-Run: {run}\nOrchestra-Spec: fix\nOrchestra-Agent: coder\n"
    if decision:
        trailers += f"Orchestra-Decision: {decision}\n"
    message = f"Accept orchestra run {run}: fix by coder\n\nFix the thing.\n\n{trailers}Accepted-By: {accepted_by}\n"
    tree = git(root, "rev-parse", f"orchestra/{run}^{{tree}}")
    commit = git(root, "commit-tree", tree, "-p", base, "-p", f"orchestra/{run}", "-m", message)
    git(root, "update-ref", "refs/heads/main", commit, base)
    git(root, "reset", "-q", "--hard", "main")
    return commit


def accept_fields(run: str, merge: str, decision: str | None = None, **extra: object) -> dict:
    fields = {"action": "accept", "run": run, "agent": "coder", "actor": ACTOR, "merge_commit": merge, **extra}
    if decision:
        fields["decision"] = decision
    return fields


def reject_fields(run: str, **extra: object) -> dict:
    return {"action": "reject", "run": run, "agent": "coder", "actor": ACTOR, "reason": "not needed", **extra}


def decision_id(n: int) -> str:
    return f"{n:032x}"


def fleet_like_ledger(root: Path) -> Ledger:
    """An anchored ledger of reject r1, accept r2 (merged), reject r3, accept r4 (merged), reject r5."""
    ledger = ledger_of(root)
    for n in range(1, 6):
        run, decision = f"r{n}", decision_id(n)
        if n % 2 == 0:
            ledger.append(accept_fields(run, merge_commit(root, run, decision), decision))
        else:
            ledger.append(reject_fields(run, decision=decision))
    return ledger


# --- the tamperer ---------------------------------------------------------------------------------


def rechain(entries: list[dict]) -> list[dict]:
    """The entries with seq, prev and hash recomputed (signatures kept as they were)."""
    out, prev = [], GENESIS
    for seq, entry in enumerate(entries):
        entry = {**entry, "seq": seq, "prev": prev}
        entry.pop("hash", None)
        entry["hash"] = entry_hash(hashed_body(entry))
        prev = entry["hash"]
        out.append(entry)
    return out


def rewrite(ledger: Ledger, entries: list[dict], anchor: bool = False) -> None:
    """Write entries as the whole ledger, chain and head recomputed; with anchor, move the ref too."""
    entries = rechain(entries)
    ledger.path.write_text("".join(canonical_json(e) + "\n" for e in entries))
    last = entries[-1]["hash"] if entries else GENESIS
    ledger.head_path.write_text(json.dumps({"count": len(entries), "hash": last}))
    if anchor:
        forge_anchor(ledger, len(entries), last)


def forge_anchor(ledger: Ledger, count: int, last: str) -> None:
    """Point the anchor ref at a new commit recording count and last, as `git` lets anyone do."""
    root = ledger.anchor.root if ledger.anchor else ledger.path.parents[2]
    tree = git(root, "hash-object", "-t", "tree", "-w", "/dev/null")
    commit = git(root, "commit-tree", tree, "-m", anchor_message(Tip(count, last)))
    git(root, "update-ref", ANCHOR_REF, commit)


def problems_text(result: Verification) -> str:
    return "\n".join(result.problems)


def assert_fails(result: Verification, *fragments: str) -> None:
    """verify failed with some problem holding every fragment."""
    assert not result.ok, "verify passed"
    assert any(all(f in p for f in fragments) for p in result.problems), result.problems


# --- keys --------------------------------------------------------------------------------------------


def make_key(directory: Path, name: str = "key") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    key = directory / name
    subprocess.run(["ssh-keygen", "-t", "ed25519", "-N", "", "-f", str(key), "-q", "-C", name], check=True)
    return key


def allow(allowed: Path, principal: str, key: Path, options: str = "") -> None:
    """Add principal's public key to an allowed signers file."""
    public = key.with_name(key.name + ".pub").read_text().strip()
    with allowed.open("a") as handle:
        handle.write(f"{principal} {options + ' ' if options else ''}{public}\n")


def configure_signing(root: Path, key: Path | str, allowed: Path | None) -> None:
    git(root, "config", "gpg.format", "ssh")
    git(root, "config", "user.signingkey", str(key))
    if allowed is not None:
        git(root, "config", "--global", "gpg.ssh.allowedSignersFile", str(allowed))


def signing_setup(root: Path, keys: Path) -> Path:
    """A key allowed for the test identity, configured for signing in root; the key's path."""
    key = make_key(keys)
    allowed = keys / "allowed_signers"
    allow(allowed, "conductor@example.test", key)
    configure_signing(root, key, allowed)
    return key


# --- processes ---------------------------------------------------------------------------------------

APPEND = """
import sys
from pathlib import Path
from orchestra.core.git.repo import open_repository
from orchestra.core.ledger import open_ledger
ledger = open_ledger(open_repository(Path(sys.argv[1])))
ledger.append({"action": "reject", "run": sys.argv[2], "actor": "tester", "decision": sys.argv[3]})
"""


def append_in_process(root: Path, run: str, decision: str, fault: str | None = None) -> int:
    """Append one reject in a fresh Python process (killed at fault, when given); its exit status."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))}
    env.pop("ORCHESTRA_FAULT", None)
    if fault:
        env["ORCHESTRA_FAULT"] = fault
    done = subprocess.run([sys.executable, "-c", APPEND, str(root), run, decision], env=env,
                          capture_output=True, text=True, timeout=60)
    assert fault or done.returncode == 0, done.stderr
    return done.returncode
