"""The command line's grammar: every command, its arguments and their help (`orchestra --help`).

Loaded only for a command line with arguments: a bare `orchestra` opens the fleet without it (cli.main).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from orchestra import __version__


def build_parser() -> argparse.ArgumentParser:
    import argparse
    parser = argparse.ArgumentParser(
        prog="orchestra", description="A terminal fleet commander for AI coding agents. "
        "Without a command, opens the fleet for the repository you are in.")
    parser.add_argument("--version", action="version", version=f"orchestra {__version__}")
    parser.add_argument("-C", dest="directory", type=Path, default=Path("."), metavar="DIR",
                        help="work on the repository at DIR (default: the current directory)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("init", help="write a commented starter orchestra.toml (never overwrites one)")
    demo = sub.add_parser("demo", help="create a demo repository with scripted agents and open the fleet on it")
    demo.add_argument("path", nargs="?", type=Path, help="where to create it (default: a fresh directory "
                      "under ~/.local/share/orchestra/demos)")
    demo.add_argument("--no-open", action="store_true", help="create it and start its runs, but do not open the UI")
    spawn = sub.add_parser("spawn", help="start runs of a spec (one per agent) and print their ids")
    spawn.add_argument("spec", nargs="?", help="the spec id (omit it with --task)")
    spawn.add_argument("--agent", action="append", dest="agents", metavar="NAME", help="an agent to run (repeatable)")
    spawn.add_argument("--task", help="a free-text task instead of a spec")
    spawn.add_argument("--host", metavar="NAME", help="run on this host of your settings' [[hosts]] (default: the "
                       "agent's host, else wherever a slot is free)")
    spawn.add_argument("--n", type=int, dest="count", metavar="N", help="best-of-N: start N runs, the agents "
                       "taken in turn (N of one agent with one --agent); `orchestra compare` ranks them")
    spawn.add_argument("--trust", action="store_true", help="allow the score's setup commands to run (asked the "
                       "first time, and whenever they change; remembered outside the repository)")
    compare = sub.add_parser("compare", help="a group's candidates side by side, ranked on evidence; --choose "
                             "accepts one and rejects the others")
    compare.add_argument("group", help="the group (e.g. g3) or any of its runs")
    compare.add_argument("--json", action="store_true", help="print JSON")
    compare.add_argument("--choose", metavar="RUN", help="accept this candidate and reject the group's others "
                         "(\"another candidate chosen: RUN\"), as one group decision")
    compare.add_argument("--force", action="store_true", help="with --choose: accept it even if it is not ready "
                         "(the ledger records it)")
    integrate = sub.add_parser("integrate", help="merge the parts of a spec (once each is in review) onto the target "
                               "as one integration candidate, verified by the spec's own checks; again to rebuild it")
    integrate.add_argument("name", metavar="SPEC_OR_GROUP", help="a spec with parts (its latest group), a group (e.g. "
                           "g3) or any run of it")
    integrate.add_argument("--json", action="store_true", help="print what was built, or why not, as JSON")
    integrate.add_argument("--trust", action="store_true", help="allow the score's setup commands to run")
    integrate.add_argument("--when-ready", action="store_true", help="build only if every part is in review and no "
                           "open integration holds their candidates already (what a part's supervisor runs when "
                           "its run enters review); exit 0 either way")
    plan = sub.add_parser("plan", help="print the plan a workflow's plan stage wrote; --edit changes it before "
                          "you approve it (`orchestra accept RUN`)")
    plan.add_argument("run")
    plan.add_argument("--edit", action="store_true", help="open it in $VISUAL or $EDITOR (only while it waits for "
                      "your approval)")
    runs = sub.add_parser("runs", help="list runs")
    runs.add_argument("--json", action="store_true", help="print a JSON array")
    accept = sub.add_parser("accept", help="merge a run into its target branch (refused, exit 3, unless it is ready)")
    accept.add_argument("run")
    accept.add_argument("--force", action="store_true",
                        help="accept a run that is not ready (failing, pending or stale gates); the ledger records it")
    for name, help_text in (("stop", "stop a working agent (its work is kept)"),
                            ("diff", "print a run's diff against its base"),
                            ("log", "print a run's whole output")):
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("run")
    reject = sub.add_parser("reject", help="discard a run (its branch is kept) with a reason")
    reject.add_argument("run")
    reject.add_argument("--reason", default="", help="why (recorded in the ledger)")
    revert = sub.add_parser("revert", help="undo an accepted run's merge on its target with a revert commit "
                            "(refused, nothing changed, on a conflict or uncommitted work in those files)")
    revert.add_argument("run")
    revert.add_argument("--reason", default="", help="why (recorded in the ledger and the commit)")
    redirect = sub.add_parser("redirect", help="send a run's agent a correction; it works again")
    redirect.add_argument("run")
    redirect.add_argument("--message", "-m", default="", help="the instruction for the agent (may be left out "
                          "with --with-findings or --finding)")
    redirect.add_argument("--with-findings", action="store_true",
                          help="send every open finding (review, SARIF, secrets) along, as `d` does with a selection")
    redirect.add_argument("--finding", action="append", default=[], metavar="ID",
                          help="send this finding along (its id from `orchestra review`; repeatable)")
    review = sub.add_parser("review", help="print a run's evidence, review verdicts and findings")
    review.add_argument("run")
    review.add_argument("--json", action="store_true", help="print them as JSON")
    comment = sub.add_parser("comment", help="add your comment on a line of a run's diff (sent with the next redirect)")
    comment.add_argument("run")
    comment.add_argument("place", metavar="PATH:LINE", help="the file and line (in the candidate), e.g. src/a.py:12")
    comment.add_argument("text")
    stats = sub.add_parser("stats", help="outcomes per agent and per spec, from the ledger: accept rate, rework, "
                           "first-try accepts, escaped defects, the conductor's time, tokens and cost, agreement")
    stats.add_argument("--json", action="store_true", help="print the figures as JSON")
    stats.add_argument("--since", type=since_date, metavar="DATE", help="only decisions from DATE on (YYYY-MM-DD "
                       "or an ISO time; UTC unless it says otherwise)")
    autonomy = sub.add_parser("autonomy", help="graduated autonomy per spec and agent: show the levels and track "
                              "records, grant or revoke auto (recorded in the ledger under your name)")
    autonomy.add_argument("action", choices=("show", "grant", "revoke"))
    autonomy.add_argument("spec", nargs="?", help="grant, revoke: the spec")
    autonomy.add_argument("agent", nargs="?", help="grant, revoke: the agent")
    autonomy.add_argument("--reason", default="", help="grant, revoke: why (recorded in the ledger)")
    autonomy.add_argument("--json", action="store_true", help="show: print JSON")
    policy = sub.add_parser("policy", help="apply the autonomy policy to a run now: accept it if its spec and agent "
                            "are auto and it is ready, demote them if it crossed a line (its supervisor asks this "
                            "when its gates settle)")
    policy.add_argument("run")
    policy.add_argument("--wait", action="store_true", help="load what it needs, then act when \"go\" comes on "
                        "stdin (how a supervisor asks; anything else, or the end of the input, does nothing)")
    spec = sub.add_parser("spec", help="specs in files of their own: `spec new ID --template KIND` writes "
                          "specs/ID.toml from a template, `spec draft \"WHAT\"` has an llm agent draft one (never "
                          "overwrites one)")
    spec_actions = spec.add_subparsers(dest="action", metavar="ACTION", required=True)
    new = spec_actions.add_parser("new", prog="orchestra spec new", help="write specs/ID.toml from a template")
    new.add_argument("spec_id", metavar="ID", help="the new spec's id (lower-case letters, digits, '-', '_')")
    new.add_argument("--template", required=True, metavar="KIND",
                     help="what kind of work: bugfix, feature, refactor, docs or security")
    draft = spec_actions.add_parser("draft", prog="orchestra spec draft", help="an llm agent reads the target branch "
                                    "and drafts specs/ID.toml (intent, boundaries, verify commands) for you to "
                                    "edit; it cannot be spawned until you remove its `draft = true`")
    draft.add_argument("wanted", metavar="WHAT", help="what you want, in your words (quoted)")
    draft.add_argument("--agent", metavar="NAME", help="the llm agent that drafts (default: the score's first)")
    draft.add_argument("--json", action="store_true", help="also print the drafted spec as JSON (its path "
                       "included) on stdout")
    ledger = sub.add_parser("ledger", help="the sign-off ledger: path, show, verify, recover, export")
    ledger.add_argument("action", choices=("path", "show", "verify", "recover", "export"))
    ledger.add_argument("--format", choices=("jsonl", "csv", "in-toto"), default="jsonl",
                        help="export: JSON lines, CSV, or an in-toto Statement v1 per decision")
    ledger.add_argument("--output", type=Path, metavar="FILE", help="export: write FILE instead of stdout")
    ledger.add_argument("--json", action="store_true", help="show: the raw JSON lines; verify: the verdict as JSON")
    ledger.add_argument("--require-signed", action="store_true", help="with verify: fail on any unsigned entry")
    prune = sub.add_parser("prune", help="remove what decided runs left (worktrees, merged branches, logs); "
                           "never unmerged or unsaved work")
    prune.add_argument("--dry-run", action="store_true", help="only print what would be removed and kept")
    prune.add_argument("--older-than", type=days, metavar="DAYS", help="only runs decided more than DAYS ago")
    prune.add_argument("--rejected", action="store_true",
                       help="also delete the branches (and kept commits) of rejected runs: their work is gone")
    prune.add_argument("--json", action="store_true", help="print what was removed and kept as JSON")
    update = sub.add_parser("update", help="bring a run up to date with its target branch (rebase or merge, as "
                            "[orchestra] update says); a conflict changes nothing and redirects the agent")
    update.add_argument("run")
    update.add_argument("--no-redirect", action="store_true",
                        help="on a conflict, leave it to you (a shell in the run's worktree) instead of the agent")
    update.add_argument("--json", action="store_true", help="print what was done as JSON")
    push = sub.add_parser("push", help="push a run's branch to a remote and open a pull request (with gh), or "
                          "print the compare URL; recorded in the ledger")
    push.add_argument("run")
    push.add_argument("--remote", help="the remote (default: the target branch's upstream remote, else origin)")
    push.add_argument("--json", action="store_true", help="print what was done as JSON")
    hosts = sub.add_parser("hosts", help="the machines runs may go to ([[hosts]] in your settings file); check "
                           "asks each for git, Python 3.11+ and orchestra")
    hosts.add_argument("action", nargs="?", choices=("list", "check"), default="list")
    hosts.add_argument("name", nargs="*", help="with check: only these hosts")
    hosts.add_argument("--json", action="store_true", help="print JSON")
    hosts.add_argument("--install", action="store_true", help="with check: install orchestra at the hosts first, "
                       "from this checkout and its hashed lock file, and set their orchestra command")
    from orchestra.cli_remote import add_parser as add_remote
    add_remote(sub)
    sub.add_parser("dispatch", help="start the runs waiting for a slot that now have one (runs leaving a slot "
                   "start it themselves)")
    doctor = sub.add_parser("doctor", help="check the agent CLIs, provider keys and tools the score needs "
                            "(works outside a repository too)")
    doctor.add_argument("--all", "-v", action="store_true",
                        help="also list each optional CLI, tool and key no agent here needs, with how to get it")
    attach = sub.add_parser("attach", help="talk to a run's live interactive agent in this terminal "
                            "(ctrl-] detaches; the agent goes on)")
    attach.add_argument("run")
    attach.add_argument("--detach-key", default="ctrl-]", metavar="KEY", help="the key that detaches (default ctrl-])")
    return parser


def since_date(text: str) -> str:
    """--since as the ledger writes times (UTC, to the second, ending in Z): they compare as text."""
    from datetime import datetime, timezone
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD, or an ISO time such as "
                                         "2026-12-01T09:30)") from None
    when = when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def days(text: str) -> float:
    """--older-than's value: a number of days, not negative."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of days, 0 or more")
    return value
