"""The command line: opens the fleet, or acts headless through the same use-cases as the keys."""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

from orchestra.core.base.errors import BadUsage, OrchestraError
from orchestra.core.base.procs import calm_collector
from orchestra.core.base.signals import interrupts_deferred
from orchestra.cli_compare import cmd_compare
from orchestra.cli_integrate import cmd_integrate
from orchestra.cli_workflow import cmd_plan
from orchestra.cli_ledger import cmd_autonomy, cmd_ledger, cmd_policy, cmd_stats
from orchestra.core.base.words import plural

if TYPE_CHECKING:  # the repository, the fleet and the score load only for the commands that use them
    import argparse

    from orchestra.core.fleet import Fleet
    from orchestra.core.git.repo import Repository
    from orchestra.core.runs.run import Run
    from orchestra.core.score import Score

NO_SCORE = """\
There is no orchestra.toml in {root}.

orchestra needs a score: the agents it may run and the specs they work on.
  orchestra init    write a commented starter orchestra.toml here
  orchestra demo    try orchestra on a demo repository with scripted agents (no API key needed)
"""


def build_parser() -> argparse.ArgumentParser:
    from orchestra.cli_parser import build_parser as grammar
    return grammar()


def main(argv: list[str] | None = None) -> int:
    # Before the imports a command makes (procs.CALM_GC): importing this module loads next to nothing, so
    # no collection runs while the core loads (one did, 3 ms of every command's start).
    calm_collector()
    argv = sys.argv[1:] if argv is None else argv
    # A bare `orchestra` (opening the fleet, the most common command) builds no parser: the first frame
    # comes sooner. The tests check that this is what the parser would have made of no arguments.
    args = no_arguments() if not argv else build_parser().parse_args(argv)
    if args.command is None:
        # Opening the fleet: what loads until its first frame lives as long as the app, so no collection
        # runs until then (they took 10 ms of a 50-run fleet's first paint). The app collects once and
        # resumes them when that frame is on the terminal (OrchestraApp.calm_garbage_collector).
        gc.disable()
    try:
        return dispatch(args)
    except OrchestraError as error:
        heading = f"{error.heading}\n" if error.heading else ""
        print(f"orchestra: {heading}{error}", file=sys.stderr)
        return error.exit_status
    except KeyboardInterrupt:
        return 130


def no_arguments() -> SimpleNamespace:
    """What build_parser() makes of an empty command line: open the fleet in the current directory."""
    return SimpleNamespace(directory=Path("."), command=None)


def dispatch(args: argparse.Namespace | SimpleNamespace) -> int:
    from orchestra.core.git.repo import open_repository
    if args.command == "demo":
        return cmd_demo(args)
    if args.command == "doctor":
        from orchestra.cli_doctor import cmd_doctor
        return cmd_doctor(args.directory, args.all)
    if args.command == "hosts":  # yours, not a repository's
        from orchestra.cli_hosts import cmd_hosts
        return cmd_hosts(args)
    if args.command == "remote":  # on a host, for a relay: no repository of the user's here
        from orchestra.cli_remote import cmd_remote
        return cmd_remote(args)
    if args.command == "init":
        return cmd_init(open_repository(args.directory, require_commits=False))
    if args.command == "spec":
        from orchestra.cli_spec import cmd_spec
        return cmd_spec(open_repository(args.directory, require_commits=False), args)
    repo = open_repository(args.directory)
    if args.command == "ledger":
        return cmd_ledger(repo, args)
    from orchestra.core.fleet import Fleet
    from orchestra.core.score import load_score
    score = load_score(repo.score_path) if repo.score_path.exists() else None
    if args.command is None:
        if score is None:
            print(NO_SCORE.format(root=repo.root))
            return 0
        from orchestra.core.onboarding.demo import is_demo
        return open_ui(repo, score, demo=is_demo(repo.root))
    fleet = Fleet(repo, score)
    return COMMANDS[args.command](fleet, args)


