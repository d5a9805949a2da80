"""`orchestra spec draft "WHAT"`: an llm agent of the score reads the target branch and proposes a spec file.

The agent reads a temporary detached checkout of the target (core.git.reading), never the user's checkout,
through read-only tools in a read-only jail of its own; it is a job of the llm host (llm.draft_job) started
through an llm client, as a reviewer is. Its answer is checked there (core.score.drafts), given a free id,
rendered as a commented spec file holding `draft = true`, and written to specs/<id>.toml only when the whole
score loads with it; an existing file is never replaced. Drafting starts no run, and spawn refuses a draft
until the conductor removes that line. Ctrl-C, a timeout or a failure leaves nothing behind: the checkout,
the jail's private places and the request are removed, and no file is written.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestra.core.agents.wire import llm_client_variables, parse_record
from orchestra.core.base.errors import BadUsage, OrchestraError
from orchestra.core.base.files import write_atomic
from orchestra.core.base.procs import kill_group
from orchestra.core.base.signals import interrupts_deferred
from orchestra.core.git.reading import ReadingTree, reading_tree, tracked_paths
from orchestra.core.git.repo import Repository
from orchestra.core.jail import Jail, command_in, jail_environment, jail_for
from orchestra.core.onboarding.draft_prompt import config_texts, system_prompt, user_prompt
from orchestra.core.score.drafts import Draft, check_draft_loads, draft_of, draft_text, free_id
from orchestra.core.score.locate import ConfigError
from orchestra.core.score.model import Agent, Score
from orchestra.core.score.spec_files import SPEC_DIR, spec_file_paths
from orchestra.core.score.templates import create_new

DRAFT_TIMEOUT = 900.0  # seconds the drafter may take, unless its agent's timeout is shorter
RETRIES = 2            # malformed answers put back to the drafter before it gives up
JAIL_BRANCH = "orchestra/draft"  # the jail's ref directory (refs/heads/orchestra/): no branch is made

Progress = Callable[[str], None]


@dataclass(frozen=True)
class DraftedSpec:
    """A drafted spec: its id (and why it differs from the one proposed), its file and text, who drafted it."""

    spec_id: str
    path: Path
    text: str
    draft: Draft
    agent: str
    model: str
    renamed: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.spec_id, "path": str(self.path), "draft": True,
                "agent": self.agent, "model": self.model, "proposed_id": self.draft.id, "renamed": self.renamed,
                "intent": self.draft.intent, "allow": list(self.draft.allow), "deny": list(self.draft.denied),
                "stable": list(self.draft.stable), "verify": [dataclasses.asdict(v) for v in self.draft.verify],
                "notes": self.draft.notes, "rollback": self.draft.rollback}


def drafting_agent(score: Score, name: str | None) -> Agent:
    """The agent that drafts: the llm agent named, else the score's first; OrchestraError saying how to add one."""
    llm_agents = [agent for agent in score.agents if agent.kind == "llm"]
    if name is None and llm_agents:
        return llm_agents[0]
    named = next((agent for agent in score.agents if agent.name == name), None)
    if named is not None and named.kind == "llm":
        return named
    if named is not None:
        raise BadUsage(f"Agent {name!r} is a {named.kind} agent; a spec is drafted by an llm agent ("
                       f"{', '.join(a.name for a in llm_agents) or 'the score has none'}).")
    if name is not None:
        raise BadUsage(f"There is no agent {name!r} in orchestra.toml (llm agents: "
                       f"{', '.join(a.name for a in llm_agents) or 'none'}).")
    raise OrchestraError("No llm agent can draft a spec: orchestra.toml has none. Add one, e.g.\n\n"
                         '[[agents]]\nname = "drafter"\nkind = "llm"\nmodel = "anthropic/claude-sonnet-4-5"\n\n'
                         "then `orchestra doctor` to check its key; nothing was written.")


def draft_spec(repo: Repository, score: Score, wanted: str, target: str, agent_name: str | None = None,
               progress: Progress = lambda line: None) -> DraftedSpec:
    """Have an llm agent draft a spec for wanted from the target branch, and write it to specs/<id>.toml."""
    if not wanted.strip():
        raise BadUsage('Say what you want drafted, e.g. `orchestra spec draft "fix the login timeout"`.')
    agent = drafting_agent(score, agent_name)
    taken = taken_ids(score)
    name = f"draft-{secrets.token_hex(4)}"
    progress(f"reading {target} in a temporary checkout (the checkout you work in is not touched)…")
    with reading_tree(repo, target, name) as tree:
        asked = what_is_asked(repo, tree, agent, wanted, target, taken)
        answer = ask_drafter(repo, score, agent, tree, name, asked, progress)
    return write_draft(score, draft_of(answer), agent, wanted)


