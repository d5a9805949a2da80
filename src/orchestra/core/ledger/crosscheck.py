"""The ledger against git's history: accepts and merge commits must name each other.

Every accept entry's ``merge_commit`` must exist and carry ``Orchestra-Decision: <decision>``
(entries from before decisions had ids: ``Orchestra-Run: <run>``). Every merge commit on a branch's
first-parent history (where an accept puts it; run branches, which agents write, are left out) that
carries ``Orchestra-Decision``, or both ``Orchestra-Run`` and ``Accepted-By``, must have an accept
entry. So an accept cannot be removed, invented or turned into a reject without
git's history disagreeing, even when the chain, the head and the anchor were all recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestra.core.base.errors import GitError
from orchestra.core.git.objects import CommitReader, Trailers, commits_with_trailers, is_object_id

DECISION = "Orchestra-Decision"
RUN = "Orchestra-Run"
ACCEPTED_BY = "Accepted-By"


@dataclass(frozen=True)
class Accept:
    """What the cross-check needs of one accept entry (line is 1-based)."""

    line: int
    merge_commit: object
    decision: object
    run: object


def is_decision_commit(trailers: Trailers) -> bool:
    """Whether a commit's trailers say orchestra merged it on someone's accept."""
    return DECISION in trailers or (RUN in trailers and ACCEPTED_BY in trailers)


class GitHistory:
    """The repository at root whose merge commits the ledger's accepts are checked against."""

    def __init__(self, root: Path, git_dir: Path) -> None:
        self.root, self.git_dir = root, git_dir

    def walk(self) -> dict[str, Trailers]:
        """Every decision commit on the branches' first-parent history, with its trailers (one `git log`)."""
        found = commits_with_trailers(self.root, (DECISION, RUN), (DECISION, RUN, ACCEPTED_BY))
        return {sha: trailers for sha, trailers in found.items() if is_decision_commit(trailers)}

    def problems(self, accepts: list[Accept], walked: dict[str, Trailers]) -> list[str]:
        """Every disagreement between the accept entries and the decision commits."""
        problems, recorded = [], {}
        with _LazyReader(self.git_dir) as reader:
            for accept in accepts:
                problem = _accept_problem(accept, walked, reader, recorded)
                if problem:
                    problems.append(problem)
                if isinstance(accept.merge_commit, str):
                    recorded.setdefault(accept.merge_commit, accept.line)
        for sha, trailers in walked.items():
            if sha not in recorded:
                problems.append(_unrecorded(sha, trailers))
        return problems


class _LazyReader:
    """A CommitReader started on the first lookup only (most ledgers need none)."""

    def __init__(self, git_dir: Path) -> None:
        self.git_dir, self._reader = git_dir, None

    def trailers(self, sha: str) -> Trailers | None:
        if self._reader is None:
            self._reader = CommitReader(self.git_dir)
        return self._reader.trailers(sha, (DECISION, RUN, ACCEPTED_BY))

    def __enter__(self) -> _LazyReader:
        return self

    def __exit__(self, *_: object) -> None:
        if self._reader is not None:
            self._reader.close()


def _accept_problem(accept: Accept, walked: dict[str, Trailers], reader: _LazyReader,
                    recorded: dict[str, int]) -> str | None:
    """Why an accept entry disagrees with git, or None."""
    sha, where = accept.merge_commit, f"line {accept.line}"
    if not is_object_id(sha):
        return f"{where}: accept entry has no merge_commit that is a full commit id ({sha!r})"
    assert isinstance(sha, str)
    if sha in recorded:
        return f"{where}: merge commit {sha} is already recorded by line {recorded[sha]}"
    trailers = walked.get(sha)
    if trailers is None:
        try:
            trailers = reader.trailers(sha)
        except (GitError, OSError, ValueError) as error:
            return f"{where}: merge commit {sha} could not be read ({error})"
    if trailers is None:
        return f"{where}: merge commit {sha} does not exist in the repository"
    key, value = (DECISION, accept.decision) if accept.decision is not None else (RUN, accept.run)
    if value not in trailers.get(key, []):
        return f"{where}: merge commit {sha} does not carry the trailer {key}: {value}"
    return None


def _unrecorded(sha: str, trailers: Trailers) -> str:
    if DECISION in trailers:
        return (f"merge commit {sha} names decision {trailers[DECISION][0]} "
                "but the ledger has no accept entry for it")
    return (f"merge commit {sha} names run {trailers[RUN][0]} (Accepted-By: {trailers[ACCEPTED_BY][0]}) "
            "but the ledger has no accept entry for it")