def cmd_init(repo: Repository) -> int:
    """Write the starter score, its target the branch checked out now (left out on a detached HEAD)."""
    from orchestra.core.onboarding.init import starter_score
    if repo.score_path.exists():
        print(f"{repo.score_path} already exists; it was left as it is.")
        return 1
    branch = repo.current_branch()
    repo.score_path.write_text(starter_score(branch), encoding="utf-8")
    target = (f"target branch {branch}" if branch else
              "no branch is checked out, so no target: runs use the branch checked out when they start")
    print(f"Wrote {repo.score_path} ({target}). Edit its agents and specs, then run `orchestra`.")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from orchestra.core.fleet import Fleet
    from orchestra.core.fleet.prune import prune_demos
    from orchestra.core.git.repo import data_home, open_repository
    from orchestra.core.onboarding.demo import create_demo
    from orchestra.core.score import load_score
    cleaned = prune_demos(data_home() / "demos").line()  # older demos whose runs are all decided
    if cleaned:
        print(cleaned)
    path = args.path or next_demo_path()
    root = create_demo(path)
    repo = open_repository(root)
    score = load_score(repo.score_path)
    fleet = Fleet(repo, score)
    spec = score.specs[0]
    runs = fleet.spawn(spec.id)
    print(f"Demo repository: {root}\nIts ledger: {repo.ledger_path} (`orchestra -C {root} ledger show`)\n"
          f"Started {plural(len(runs), 'run')} of spec {spec.id!r}: {', '.join(r.id for r in runs)}")
    if args.no_open:
        print(f"Open the fleet with: orchestra -C {root}")
        return 0
    return open_ui(repo, score, demo=True)


def next_demo_path() -> Path:
    from orchestra.core.git.repo import data_home
    base = data_home() / "demos"
    number = 1
    while (base / f"demo-{number}").exists():
        number += 1
    return base / f"demo-{number}"


def open_ui(repo: Repository, score: Score, demo: bool = False) -> int:
    from orchestra.core.fleet import Fleet
    from orchestra.ui.app import OrchestraApp
    app = OrchestraApp(Fleet(repo, score), demo=demo)
    app.run()
    return app.return_code or 0


def cmd_spawn(fleet: Fleet, args: argparse.Namespace) -> int:
    for run in fleet.spawn(args.spec, args.agents, args.task, trust=args.trust, count=args.count, host=args.host):
        print(run.id)
    return 0


def cmd_dispatch(fleet: Fleet, args: argparse.Namespace) -> int:
    from orchestra.core.fleet.placement import dispatch
    for run in dispatch(fleet):
        print(f"{run.id} {run.host or 'local'}")
    return 0


def cmd_runs(fleet: Fleet, args: argparse.Namespace) -> int:
    runs = fleet.runs()
    if args.json:
        from orchestra.core.policy import evidence, readiness
        print(json.dumps([{**run.summary_json(), "ready": readiness(run).ready,
                           "evidence": [vars(item) for item in evidence(run)]} for run in runs], indent=2))
        return 0
    if not runs:
        print("No runs yet. Start some with `orchestra spawn SPEC` or `n` in the fleet.")
    for run in runs:
        gates = " ".join(f"{g.name}:{'stale' if g.is_stale(run.tree) else g.status}" for g in run.gates.values())
        spec = f"{run.spec}/{run.part_of['part']}" if run.part_of else run.spec or "task"  # a spec's part
        agent = f"{run.agent}@{run.host}" if run.host else run.agent  # where it works, when not here
        print(f"{run.id:<5} {run.state:<9} {agent:<14} {spec:<14} "
              f"{plural(run.files_changed, 'file')} +{run.lines_added} -{run.lines_removed}  {gates}")
        for remark in run_remarks(run):
            print(f"      {remark}")
    return 0


def run_remarks(run: Run) -> list[str]:
    """What `orchestra runs` says under a run beyond its line: damage, kept worktrees, escapes."""
    remarks = [run.message] if run.damaged else []
    if run.kept:
        remarks.append(f"worktree kept: {run.kept['reason']} ({run.kept['path']})")
    if run.reverted:
        remarks.append(reverted_remark(run.reverted))
    if run.state == "accepted" and (run.decision or {}).get("granted_by"):
        remarks.append(f"accepted by policy: autonomy granted by {run.decision['granted_by']}")
    from orchestra.core.fleet.approvals import approvals_line
    approvals = approvals_line(run)
    if approvals:
        remarks.append(approvals)
    remarks += [escape["what"] for escape in run.escapes]
    return remarks