def taken_ids(score: Score) -> set[str]:
    """The spec ids a draft may not have: the score's specs, and every file name in specs/."""
    files = {path.name[: -len(".toml")] for path in spec_file_paths(score.path)}
    return {spec.id for spec in score.specs} | files


def what_is_asked(repo: Repository, tree: ReadingTree, agent: Agent, wanted: str, target: str,
                  taken: set[str]) -> dict[str, Any]:
    """The drafter's request file: who drafts, where it reads, the prompts and how often it may be asked again."""
    paths = tracked_paths(repo.root, tree.commit)
    configs = config_texts(repo.root, tree.commit, paths)
    return {"agent": {"name": agent.name, "model": agent.model, "api_base": agent.api_base,
                      "request_timeout": agent.request_timeout},
            "worktree": str(tree.path), "retries": RETRIES, "system": system_prompt(agent.name),
            "prompt": user_prompt(wanted, target, tree.commit, paths, configs, taken)}


def ask_drafter(repo: Repository, score: Score, agent: Agent, tree: ReadingTree, name: str, asked: dict[str, Any],
                progress: Progress) -> dict[str, Any]:
    """The drafter's checked answer (Draft as JSON); OrchestraError saying why there is none."""
    private = repo.jails_dir / name
    try:
        jail = drafter_jail(repo, score, agent, tree, private)
        request = private / "draft-request.json"
        write_atomic(request, json.dumps(asked), mode=0o600)
        runner = command_in(jail, [sys.executable, "-m", "orchestra.llm.tool_runner"])
        argv = [sys.executable, "-m", "orchestra.llm.llm_client", "--draft", str(request), "--", *runner]
        env = {**jail_environment(jail, os.environ, list(agent.env)),
               **llm_client_variables(_config(agent), os.environ)}
        progress(f"{agent.name} ({agent.model}) is reading the repository…")
        records = run_client(argv, tree.path, env, min(agent.timeout, DRAFT_TIMEOUT), progress)
    finally:
        shutil.rmtree(private, ignore_errors=True)
    return answer_of(records, agent)


def drafter_jail(repo: Repository, score: Score, agent: Agent, tree: ReadingTree, private: Path) -> Jail:
    """A read-only jail over the reading tree, with a private home and tmp of its own."""
    private.mkdir(parents=True, mode=0o700)
    jail = jail_for(private.name, tree.path, tree.gitdir, repo.common_dir, JAIL_BRANCH, private, _config(agent),
                    {"mode": score.sandbox, "read": list(score.sandbox_read)})
    return dataclasses.replace(jail, read_only=True)


def _config(agent: Agent) -> dict[str, Any]:
    return dataclasses.asdict(agent)


def run_client(argv: list[str], cwd: Path, env: dict[str, str], timeout: float, progress: Progress) -> list[dict]:
    """Run the llm client to its end: its lines to progress, its records returned. It is killed (with its tool
    runner) on a timeout or Ctrl-C; the host's job ends with it."""
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    expired = threading.Event()
    timer = threading.Timer(timeout, lambda: (expired.set(), kill_group(proc.pid)))
    timer.start()
    records: list[dict] = []
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            record = parse_record(raw)
            if record is not None:
                records.append(record)
            elif raw.strip():
                progress(raw.decode("utf-8", "replace").rstrip())
    finally:
        timer.cancel()
        kill_group(proc.pid)
        proc.wait()
    if expired.is_set():
        raise OrchestraError(f"The drafter did not answer within {timeout:g}s; nothing was written.")
    return records


def answer_of(records: list[dict], agent: Agent) -> dict[str, Any]:
    """The draft in the job's record; OrchestraError with the job's reason when there is none."""
    found = next((r["draft"] for r in reversed(records) if isinstance(r.get("draft"), dict)), None)
    if found is not None and isinstance(found.get("draft"), dict):
        return found["draft"]
    reason = (found or {}).get("error") or next((r.get("result") for r in reversed(records) if r.get("result")),
                                                 None) or "its job ended without an answer"
    raise OrchestraError(f"{agent.name} could not draft the spec: {reason}. Nothing was written.")


def write_draft(score: Score, draft: Draft, agent: Agent, wanted: str) -> DraftedSpec:
    """Write the draft to specs/<a free id>.toml, once the whole score is known to load with it."""
    spec_id, renamed = free_id(draft.id, taken_ids(score))
    text = draft_text(draft, spec_id, agent.name, agent.model or "", wanted)
    try:
        check_draft_loads(score.path, spec_id, text)
    except ConfigError as error:
        raise OrchestraError(f"The drafted spec would not load, so nothing was written:\n{error}") from None
    with interrupts_deferred():  # a file is written whole or not at all
        path = create_new(Path(score.path).parent / SPEC_DIR / f"{spec_id}.toml", text)
    return DraftedSpec(spec_id, path, text, draft, agent.name, agent.model or "", renamed)
