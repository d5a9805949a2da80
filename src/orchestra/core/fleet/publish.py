"""Publishing a run: push its branch to a remote, open a pull request with its evidence, record it.

The remote is the one asked for, else the target branch's upstream remote, else origin. The exact
commit the run's branch holds is pushed (never forced). When the GitHub CLI `gh` is on PATH it opens a
pull request whose body carries the spec, the gates with the tree each ran on, the review verdicts and
the run's id; without it (or when it fails) the compare page's URL is given instead, for GitHub- and
GitLab-style remotes. The ledger gets a `publish` entry (remote, branch, commit, pull request) only once
the push has landed: a refused push records nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestra.core.base.errors import ActionRefused, OrchestraError
from orchestra.core.base.findings import counts, findings_of
from orchestra.core.fleet.evidence import entry_fields
from orchestra.core.fleet.journal import new_decision_id
from orchestra.core.git.actor import current_actor
from orchestra.core.git.remotes import (
    choose_remote,
    compare_url,
    last_lines,
    push_commit,
    remote_url,
    slug_of,
    without_credentials,
)
from orchestra.core.ledger import LedgerError
from orchestra.core.runs.lifecycle import allowed, refusal
from orchestra.core.runs.run import Run

if TYPE_CHECKING:
    from orchestra.core.fleet.fleet import Fleet

GH_TIMEOUT = 120.0  # seconds `gh pr create` may take (it talks to the host)


class PublishRefused(ActionRefused):
    """The run cannot be published in its state (exit 3, as any refusal by policy)."""

    exit_status = 3


@dataclass
class Published:
    """Where a run's branch went, and the page to open next."""

    run: Run
    remote: str
    url: str
    commit: str
    pull_request: str | None = None
    compare: str | None = None
    gh_problem: str | None = None  # why gh did not open a pull request, when it was there and failed

    def lines(self) -> list[str]:
        said = [f"Pushed {self.run.branch} ({self.commit[:10]}) to {self.remote} ({self.url})."]
        if self.pull_request:
            said.append(f"Pull request: {self.pull_request}")
        if self.gh_problem:
            said.append(f"gh could not open a pull request: {self.gh_problem}")
        if not self.pull_request:
            said.append(f"Compare and open a pull request: {self.compare}" if self.compare else
                        f"No compare page can be built for {self.url}: open the pull request on its host.")
        return said

    def to_json(self) -> dict[str, Any]:
        return {"run": self.run.id, "remote": self.remote, "url": self.url, "branch": self.run.branch,
                "commit": self.commit, "pull_request": self.pull_request, "compare_url": self.compare,
                "gh_problem": self.gh_problem}


def publish_run(fleet: Fleet, run_id: str, remote: str | None = None, actor: str | None = None) -> Published:
    """Push a run's branch, open its pull request (with gh) and record a publish entry in the ledger."""
    run = publishable(fleet, run_id)
    name = choose_remote(fleet.repo, run.target, remote)
    url = without_credentials(remote_url(fleet.repo, name))
    try:
        commit = fleet.branch_tip(run)
    except OrchestraError:
        raise ActionRefused(f"Run {run.id}'s branch {run.branch} is gone (pruned?): there is nothing to push.") from None
    push_commit(fleet.repo, name, commit, run.branch)
    done = Published(run=run, remote=name, url=url, commit=commit)
    gh = shutil.which("gh")
    if gh is not None:
        done.pull_request, done.gh_problem = open_pull_request(gh, fleet, run, url)
    if done.pull_request is None:
        done.compare = compare_url(url, run.target, run.branch)
    record(fleet, done, actor or current_actor(fleet.repo.root))
    return done


def publishable(fleet: Fleet, run_id: str) -> Run:
    """The run, when its state allows publishing and the ledger can record it; nothing is pushed otherwise."""
    run = fleet.get(run_id)
    if not allowed("publish", run):
        raise PublishRefused(refusal("publish", run))
    try:
        fleet.ledger.check_appendable()
    except LedgerError as error:
        raise ActionRefused(f"The sign-off ledger cannot record this publish: {error}. Nothing was pushed.") from None
    return run


