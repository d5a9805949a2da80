"""Parts that integrate: a spec's parts run in parallel, and once every part is in review their candidates are
merged onto the target as one **integration candidate**, which the spec's own verify checks.

The integration candidate is a run of its own (agent "integration"): its branch holds the merge (git.integration,
built with plumbing, no worktree), its worktree is a fresh one that its supervisor checks out and sets up like any
run's (the "integrate" mode), and it then sits in review with the spec's gates, shown and decided like any run.
Its record is held to the spec as the score has it (its `spec_config` is the spec itself, so the ledger's
spec_hash names the spec), and lists the part runs, each with the candidate and tree that went in.

Parts that conflict build nothing: the refusal names the parts and the files. Building again (after a part was
redirected, say) replaces the group's open integration: it is rejected with "replaced by integration rN", its
branch kept. Accepting it (fleet.integration_accept) is one decision that lists its parts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestra.core.base.errors import BadUsage, OrchestraError
from orchestra.core.fleet.compare import members
from orchestra.core.runs.lifecycle import create
from orchestra.core.runs.run import Run, group_of
from orchestra.core.score import Agent, Score, Spec
from orchestra.core.score.model import Part

if TYPE_CHECKING:
    from orchestra.core.fleet.fleet import Fleet
    from orchestra.core.git.integration import PartsMerge

AGENT = "integration"
AGENT_CONFIG = {"name": AGENT, "kind": AGENT, "role": None, "env": [], "network": None, "session": "oneshot"}
REPLACED_REASON = "replaced by integration {run}"


class PartsNotInReview(OrchestraError):
    """Some part has no run in review: nothing was built. waiting holds {"part", "run", "state"} for each."""

    def __init__(self, spec: str, group: str, waiting: list[dict[str, Any]]) -> None:
        lines = "\n".join(f"  part {w['part']} ({w['run']}): {w['state']}" if w["run"] else
                          f"  part {w['part']} has no run in group {group}" for w in waiting)
        super().__init__(f"Not every part of spec {spec} is in review, so no integration was built:\n{lines}\n"
                         "Integrate again once they are (a failed or stopped part can be redirected).")
        self.spec, self.group, self.waiting = spec, group, waiting

    def to_json(self) -> dict[str, Any]:
        return {"spec": self.spec, "group": self.group, "built": None, "waiting": self.waiting}


class PartsConflict(OrchestraError):
    """The parts' changes conflict: nothing was built. conflicts holds {"parts", "target", "paths"} for each."""

    def __init__(self, spec: str, group: str, conflicts: list[dict[str, Any]]) -> None:
        lines = "\n".join(f"  {conflict_line(c)}" for c in conflicts)
        super().__init__(f"The parts of spec {spec} conflict, so no integration was built:\n{lines}\n"
                         "Redirect a part to keep off the other's files (or to build on them), then integrate again.")
        self.spec, self.group, self.conflicts = spec, group, conflicts

    def to_json(self) -> dict[str, Any]:
        return {"spec": self.spec, "group": self.group, "built": None, "conflicts": self.conflicts}


def conflict_line(conflict: dict[str, Any]) -> str:
    """"parts api and ui both change src/app.py", or "part ui and the target (main) both change …"."""
    names = list(conflict["parts"])
    who = (f"part {names[0]} and the target ({conflict['target']})" if conflict["target"] else
           f"parts {', '.join(names[:-1])} and {names[-1]}")
    both = "both" if len(names) + bool(conflict["target"]) == 2 else "all"
    return f"{who} {both} change {', '.join(conflict['paths'])}"


@dataclass(frozen=True)
class PartRun:
    """One part of the spec and the run that does it."""

    part: Part
    run: Run

    def to_json(self) -> dict[str, Any]:
        """What the integration records of the part: which run, which exact candidate and tree went in."""
        return {"part": self.part.id, "run": self.run.id, "agent": self.run.agent, "candidate": self.run.candidate,
                "tree": self.run.tree}


