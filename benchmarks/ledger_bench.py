"""Benchmark: `Ledger.verify()` on a 100,000-entry ledger, unsigned and signed, in a real repository.

Run with the project's venv python:

    .venv/bin/python benchmarks/ledger_bench.py [--entries N] [--runs K] [--keep DIR]

It builds, in a temporary directory (or DIR, kept for timing the whole command afterwards, e.g.
`/usr/bin/time -v .venv/bin/orchestra -C DIR/unsigned ledger verify`), two repositories with the
same ledger: entries the size of the fleet's (decision id, run, agent, actor, spec and its hash,
task, target, base, merge base, candidate, tree, diff hash, changed files, 2-3 gates with their
evidence, time; ~1.4 KB each, 1.8 KB signed), a fifth of them accepts whose merge commits really exist (made with
`git fast-import`, each with the fleet's trailers), the rest rejects and redirects; the ledger is
anchored at refs/orchestra/ledger. In the second repository every entry is signed: signing 100k
entries with ssh-keygen would take minutes, so the benchmark makes the SSHSIG signatures itself with
`cryptography` (Ed25519), exactly as `ssh-keygen -Y sign -n orchestra-ledger` would, and allows the
key in an allowed signers file set in the (isolated) global git config.

It prints the median, min and max of K runs of verify() (each must pass), unsigned and signed, with
and without the parallel scan. Target: unsigned <= 1 s. It does not fail on a missed target.

Figures on the development container (2 cores shared with other work; Python 3.11), 2026-12-02, after
verify read only the chain fields of each line (msgspec) and walked only the branches' first-parent
merges (medians of 5; min-max):

    verify()                                        median (min-max)
    unsigned (anchor + git cross-check)              795 ms (684-863)     target <= 1 s
    unsigned, one process                            807 ms
    unsigned, chain and head only (bare Ledger)      470 ms
      the git history walk alone                     335 ms
    signed (Ed25519, checked in-process)            8000 ms
    signed, one process                            15396 ms

The whole command, `orchestra -C DIR/unsigned ledger verify` (7 runs after a warm-up, paired with the
code before this work on the same ledger): 0.83 s wall median (0.78-1.06), 68 MiB peak; the code before:
2.55 s, 306 MiB (ratio 0.33). Signed, with --require-signed: 9.2 s wall median (8.4-10.1), 70 MiB. A
signature costs ~80-125 us in OpenSSL's Ed25519 here, so the signed figure is bound by the cryptography.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchkit import git, isolate  # noqa: E402

NAMESPACE = b"orchestra-ledger"
ACCEPT_SHARE = 5  # one entry in five is an accept with a real merge commit
GENESIS = "0" * 64


def hexid(*parts: object, size: int = 40) -> str:
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:size]


# --- the repository: merge commits with the fleet's trailers ------------------------------------------


def merge_message(n: int) -> str:
    return (f"Accept orchestra run r{n}: fix-parser by coder\n\nFix the tokenizer so quoted strings with escaped "
            f"quotes are one token.\n\nOrchestra-Run: r{n}\nOrchestra-Spec: fix-parser\nOrchestra-Agent: coder\n"
            f"Orchestra-Decision: {hexid('decision', n, size=32)}\nAccepted-By: Bench Conductor <bench@example.test>\n")


def fast_import_stream(accepts: list[int]) -> bytes:
    """A fast-import stream: an initial commit, then per accept a branch commit and its merge into main."""
    out: list[bytes] = []

    def data(text: str) -> None:
        raw = text.encode()
        out.append(b"data %d\n%s\n" % (len(raw), raw))

    def commit(ref: str, mark: int, message: str, parents: list[int], content: str) -> None:
        out.append(f"commit {ref}\nmark :{mark}\ncommitter Bench <bench@example.test> {1700000000 + mark} +0000\n"
                   .encode())
        data(message)
        for index, parent in enumerate(parents):
            out.append(f"{'from' if index == 0 else 'merge'} :{parent}\n".encode())
        out.append(b"M 100644 inline work.txt\n")
        data(content)

    commit("refs/heads/main", 1, "initial", [], "start\n")
    main = 1
    for n in accepts:
        branch, merge = 2 * n + 2, 2 * n + 3
        commit("refs/heads/bench-run", branch, f"work of r{n}", [main], f"r{n}\n")
        commit("refs/heads/main", merge, merge_message(n), [main, branch], f"r{n}\n")
        main = merge
    return b"".join(out)


def make_repository(root: Path, accepts: list[int]) -> dict[int, str]:
    """A repository whose main holds one merge commit per accept; entry number -> merge commit id."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    marks = root / ".git" / "bench-marks"
    subprocess.run(["git", "fast-import", "--quiet", f"--export-marks={marks}"], cwd=root,
                   input=fast_import_stream(accepts), check=True)
    git(root, "update-ref", "-d", "refs/heads/bench-run")
    by_mark = dict(line.split() for line in marks.read_text().splitlines())
    marks.unlink()
    return {n: by_mark[f":{2 * n + 3}"] for n in accepts}