def reverted_remark(reverted: dict) -> str:
    reason = f": {reverted['reason']}" if reverted.get("reason") else ""
    return f"reverted by {reverted.get('actor')} ({str(reverted.get('commit'))[:10]}){reason}"


def cmd_accept(fleet: Fleet, args: argparse.Namespace) -> int:
    with interrupts_deferred():
        run = fleet.accept(args.run, force=args.force)
    if (run.decision or {}).get("action") == "advance":  # a workflow's stage approved: the next one starts
        from orchestra.core.runs.workflow import label
        print(f"Approved {run.id}: {run.message}; now {label(run)}. {signed_note(run)}")
        return 0
    if run.state == "review":  # an approval rule wants more people: this accept was recorded as an approval
        from orchestra.core.fleet.approvals import approvals_line
        print(f"Approved {run.id}: {approvals_line(run)}. It merges when the approval rules are met. "
              f"{signed_note(run)}")
        return 0
    print(f"Accepted {run.id}: merged into {run.target} as {run.merge_commit[:10] if run.merge_commit else '?'}. "
          f"{run.message}. {signed_note(run)}")
    return 0


def signed_note(run: Run) -> str:
    """Whether the decision's ledger entry was signed, said plainly."""
    if (run.decision or {}).get("signed"):
        return "The ledger entry is signed."
    return "The ledger entry is not signed (`orchestra doctor` says how to sign)."


def cmd_reject(fleet: Fleet, args: argparse.Namespace) -> int:
    with interrupts_deferred():
        run = fleet.reject(args.run, args.reason)
    where = f"its work stays on branch {run.branch}" if run.branch else "it had no branch"
    print(f"Rejected {run.id}; {where}." + (f" {run.message}" if run.kept else ""))
    return 0


def cmd_revert(fleet: Fleet, args: argparse.Namespace) -> int:
    with interrupts_deferred():
        run = fleet.revert(args.run, args.reason)
    reverted = run.reverted or {}
    signed = "The ledger entry is signed." if reverted.get("signed") else "The ledger entry is not signed."
    print(f"Reverted {run.id}: {str(reverted.get('commit'))[:10]} on {run.target} undoes its merge "
          f"{(run.merge_commit or '?')[:10]}. {signed}")
    return 0


def cmd_redirect(fleet: Fleet, args: argparse.Namespace) -> int:
    from orchestra.core.policy import open_findings
    run = fleet.get(args.run)
    found = [f for f in open_findings(run) if f.source != "comment"]
    if args.finding:
        unknown = [wanted for wanted in args.finding if wanted not in {f.id for f in found}]
        if unknown:
            raise BadUsage(f"No open finding {', '.join(unknown)} on run {run.id} (`orchestra review "
                           f"{run.id}` lists them). Nothing was sent.")
        found = [f for f in found if f.id in args.finding]
    elif not args.with_findings:
        found = []
    if not args.message.strip() and not found and not run.comments:
        raise BadUsage("A redirect needs --message, or findings to send (--with-findings, --finding ID).")
    with interrupts_deferred():
        run = fleet.redirect(args.run, args.message, findings=found)
    sent = run.feedback[-1] if run.feedback and (found or run.feedback[-1].get("comments")) else None
    extra = (f" with {plural(len(sent['findings']), 'finding')} and {plural(len(sent['comments']), 'comment')}"
             if sent else "")
    print(f"Redirected {run.id}{extra}; {run.agent} is working again.")
    return 0


def cmd_review(fleet: Fleet, args: argparse.Namespace) -> int:
    from orchestra.core.fleet.review import review_report
    run = fleet.get(args.run)
    report = review_report(run)
    print(json.dumps(report.to_json(), indent=2) if args.json else "\n".join(report.lines()))
    return 0


def cmd_comment(fleet: Fleet, args: argparse.Namespace) -> int:
    path, _, line = args.place.rpartition(":")
    if not path or not line.isdigit() or int(line) < 1:
        raise BadUsage(f"{args.place!r}: give the place as PATH:LINE, e.g. src/app.py:12")
    comment = fleet.comment(fleet.get(args.run).id, path, int(line), args.text)
    print(f"Commented {comment.place} ({comment.id}); it goes with the next redirect.")
    return 0