def integrate(fleet: Fleet, name: str, actor: str | None = None, trust: bool = False) -> Run:
    """Build (or build again) the integration candidate of the parts of a spec (its latest group) or of a group
    (or any of its runs), and start its supervisor; PartsNotInReview or PartsConflict when it cannot be built.
    An open integration of the same candidates on the target as it is now is returned as it is (built when the
    last part entered review, say). One build at a time."""
    from orchestra.core.base.files import file_lock
    with file_lock(fleet.repo.state_dir / "integrate.lock"):
        return _integrate(fleet, name, actor, trust)


def _integrate(fleet: Fleet, name: str, actor: str | None = None, trust: bool = False) -> Run:
    from orchestra.core.fleet.integration_accept import close_parts
    spec, group, runs = group_of_parts(fleet, name)
    merged = next((run for run in runs if run.integration is not None and run.state == "accepted"), None)
    if merged is not None:
        close_parts(fleet, merged)  # a crash after the accept may have left them open
        raise OrchestraError(f"The parts of group {group} were merged already, by integration {merged.id}.")
    parts = parts_in_review(spec, group, runs)
    current = up_to_date(fleet, runs, parts)
    if current is not None:
        return current
    return _build(fleet, spec, group, runs, parts, actor, trust)


def _build(fleet: Fleet, spec: Spec, group: str, runs: list[Run], parts: list[PartRun], actor: str | None,
           trust: bool) -> Run:
    """Record the integration of parts (the open ones of the group it replaces rejected after) and start it."""
    from orchestra.core.fleet.trust import require_trust, setup_commands
    from orchestra.core.git.actor import current_actor
    require_trust(fleet.repo.root, setup_commands(fleet.score, spec), trust)
    actor = actor or current_actor(fleet.repo.root)
    replaced = [run.id for run in runs if run.integration is not None and run.state not in ("accepted", "rejected")]
    built = record_integration(fleet, spec, group, parts, actor, replaced)
    for old in replaced:  # after the new one is recorded: a conflict or a crash before leaves the old one open
        fleet.decisions.reject(old, actor, REPLACED_REASON.format(run=built.id))
    return fleet.start(built.id, mode="integrate")


def integrate_when_ready(fleet: Fleet, name: str) -> tuple[Run | None, str]:
    """Build the integration if every part is in review and no open one holds these parts' candidates on the
    target as it is (what a part's supervisor asks when its run enters review); (the run built, or None, and
    what happened in words). One at a time: two parts entering review together build it once."""
    from orchestra.core.base.files import file_lock
    with file_lock(fleet.repo.state_dir / "integrate.lock"):
        spec, group, runs = group_of_parts(fleet, name)
        if any(run.integration is not None and run.state == "accepted" for run in runs):
            return None, f"the parts of group {group} were merged already"
        try:
            parts = parts_in_review(spec, group, runs)
        except PartsNotInReview as waiting:
            return None, str(waiting)
        current = up_to_date(fleet, runs, parts)
        if current is not None:
            return None, f"integration {current.id} holds these parts' candidates already"
        try:
            return _build(fleet, spec, group, runs, parts, None, False), "built"
        except OrchestraError as refused:  # conflicts, setup not allowed: said on each part, where the conductor looks
            text = f"not integrated: {refused}"
            for part in parts:  # once: every part that enters review asks again
                said = [e for e in fleet.store.read_events_tail(part.run.id, 16384)[0] if e.get("type") == "note"]
                if not said or said[-1].get("text") != text:
                    fleet.store.append_events(part.run.id, [{"type": "note", "text": text}])
            raise


def up_to_date(fleet: Fleet, runs: list[Run], parts: list[PartRun]) -> Run | None:
    """The group's open integration of exactly these candidates on the target's current commit, if any."""
    wanted = [(p.part.id, p.run.candidate) for p in parts]
    base = fleet.repo.resolve(fleet.target_branch())
    for run in runs:
        if run.integration is None or run.state in ("accepted", "rejected") or run.base != base:
            continue
        if [(p.get("part"), p.get("candidate")) for p in run.integration.get("parts") or []] == wanted:
            return run
    return None


