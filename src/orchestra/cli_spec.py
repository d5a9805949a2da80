"""`orchestra spec`: specs in files of their own (`spec new ID --template KIND` writes specs/ID.toml from a
template; `spec draft "WHAT"` has an llm agent of the score draft one)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

    from orchestra.core.git.repo import Repository
    from orchestra.core.onboarding.draft import DraftedSpec


def cmd_spec(repo: Repository, args: argparse.Namespace) -> int:
    """Write a new spec file, from a template or drafted by an agent, and say where."""
    if args.action == "draft":
        return cmd_spec_draft(repo, args)
    from orchestra.core.score.templates import write_spec
    path = write_spec(repo.score_path, args.spec_id, args.template)
    print(f"Wrote {path}: fill in its intent, boundaries and verify commands, then `orchestra spawn "
          f"{args.spec_id}`.")
    return 0


def cmd_spec_draft(repo: Repository, args: argparse.Namespace) -> int:
    """Have an llm agent draft a spec from the target branch; progress on stderr, the file's path on stdout."""
    from orchestra.core.fleet import Fleet
    from orchestra.core.git.repo import open_repository
    from orchestra.core.onboarding.draft import draft_spec
    from orchestra.core.score import load_score
    repo = open_repository(repo.root)  # a draft reads the target's commits: the repository must have some
    score = load_score(repo.score_path)
    target = Fleet(repo, score).target_branch()
    drafted = draft_spec(repo, score, args.wanted, target, args.agent, progress=_progress)
    if args.json:
        print(json.dumps(drafted.to_json(), indent=2, ensure_ascii=False))
    else:
        print(summary(drafted))
    return 0


def summary(drafted: DraftedSpec) -> str:
    """What was drafted, in a few lines: the file, its intent, boundaries and verify commands, what to do next."""
    draft = drafted.draft
    lines = [f"Wrote {drafted.path} (drafted by {drafted.agent}, {drafted.model}).",
             *([f"  note: {drafted.renamed}"] if drafted.renamed else []),
             f"  intent: {draft.intent.splitlines()[0]}", f"  allow:  {', '.join(draft.allow)}",
             f"  deny:   {', '.join(draft.denied)}",
             *(f"  verify: {check.name}: {check.command}" for check in draft.verify),
             *([] if draft.verify else ["  verify: none found: add your own"]),
             f"Read and edit it, then remove its `draft = true` line: until then `orchestra spawn {drafted.spec_id}` "
             "refuses it."]
    return "\n".join(lines)


def _progress(line: str) -> None:
    print(f"orchestra: {line}", file=sys.stderr, flush=True)
