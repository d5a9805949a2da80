"""Reviewers at work: each reviews the run's candidate in a read-only jail of its own; its answer becomes a gate.

An llm reviewer is a job of the llm host (llm.review_job), reading the candidate through read-only tools
run in that jail. A cli preset (claude, codex, gemini) or a command runs in it, asked on the command line
(presets) or on stdin (commands, which also find the prompt and the schema in files named by
ORCHESTRA_REVIEW_PROMPT and ORCHESTRA_REVIEW_SCHEMA), and answers on stdout. Either way, what it is asked
comes from core.gates.review, its answer is read there, and the verdict is orchestra's.

The reviewer's jail shows the worktree, its git files and the run's refs read-only, and has a private home
and tmp of its own, made fresh for every review (`<run>.review` beside the run's): nothing the author left
in its own home reaches its reviewer. Without a sandbox a command reviewer could write; the gate says so.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from orchestra.core.agents.presets import PresetError, review_invocation
from orchestra.core.agents.tools import INSTRUCTION_FILES, MAX_INSTRUCTIONS
from orchestra.core.agents.wire import RECORD_PREFIX, llm_client_variables
from orchestra.core.base.files import owner_only, write_atomic
from orchestra.core.base.findings import REVIEW_SCHEMA
from orchestra.core.base.procs import kill_group
from orchestra.core.base.redact import Redactor
from orchestra.core.gates.commands import gate_log_path
from orchestra.core.gates.review import (MalformedReview, Part, ReviewOutcome, gate_lines, parse_answer,
                                         parts_of, retry_message, review_gate, system_prompt, user_prompt)
from orchestra.core.git.diffs import files_at, unified_diff
from orchestra.core.jail import Jail, command_in, jail_environment, jail_for
from orchestra.core.runs.run import Gate, Run, review_gate_name
from orchestra.core.supervise.jails import repository_of, run_variables

ARGUMENT_BUDGET = 20_000  # tokens of diff per part for a command reviewer (its prompt is an argument)
OUTPUT_CAP = 4 * 1024 * 1024  # bytes of a command reviewer's answer read; more is a malformed answer


async def review_run(supervisor: Any, run: Run, reviewer: dict[str, Any], tree: str) -> Gate:
    """The gate of reviewer on the run's candidate tree."""
    started = time.time()
    store = supervisor.store
    name = review_gate_name(reviewer["name"])
    config = run.review_config or {}
    asked = await asyncio.to_thread(_what_is_asked, store.state_dir, run, reviewer, config, store.redact)
    jail = await asyncio.to_thread(reviewer_jail, store.state_dir, run, reviewer)
    log_path = gate_log_path(store.run_dir(run.id), name)
    log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not asked["parts"]:
        outcome = ReviewOutcome(explanations=["The candidate changes nothing: there is nothing to review."])
    elif reviewer.get("kind") == "llm":
        outcome = await _llm_review(supervisor, run, reviewer, jail, asked, log_path)
    else:
        outcome = await _command_review(run, reviewer, jail, asked, log_path, store.redact)
    gate = review_gate(name, tree, reviewer, outcome, config, started)
    gate.details["sandboxed"] = jail.sandboxed
    if not jail.sandboxed and reviewer.get("kind") != "llm":
        gate.warnings.append(f"not sandboxed ({jail.reason}): the reviewer could have written to the worktree")
    return gate


def reviewer_jail(state_dir: Path, run: Run, reviewer: dict[str, Any]) -> Jail:
    """A read-only jail over the run's worktree, with a private home and tmp made fresh for this review."""
    repo = repository_of(state_dir)
    private = repo.jails_dir / f"{run.id}.review"
    shutil.rmtree(private, ignore_errors=True)
    private.mkdir(parents=True, mode=0o700)
    worktree = Path(run.worktree)
    gitdir = Path(run.gitdir) if run.gitdir else repo.common_dir / "worktrees" / worktree.name
    jail = jail_for(run.id, worktree, gitdir, repo.common_dir, run.branch, private, reviewer,
                    run.sandbox_config or {})
    return dataclasses.replace(jail, read_only=True)