def group_of_parts(fleet: Fleet, name: str) -> tuple[Spec, str, list[Run]]:
    """The spec with parts and the group of its part runs that name means: a spec's id (its latest group), or
    a group or one of its runs."""
    runs = fleet.runs()
    spec_ids = {spec.id for spec in (fleet.score.specs if fleet.score else ()) if spec.parts}
    if name in spec_ids:
        latest = max((run for run in runs if (run.part_of or {}).get("spec") == name), key=lambda run: run.created,
                     default=None)
        if latest is None:
            raise OrchestraError(f"Spec {name} has no part runs yet: `orchestra spawn {name}` starts one per part.")
        name = group_of(latest)
    group, found = members(runs, name)
    spec_id = next((run.part_of["spec"] for run in found if run.part_of), None)
    if spec_id is None:
        raise OrchestraError(f"Group {group} holds no parts of a spec: only a spec with [[specs.parts]] integrates.")
    return spec_with_parts(fleet, spec_id), group, found


def spec_with_parts(fleet: Fleet, spec_id: str) -> Spec:
    """The spec as the score has it now; refused when it is gone or has no parts any more."""
    try:
        spec = fleet.score.spec(spec_id) if fleet.score else None
    except KeyError:
        spec = None
    if spec is None or not spec.parts:
        raise OrchestraError(f"Spec {spec_id} is no longer in the score with parts: there is nothing to verify the "
                             "integration against.")
    return spec


def parts_in_review(spec: Spec, group: str, runs: list[Run]) -> list[PartRun]:
    """Each part's latest run that is not rejected; PartsNotInReview naming every part that is not in review."""
    found, waiting = [], []
    for part in spec.parts:
        candidates = [run for run in runs if (run.part_of or {}).get("part") == part.id and run.state != "rejected"]
        run = max(candidates, key=lambda run: run.created, default=None)
        if run is None or run.state != "review":
            waiting.append({"part": part.id, "run": run.id if run else None, "state": run.state if run else None})
        else:
            found.append(PartRun(part, run))
    if waiting:
        raise PartsNotInReview(spec.id, group, waiting)
    return found


def record_integration(fleet: Fleet, spec: Spec, group: str, parts: list[PartRun], actor: str,
                       replaced: list[str]) -> Run:
    """Merge the parts onto the target, write the candidate's commit, branch and worktree (not checked out: its
    supervisor does that), and record the run, queued."""
    from orchestra.core.git import worktrees
    from orchestra.core.git.actor import actor_identity
    from orchestra.core.git.diffs import candidate_fields, tree_of
    from orchestra.core.git.integration import merge_parts, octopus_commit
    target = fleet.target_branch()
    base = fleet.repo.resolve(target)
    identity = actor_identity(actor)
    commits = [p.run.candidate or fleet.branch_tip(p.run) for p in parts]
    merged = merge_parts(fleet.repo, base, [(p.part.id, commit) for p, commit in zip(parts, commits)], identity)
    if merged.tree is None:
        raise PartsConflict(spec.id, group, named_conflicts(parts, merged, target))
    if merged.tree == tree_of(fleet.repo.root, base):
        raise OrchestraError(f"Nothing to integrate: {target} holds every change of the parts of {spec.id} already.")
    commit = octopus_commit(fleet.repo, merged.tree, [base, *commits], integration_message(spec, parts, target),
                            identity)
    run_id, branch = _allocate(fleet, spec)
    path = fleet.repo.worktrees_dir / run_id
    tree = worktrees.create_worktree(fleet.repo, path, branch, commit)
    run = Run(id=run_id, agent=AGENT, spec=spec.id, task=integration_task(spec, parts, target), branch=branch,
              worktree=str(path), base=base, target=target, agent_config=dict(AGENT_CONFIG),
              spec_config=spec.to_dict(), gitdir=str(tree.gitdir), sandbox_config=fleet.sandbox_settings(),
              setup=list(_setup(fleet, spec)), port=_port(fleet, run_id), group=group, started_by=actor,
              integration={"parts": [p.to_json() for p in parts], "replaces": replaced},
              **candidate_fields(fleet.repo.root, commit, f"refs/heads/{target}", base))  # type: ignore[arg-type]
    return create(fleet.store, run)


