"""The ledger's anchor in git: a ref to a chain of commits recording the ledger's count and last hash.

Every append moves ``refs/orchestra/ledger`` to a new commit (empty tree; parent: the previous
anchor) whose message ends with the trailers ``Ledger-Count: N`` and ``Ledger-Hash: H``. The ref
lives in the repository, apart from the ledger's own files: deleting or rewriting the ledger
together with its head file no longer goes unnoticed, and the ref can be pushed to a remote as an
outside witness.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestra.core.base.errors import GitError
from orchestra.core.git.objects import parse_trailers
from orchestra.core.git.runner import git
from orchestra.core.ledger.lines import LedgerError
from orchestra.core.ledger.sidefiles import Tip
from orchestra.core.base.words import plural

ANCHOR_REF = "refs/orchestra/ledger"
_HOOKLESS = ("-c", "core.hooksPath=/dev/null")
_IDENTITY = {"GIT_AUTHOR_NAME": "orchestra ledger", "GIT_AUTHOR_EMAIL": "ledger@orchestra.invalid",
             "GIT_COMMITTER_NAME": "orchestra ledger", "GIT_COMMITTER_EMAIL": "ledger@orchestra.invalid"}


@dataclass(frozen=True)
class AnchorState:
    """The anchor commit the ref points at, and the ledger tip it records."""

    commit: str
    tip: Tip


def anchor_message(tip: Tip) -> str:
    """The anchor commit's message for a ledger ending at tip."""
    return (f"orchestra ledger: {plural(tip.count, 'entry')}\n\n"
            f"Ledger-Count: {tip.count}\nLedger-Hash: {tip.hash}\n")


class GitAnchor:
    """Reads and moves the anchor ref of the repository at root (callers hold the ledger's lock)."""

    def __init__(self, root: Path, ref: str = ANCHOR_REF) -> None:
        self.root = root
        self.ref = ref
        self._empty_tree: str | None = None

    def read(self) -> AnchorState | None:
        """The anchor, None when the ref does not exist; LedgerError when it is not an anchor."""
        out = self._git("for-each-ref", "--format=%(refname)%00%(objectname)%00%(objecttype)%00"
                        "%(trailers:only,unfold)%1e", self.ref)
        for record in out.split("\x1e"):
            fields = record.strip("\n").split("\0")
            if len(fields) == 4 and fields[0] == self.ref:
                return self._state(*fields[1:])
        return None

    def _state(self, commit: str, kind: str, trailers_text: str) -> AnchorState:
        trailers = parse_trailers(trailers_text)
        counts, hashes = trailers.get("Ledger-Count", []), trailers.get("Ledger-Hash", [])
        if kind != "commit" or len(counts) != 1 or len(hashes) != 1 or not counts[0].isdigit():
            raise LedgerError(f"{self.ref} does not point at a ledger anchor commit "
                              "(Ledger-Count and Ledger-Hash trailers)")
        return AnchorState(commit=commit, tip=Tip(int(counts[0]), hashes[0]))

    def advance(self, previous: AnchorState | None, tip: Tip) -> AnchorState:
        """Point the ref at a new anchor commit for tip, if it still points at previous (else GitError)."""
        parents = ["-p", previous.commit] if previous else []
        commit = self._git("commit-tree", "--no-gpg-sign", self._tree(), *parents, "-m", anchor_message(tip),
                           env=_IDENTITY)
        self._git("update-ref", "-m", f"orchestra ledger: {plural(tip.count, 'entry')}", self.ref, commit,
                  previous.commit if previous else "")
        return AnchorState(commit=commit, tip=tip)

    def _tree(self) -> str:
        if self._empty_tree is None:
            self._empty_tree = self._git("mktree", input="")
        return self._empty_tree

    def _git(self, *args: str, env: dict[str, str] | None = None, input: str | None = None) -> str:
        try:
            return git(self.root, *_HOOKLESS, *args, env=env, input=input)
        except GitError as error:
            raise LedgerError(f"the ledger's anchor in git ({self.ref}) cannot be read or moved: "
                              f"{error.stderr or error}") from error