def _what_is_asked(state_dir: Path, run: Run, reviewer: dict[str, Any], config: dict[str, Any],
                   redact: Redactor) -> dict[str, Any]:
    """The prompts of every part of the change (secrets the run knows of redacted), as the request file
    of an llm reviewer holds them."""
    since, candidate = run.merge_base or run.base, run.candidate or run.branch
    diff = redact(unified_diff(state_dir, since, candidate))
    found = files_at(state_dir, since, INSTRUCTION_FILES)
    instructions = "\n\n".join(f"--- {path} ---\n{text.strip()}" for path, text in found.items())[:MAX_INSTRUCTIONS]
    evidence = gate_lines(run, run.expected_gates())
    budget = int(config.get("budget") or 24_000)
    if reviewer.get("kind") != "llm":  # the prompt is one argument of a command line: at most 128 KiB on Linux
        budget = min(budget, ARGUMENT_BUDGET)
    parts = parts_of(diff, budget) if diff.strip() else []
    return {"reviewer": reviewer, "worktree": run.worktree, "source": f"review:{reviewer['name']}",
            "retries": int(config.get("retries", 2)), "system": redact(system_prompt(reviewer["name"], instructions)),
            "parts": [{"paths": list(p.paths), "diff": p.diff, "index": p.index, "of": p.of,
                       "prompt": user_prompt(run, p, evidence)} for p in parts]}


async def _llm_review(supervisor: Any, run: Run, reviewer: dict[str, Any], jail: Jail, asked: dict[str, Any],
                      log_path: Path) -> ReviewOutcome:
    store = supervisor.store
    request = store.run_dir(run.id) / f"{review_gate_name(reviewer['name'])}.request.json"
    write_atomic(request, json.dumps(asked), mode=0o600)
    runner = command_in(jail, [sys.executable, "-m", "orchestra.llm.tool_runner"])
    argv = [sys.executable, "-m", "orchestra.llm.llm_client", str(store.state_dir), run.id, "--review", str(request),
            "--", *runner]
    env = {**reviewer_environment(jail, run, reviewer), **llm_client_variables(reviewer, os.environ)}
    records: list[dict[str, Any]] = []
    try:
        code, timed_out = await _run(argv, Path(run.worktree), env, None, log_path, records, store.redact,
                                     float(reviewer.get("timeout") or 3600))
    finally:
        request.unlink(missing_ok=True)
    outcome = ReviewOutcome(cost=None)
    review = next((r["review"] for r in reversed(records) if isinstance(r.get("review"), dict)), None)
    usage = next((r["usage"] for r in reversed(records) if isinstance(r.get("usage"), dict)), {})
    outcome.prompt_tokens = int(usage.get("prompt_tokens") or 0)
    outcome.completion_tokens = int(usage.get("completion_tokens") or 0)
    outcome.cost = usage.get("cost")
    if review is None:
        result = next((r.get("result") for r in reversed(records) if r.get("result")), None)
        outcome.error = (f"the reviewer did not answer within {reviewer.get('timeout') or 3600:g}s" if timed_out
                         else result or f"the reviewer's job ended (exit {code}) without an answer; see {log_path}")
        return outcome
    from orchestra.core.base.findings import findings_of
    outcome.findings = findings_of(review.get("findings") or [])
    outcome.explanations = [str(text) for text in review.get("explanations") or []]
    outcome.error = review.get("error")
    outcome.attempts = int(review.get("attempts") or 0)
    return outcome