def _allocate(fleet: Fleet, spec: Spec) -> tuple[str, str]:
    """A new run id and its branch (orchestra/<spec>/<run>/integration), neither taken."""
    branch_of = lambda run_id: f"orchestra/{spec.id}/{run_id}/{AGENT}"  # noqa: E731
    run_id = fleet.new_run_id(branch_of)
    return run_id, branch_of(run_id)


def _setup(fleet: Fleet, spec: Spec) -> tuple[str, ...]:
    from orchestra.core.fleet.trust import setup_commands
    return setup_commands(fleet.score, spec)


def _port(fleet: Fleet, run_id: str) -> int | None:
    from orchestra.core.supervise.ports import allocate_block
    return allocate_block(fleet.repo.state_dir, run_id, None)


def integration_task(spec: Spec, parts: list[PartRun], target: str) -> str:
    """What the integration run is, in words (its task)."""
    listed = ", ".join(f"{p.part.id} ({p.run.id})" for p in parts)
    return f"Integration of spec {spec.id}: its parts {listed} merged onto {target}. {spec.intent}"


def integration_message(spec: Spec, parts: list[PartRun], target: str) -> str:
    """The integration commit's message; its trailers name the spec and each part's run and candidate."""
    trailers = "".join(f"Orchestra-Part: {p.part.id} {p.run.id} {p.run.candidate}\n" for p in parts)
    return (f"Integrate the parts of {spec.id} onto {target}\n\n{spec.intent}\n\n"
            f"Orchestra-Spec: {spec.id}\n{trailers}")


def named_conflicts(parts: list[PartRun], merged: PartsMerge, target: str) -> list[dict[str, Any]]:
    """Which parts (or the target) change each conflicting path, grouped: [{"parts", "target", "paths"}]."""
    changed = {p.part.id: set(p.run.changed_paths) for p in parts}
    by_who: dict[tuple[str, ...], list[str]] = {}
    for label, paths in merged.conflicts.items():
        for path in paths:
            who = tuple(sorted({label, *(other for other, seen in changed.items() if path in seen)},
                               key=list(changed).index))
            if path not in by_who.setdefault(who, []):
                by_who[who].append(path)
    return [{"parts": list(who), "target": target if len(who) == 1 else None, "paths": sorted(paths)}
            for who, paths in by_who.items()]


def part_plan(score: Score | None, spec: Spec, agent_names: list[str] | None,
              count: int | None) -> list[tuple[Agent, Spec]]:
    """What spawning a spec with parts starts: one run per part, held to the part as a spec (Spec.part_spec), its
    agent the one --agent names, else the part's first (or the spec's first)."""
    if count is not None:
        raise BadUsage(f"Spec {spec.id} has parts: it starts one run per part, so --n does not apply. "
                       "Nothing was started.")
    if agent_names and len(agent_names) > 1:
        raise BadUsage(f"Spec {spec.id} has parts: it starts one run per part; name at most one --agent (it then "
                       "does every part). Nothing was started.")
    assert score is not None
    plan = []
    for part in spec.parts:
        held_to = spec.part_spec(part.id)
        agents = [score.agent(agent_names[0])] if agent_names else list(score.agents_for(held_to))
        if not agents:
            raise OrchestraError(f"Part {part.id} of spec {spec.id} has no agent to run. Nothing was started.")
        plan.append((agents[0], held_to))
    return plan
