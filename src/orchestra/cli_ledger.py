"""The commands that read the sign-off ledger: `orchestra ledger` (path, show, verify, recover, export),
`orchestra stats` and `orchestra autonomy`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from orchestra.core.base.signals import interrupts_deferred
from orchestra.core.base.errors import BadUsage, OrchestraError
from orchestra.core.base.words import plural

if TYPE_CHECKING:
    import argparse

    from orchestra.core.fleet import Fleet
    from orchestra.core.fleet.autonomy import Standing
    from orchestra.core.git.repo import Repository
    from orchestra.core.ledger.chain import Ledger


def cmd_ledger(repo: Repository, args: argparse.Namespace) -> int:
    from orchestra.core.base.canonical import canonical_json
    from orchestra.core.ledger import open_ledger, report
    ledger = open_ledger(repo)
    ledger.check_path()
    if args.action == "path":
        print(ledger.path)
    elif args.action == "recover":
        print(ledger.recover() or "nothing to recover: no append was interrupted")
    elif args.action == "verify":
        result = ledger.verify(require_signed=args.require_signed)
        verdict = report.verify_report(result, ledger.path, ledger.signing_config(), args.json)
        for text, stream in ((verdict.out, sys.stdout), (verdict.err, sys.stderr)):
            if text:
                print(text, file=stream)
        return 0 if result.ok else 1
    elif args.action == "export":
        return ledger_export(repo, ledger, args.format, args.output)
    else:
        for entry in ledger.entries():
            print(canonical_json(entry) if args.json else report.show_line(entry))
    return 0


def ledger_export(repo: Repository, ledger: Ledger, fmt: str, output: Path | None) -> int:
    """Export a ledger that verifies; refuse (exit 1, nothing written) one that does not."""
    from orchestra.core.base.files import write_atomic
    from orchestra.core.git.objects import trees_of
    from orchestra.core.ledger.export import export
    result = ledger.verify()
    if not result.ok:
        raise OrchestraError(f"The ledger fails verification, so it is not exported (an audit must not receive a "
                             f"tampered record). `orchestra ledger verify` says what is wrong with {ledger.path}.")
    entries = ledger.entries()
    trees = trees_of(repo.root, [entry[key] for entry in entries for key in ("merge_commit", "revert_commit")
                                 if isinstance(entry.get(key), str)])
    text = "".join(export(entries, fmt, trees.get))
    if output is None:
        sys.stdout.write(text)
    else:
        write_atomic(output, text)
        print(f"Exported {plural(len(entries), 'decision')} as {fmt} to {output}.", file=sys.stderr)
    return 0


def cmd_stats(fleet: Fleet, args: argparse.Namespace) -> int:
    from orchestra.core.fleet.stats import fleet_stats, stats_lines
    from orchestra.core.ledger.fields import decode_decisions
    entries, unreadable = decode_decisions(fleet.ledger.lines())
    stats = fleet_stats(entries, args.since)
    stats["unreadable_lines"] = unreadable
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    print("\n".join(stats_lines(stats)))
    if unreadable:
        print(f"({plural(unreadable, 'line')} of the ledger could not be read and were left out: "
              "`orchestra ledger verify` says why.)")
    return 0


AUTO_MEANS = ("A pair at auto has its ready runs accepted by policy when their gates next settle: every gate "
              "green and fresh, an independent review approved, no P0/P1 finding, no approval rule over its files. "
              "A boundary violation, a secret, a P0 finding or a revert of an automatic accept demotes it at once.")


def cmd_autonomy(fleet: Fleet, args: argparse.Namespace) -> int:
    from orchestra.core.fleet.autonomy import Autonomy
    from orchestra.core.git.actor import current_actor
    autonomy = Autonomy(fleet)
    if args.action == "show":
        standings = autonomy.standings()
        if args.json:
            print(json.dumps([standing.to_json() for standing in standings], indent=2))
            return 0
        for standing in standings:
            print(standing_line(standing))
        print(AUTO_MEANS if standings else "The score pairs no spec with an agent.")
        return 0
    if not (args.spec and args.agent):
        raise BadUsage(f"`orchestra autonomy {args.action}` needs a spec and an agent: "
                       f"orchestra autonomy {args.action} SPEC AGENT (`orchestra autonomy show` lists them).")
    actor = current_actor(fleet.repo.root)
    change = autonomy.grant if args.action == "grant" else autonomy.revoke
    entry = change(args.spec, args.agent, actor, args.reason)
    level = entry["level"]
    done = {"grant": "granted", "revoke": "revoked"}[args.action]
    print(f"{args.spec}/{args.agent} is now {level}, {done} by {actor} (ledger entry {entry['hash'][:12]}).")
    if level == "auto":
        print(AUTO_MEANS)
    return 0


def cmd_policy(fleet: Fleet, args: argparse.Namespace) -> int:
    """What the autonomy policy does with one run (a supervisor's request, or a human's)."""
    from orchestra.core.fleet.autopilot import apply_policy, warm_up
    if args.wait:
        warm_up(fleet, args.run)
        if sys.stdin.readline().strip() != "go":
            return 0
    with interrupts_deferred():
        outcome = apply_policy(fleet, args.run)
    print(f"{args.run}: {outcome.text}")
    return 0


def standing_line(standing: Standing) -> str:
    """One spec and agent: its level, who granted it, the score's cap, the track record, a suggestion."""
    granted = f"auto, granted by {standing.granted_by}" if standing.granted == "auto" else "manual"
    capped = "; capped to manual by the score (max_autonomy)" if standing.level != standing.granted else ""
    shown = ", ".join(standing.streak_runs[-8:]) + (" …" if len(standing.streak_runs) > 8 else "")
    record = f"{plural(standing.streak, 'ready run')} accepted in a row" + (f" ({shown})" if shown else "")
    suggestion = (f"; promotion suggested (after {standing.promote_after}): "
                  f"orchestra autonomy grant {standing.spec} {standing.agent}") if standing.suggest_promotion else ""
    return f"{standing.spec}/{standing.agent}: {granted}{capped}. {record}{suggestion}."