async def _command_review(run: Run, reviewer: dict[str, Any], jail: Jail, asked: dict[str, Any], log_path: Path,
                          redact: Redactor) -> ReviewOutcome:
    """A cli preset or command reviewer, once per part, asked again with the reason after a malformed answer."""
    outcome = ReviewOutcome(cost=None)
    files = jail.private / "review"
    files.mkdir(exist_ok=True)
    schema = files / "schema.json"
    schema.write_text(json.dumps(REVIEW_SCHEMA, indent=1))
    timeout = float(reviewer.get("timeout") or 3600)
    for raw in asked["parts"]:
        part = Part(tuple(raw["paths"]), raw["diff"], raw["index"], raw["of"])
        prompt = f"{asked['system']}\n\n{raw['prompt']}"
        for attempt in range(int(asked["retries"]) + 1):
            outcome.attempts += 1
            (files / "prompt.txt").write_text(prompt)
            try:
                invocation = review_invocation(reviewer, prompt, os.environ)
            except PresetError as error:
                outcome.error = str(error)
                return outcome
            env = {**reviewer_environment(jail, run, reviewer), **invocation.env,
                   "ORCHESTRA_REVIEW_PROMPT": str(files / "prompt.txt"), "ORCHESTRA_REVIEW_SCHEMA": str(schema)}
            stdin = None if reviewer.get("preset") and not reviewer.get("command") else prompt.encode()
            answer: list[str] = []
            try:
                code, timed_out = await _run(command_in(jail, list(invocation.argv)), Path(run.worktree), env, stdin,
                                             log_path, None, redact, timeout, answer)
            except OSError as error:
                outcome.error = f"could not start the reviewer: {error.strerror or error}"
                return outcome
            if timed_out:
                outcome.error = f"the reviewer did not answer within {timeout:g}s"
                return outcome
            try:
                found, explanation = parse_answer("".join(answer), part, asked["source"])
            except MalformedReview as error:
                reason = f"{error}" + (f" (it exited {code})" if code else "")
                if attempt == int(asked["retries"]):
                    outcome.error = f"malformed answer after {attempt + 1} attempts: {reason}"
                    return outcome
                prompt = (f"{asked['system']}\n\n{raw['prompt']}\n\n{retry_message(reason)}\n\nYour previous answer "
                          f"began:\n{''.join(answer)[:2000]}")
                continue
            outcome.findings += found
            if explanation:
                outcome.explanations.append(explanation if part.of == 1 else f"Part {part.index}: {explanation}")
            break
    return outcome


def reviewer_environment(jail: Jail, run: Run, reviewer: dict[str, Any]) -> dict[str, str]:
    """A reviewer's environment: the jail's allowlist and what the reviewer itself declares (never the
    author's declared variables), plus what orchestra tells a run's processes."""
    env = jail_environment(jail, os.environ, list(reviewer.get("env") or ()), run_variables(run, None))
    env["ORCHESTRA_REVIEWER"] = str(reviewer.get("name"))
    return env


async def _run(argv: list[str], cwd: Path, env: dict[str, str], stdin: bytes | None, log_path: Path,
               records: list[dict[str, Any]] | None, redact: Redactor, timeout: float,
               answer: list[str] | None = None) -> tuple[int | None, bool]:
    """Run a reviewer's process: stdout lines to the log (records, with RECORD_PREFIX, into records; for a
    command reviewer, stdout is its answer and stderr the log). (exit status, whether it timed out)."""
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, env=env, start_new_session=True,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE if answer is not None else asyncio.subprocess.STDOUT)
    with open(log_path, "ab", opener=owner_only) as log:
        async def feed() -> None:
            if stdin is not None and proc.stdin is not None:
                try:
                    proc.stdin.write(stdin)
                    await proc.stdin.drain()
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    proc.stdin.close()

        async def read_out() -> None:
            size = 0
            assert proc.stdout is not None
            while line := await proc.stdout.readline():
                text = line.decode("utf-8", "replace")
                if answer is not None:
                    size += len(line)
                    if size <= OUTPUT_CAP:
                        answer.append(text)
                    continue
                if records is not None and text.startswith(RECORD_PREFIX):
                    try:
                        records.append(json.loads(text[len(RECORD_PREFIX):]))
                        continue
                    except ValueError:  # kept in the log, which a gate with no answer points to
                        text = f"[orchestra: an unreadable record from the reviewer's job] {text}"
                log.write(redact(text).encode("utf-8", "replace"))

        async def read_err() -> None:
            if proc.stderr is None:
                return
            while line := await proc.stderr.readline():
                log.write(redact(line.decode("utf-8", "replace")).encode("utf-8", "replace"))

        try:
            await asyncio.wait_for(asyncio.gather(feed(), read_out(), read_err(), proc.wait()), timeout)
        except asyncio.TimeoutError:
            kill_group(proc.pid)
            await proc.wait()
            return proc.returncode, True
        except asyncio.CancelledError:
            kill_group(proc.pid)
            raise
        finally:
            kill_group(proc.pid)
        if answer is not None:
            log.write(redact("".join(answer)[:64 * 1024]).encode("utf-8", "replace"))
    return proc.returncode, False