def record(fleet: Fleet, done: Published, actor: str) -> None:
    """The publish entry in the ledger, and a note in the run's events."""
    run = done.run
    try:
        entry = fleet.ledger.append(entry_fields("publish", run, actor, new_decision_id(), fleet.diff(run), {
            "remote": done.remote, "remote_url": done.url, "branch": run.branch, "commit": done.commit,
            "pull_request": done.pull_request, "compare_url": done.compare}))
    except LedgerError as error:
        raise ActionRefused(f"{run.branch} was pushed to {done.remote} ({' '.join(done.lines()[1:])}), but the "
                            f"ledger could not record it: {error}.") from None
    fleet.store.append_events(run.id, [{"type": "note", "text": (
        f"published by {actor}: {run.branch} ({done.commit[:10]}) pushed to {done.remote}"
        + (f", pull request {done.pull_request}" if done.pull_request else "")), "ledger_hash": entry.get("hash")}])


def open_pull_request(gh: str, fleet: Fleet, run: Run, url: str) -> tuple[str | None, str | None]:
    """(the pull request's URL, None) from `gh pr create`, or (None, why not)."""
    slug = slug_of(url)
    with tempfile.NamedTemporaryFile("w", suffix=".md", prefix="orchestra-pr-", encoding="utf-8") as body:
        body.write(pull_request_body(run))
        body.flush()
        argv = [gh, "pr", "create", "--base", run.target, "--head", run.branch, "--title", pull_request_title(run),
                "--body-file", body.name]
        if slug is not None:
            argv += ["--repo", f"{slug.host}/{slug.path}"]
        try:
            done = subprocess.run(argv, cwd=fleet.repo.root, capture_output=True, text=True, errors="replace", check=False,
                                  stdin=subprocess.DEVNULL, timeout=GH_TIMEOUT, process_group=0,
                                  env={**os.environ, "GH_PROMPT_DISABLED": "1", "NO_COLOR": "1"})
        except (OSError, subprocess.TimeoutExpired) as error:
            return None, str(error)
    if done.returncode != 0:
        return None, last_lines(done.stderr or done.stdout)
    found = [word for word in done.stdout.split() if word.startswith(("https://", "http://"))]
    return (found[-1], None) if found else (None, f"gh printed no pull request URL ({last_lines(done.stdout)})")


def pull_request_title(run: Run) -> str:
    intent = (run.task or "").strip().splitlines()
    return (intent[0][:72] if intent else f"orchestra run {run.id}") or f"orchestra run {run.id}"


def pull_request_body(run: Run) -> str:
    """The pull request's description: the spec, the gates with their trees, the review, the run."""
    spec = f"spec `{run.spec}`" if run.spec else "a free-text task"
    about = (f"Orchestra run `{run.id}`, {spec}, by agent `{run.agent}`; candidate `{run.candidate or '?'}`, "
             f"tree `{run.tree or '?'}`.")
    lines = ["## Intent", "", (run.task or "").strip() or "(none given)", "", about, "", "## Gates", ""]
    lines += gate_table(run) or ["No gate has run."]
    lines += ["", "## Review", ""]
    lines += review_lines(run) or ["No reviewer reviewed this run."]
    return "\n".join(lines) + "\n"


def gate_table(run: Run) -> list[str]:
    if not run.gates:
        return []
    rows = ["| gate | result | tree | summary |", "|---|---|---|---|"]
    for gate in run.gates.values():
        result = "stale" if gate.is_stale(run.tree) else gate.status
        summary = (gate.summary or "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| {gate.name} | {result} | `{(gate.tree or '?')[:12]}` | {summary} |")
    return rows


def review_lines(run: Run) -> list[str]:
    lines = []
    for gate in run.gates.values():
        if gate.kind != "review":
            continue
        found = findings_of(gate.findings)
        by = ", ".join(f"{p} {n}" for p, n in counts(found).items() if n)
        lines.append(f"- {gate.name}: {gate.verdict or gate.status}"
                     + (f" ({len(found)} finding{'' if len(found) == 1 else 's'}: {by})" if found else ", no findings"))
    return lines