# --- the ledger ----------------------------------------------------------------------------------------


def entry_fields(n: int, merges: dict[int, str]) -> dict:
    """A decision as the fleet records it (about 1 KB)."""
    tree = hexid("tree", n)
    action = "accept" if n in merges else ("redirect" if n % 7 == 0 else "reject")
    fields = {
        "action": action, "decision": hexid("decision", n, size=32), "run": f"r{n}", "agent": "coder",
        "actor": "Bench Conductor <bench@example.test>", "spec": "fix-parser", "spec_hash": hexid("spec", size=64),
        "task": "Fix the tokenizer so quoted strings with escaped quotes are one token; add tests for the edges.",
        "target": "main", "base": hexid("base", n), "merge_base": hexid("base", n), "candidate": hexid("cand", n),
        "tree": tree, "diff_sha256": hexid("diff", n, size=64),
        "files": ["src/parser/tokenizer.py", "tests/test_tokenizer.py", "docs/parser.md"][: 1 + n % 3],
        "gates": [{"name": name, "kind": kind, "status": "passed", "tree": tree, "summary": summary,
                   "passed": passed, "failed": 0 if passed is not None else None, "stale": False}
                  for name, kind, summary, passed in (("tests", "command", "42 passed in 1.31s", 42),
                                                      ("boundary", "boundary", "3 files within bounds", None),
                                                      ("lint", "command", "ruff: no problems", None))[: 2 + n % 2]],
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1700000000 + n * 60)), "anchored": True,
    }
    if action == "accept":
        fields["merge_commit"] = merges[n]
    elif action == "redirect":
        fields["instruction"] = "Keep the public API as it is; only the tokenizer may change."
    else:
        fields["reason"] = "The change touches the public API; the spec says it must stay stable."
    return fields


class Signer:
    """Makes SSHSIG signatures as `ssh-keygen -Y sign -n orchestra-ledger` does, with an Ed25519 key."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        self.key = Ed25519PrivateKey.generate()
        raw = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.blob = _string(b"ssh-ed25519") + _string(raw)
        digest = base64.b64encode(hashlib.sha256(self.blob).digest()).decode().rstrip("=")
        self.field = {"principal": "bench@example.test", "key": f"SHA256:{digest}"}

    def allowed_line(self) -> str:
        return f"bench@example.test ssh-ed25519 {base64.b64encode(self.blob).decode()}\n"

    def sign(self, message: bytes) -> str:
        signed = (b"SSHSIG" + _string(NAMESPACE) + _string(b"") + _string(b"sha512")
                  + _string(hashlib.sha512(message).digest()))
        signature = _string(b"ssh-ed25519") + _string(self.key.sign(signed))
        blob = (b"SSHSIG" + struct.pack(">I", 1) + _string(self.blob) + _string(NAMESPACE) + _string(b"")
                + _string(b"sha512") + _string(signature))
        return base64.b64encode(blob).decode()


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def write_ledger(root: Path, count: int, merges: dict[int, str], signer: Signer | None) -> Path:
    """Write the ledger, its head and its anchor for root; the ledger's path."""
    from orchestra.core.base.canonical import canonical_json
    from orchestra.core.git.repo import open_repository
    from orchestra.core.ledger import open_ledger
    from orchestra.core.ledger.lines import entry_hash
    from orchestra.core.ledger.sidefiles import Tip

    ledger = open_ledger(open_repository(root))
    ledger.path.parent.mkdir(parents=True, exist_ok=True)
    prev = GENESIS
    with ledger.path.open("w", encoding="utf-8") as handle:
        for n in range(count):
            entry = entry_fields(n, merges)
            if signer:
                entry["signer"] = signer.field
            entry.update(seq=n, prev=prev)
            entry["hash"] = prev = entry_hash(entry)
            if signer:
                entry["sig"] = signer.sign(prev.encode())
            handle.write(canonical_json(entry) + "\n")
    ledger.side.write_head(Tip(count, prev))
    ledger.anchor.advance(None, Tip(count, prev))
    return ledger.path