def cmd_stop(fleet: Fleet, args: argparse.Namespace) -> int:
    from orchestra.core.runs.lifecycle import allowed
    before = fleet.get(args.run)
    tip = fleet.branch_tip(before) if allowed("stop", before) else ""  # else stop refuses, saying why
    run = fleet.stop(args.run)
    print(f"Stopped {run.id}; {stopped_work(run, tip, fleet.branch_tip(run))}.")
    return 0


def stopped_work(run: Run, before: str, after: str) -> str:
    """What became of a stopped run's work, from its branch's tip before and after the stop."""
    if after != before:
        return f"its work so far is committed on {run.branch} as {after[:10]}"
    if after == run.base:
        return "nothing to commit: it had changed nothing"
    return f"nothing new to commit; its earlier commits are on {run.branch}"


def cmd_diff(fleet: Fleet, args: argparse.Namespace) -> int:
    print(fleet.diff(fleet.get(args.run)))
    return 0


def cmd_log(fleet: Fleet, args: argparse.Namespace) -> int:
    from orchestra.core.runs.lifecycle import event_text
    events, _ = fleet.store.read_events(fleet.get(args.run).id)
    for event in events:
        if event.get("type") == "output":
            print(event["text"])
        elif event.get("type") in ("note", "state"):
            text = event.get("text") or event_text(event.get("state") or "", event.get("message") or "")
            print(f"[orchestra] {text}")
    return 0


def cmd_prune(fleet: Fleet, args: argparse.Namespace) -> int:
    from orchestra.core.fleet.prune import Pruner
    with interrupts_deferred():
        report = Pruner(fleet, dry_run=args.dry_run, rejected=args.rejected, older_than_days=args.older_than).prune()
    print(json.dumps(report.to_json(), indent=2) if args.json else "\n".join(report.lines()))
    if report.failed:
        print(f"orchestra: {plural(len(report.failed), 'thing')} could not be removed; they were left in place.",
              file=sys.stderr)
    return 1 if report.failed else 0


def cmd_attach(fleet: Fleet, args: argparse.Namespace) -> int:
    """Relay this terminal to the run's interactive session until detached or it ends."""
    from orchestra.core.supervise.attach import parse_key
    from orchestra.core.supervise.sessions import talk
    try:
        key = parse_key(args.detach_key)
    except ValueError as error:
        raise BadUsage(str(error)) from None
    said = talk(fleet.get(args.run), fleet.store.run_dir(args.run), key)
    print(said.message, file=sys.stdout if said.ok else sys.stderr)
    return 0 if said.ok else 1


def cmd_update(fleet: Fleet, args: argparse.Namespace) -> int:
    from orchestra.core.fleet.update import update_run
    with interrupts_deferred():
        result = update_run(fleet, args.run, on_conflict="leave" if args.no_redirect else "redirect")
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(result.line(), file=sys.stderr if result.conflicted else sys.stdout)
    return 1 if result.conflicted else 0


def cmd_push(fleet: Fleet, args: argparse.Namespace) -> int:
    from orchestra.core.fleet.publish import publish_run
    with interrupts_deferred():
        done = publish_run(fleet, args.run, remote=args.remote)
    print(json.dumps(done.to_json(), indent=2) if args.json else "\n".join(done.lines()))
    return 0


COMMANDS = {"attach": cmd_attach, "spawn": cmd_spawn, "runs": cmd_runs, "accept": cmd_accept, "reject": cmd_reject,
            "revert": cmd_revert, "redirect": cmd_redirect, "review": cmd_review, "comment": cmd_comment,
            "stop": cmd_stop, "diff": cmd_diff, "log": cmd_log, "prune": cmd_prune, "update": cmd_update,
            "push": cmd_push, "stats": cmd_stats, "autonomy": cmd_autonomy, "policy": cmd_policy,
            "compare": cmd_compare, "plan": cmd_plan, "integrate": cmd_integrate,
            "dispatch": cmd_dispatch}

if __name__ == "__main__":
    sys.exit(main())