# --- timing --------------------------------------------------------------------------------------------


def time_verify(root: Path, runs: int, parallel: bool, plain: bool = False) -> list[float]:
    """Seconds per verify() of root's ledger (plain: a bare Ledger, no anchor and no git cross-check)."""
    from orchestra.core.git.repo import open_repository
    from orchestra.core.ledger import Ledger, open_ledger, scan

    scan.PARALLEL_MIN_BYTES = 8 * 1024 * 1024 if parallel else 1 << 62
    ledger = open_ledger(open_repository(root))
    if plain:
        ledger = Ledger(ledger.path, signing=ledger.signing_config)
    return timed(ledger.verify, runs, check=lambda result: result.ok)


def time_walk(root: Path, runs: int) -> list[float]:
    """Seconds per history walk (the one `git log` of the cross-check), alone."""
    from orchestra.core.git.repo import open_repository
    from orchestra.core.ledger import open_ledger

    history = open_ledger(open_repository(root)).history
    assert history is not None
    return timed(history.walk, runs, check=lambda found: len(found) > 0)


def timed(work, runs: int, check) -> list[float]:
    work()  # warm the page cache and git's
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
        if not check(result):
            raise SystemExit(f"the benchmark's ledger failed: {getattr(result, 'problems', result)}")
    return times


def row(label: str, times: list[float], target: str = "") -> str:
    med, low, high = statistics.median(times), min(times), max(times)
    return f"{label:<44} {med * 1000:7.0f} ms {low * 1000:7.0f} ms {high * 1000:7.0f} ms   {target}"


def build(base: Path, entries: int) -> dict[str, Path]:
    """The unsigned and the signed repository under base (the signing key allowed in the global config)."""
    accepts = [n for n in range(entries) if n % ACCEPT_SHARE == 1]
    signer = Signer()
    allowed = base / "allowed_signers"
    allowed.write_text(signer.allowed_line())
    git(base, "config", "--global", "gpg.ssh.allowedSignersFile", str(allowed))
    start, roots, sizes = time.perf_counter(), {}, []
    for name, key in (("unsigned", None), ("signed", signer)):
        roots[name] = base / name
        merges = make_repository(roots[name], accepts)
        sizes.append(write_ledger(roots[name], entries, merges, key).stat().st_size / 1e6)
    print(f"{entries} entries ({len(accepts)} accepts with merge commits, {2 * len(accepts) + 1} commits); "
          f"ledger {sizes[0]:.0f} MB unsigned, {sizes[1]:.0f} MB signed; built in {time.perf_counter() - start:.0f} s")
    return roots


def report(roots: dict[str, Path], runs: int) -> None:
    print(f"{runs} runs each, on {os.cpu_count()} cores\n")
    print(f"{'verify()':<44} {'median':>10} {'min':>10} {'max':>10}   target")
    print(row("unsigned", time_verify(roots["unsigned"], runs, True), "<= 1 s"))
    print(row("unsigned, one process", time_verify(roots["unsigned"], runs, False)))
    print(row("unsigned, chain and head only (bare Ledger)", time_verify(roots["unsigned"], runs, True, True)))
    print(row("  the git history walk alone", time_walk(roots["unsigned"], runs)))
    print(row("signed (Ed25519, checked in-process)", time_verify(roots["signed"], runs, True)))
    print(row("signed, one process", time_verify(roots["signed"], runs, False)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="build in this directory and leave it")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="ledger-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    isolate(base)
    try:
        report(build(base, args.entries), args.runs)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
