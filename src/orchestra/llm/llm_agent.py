"""orchestra's built-in coding agent: a model with tools, working in one run's worktree.

It reads the run's record (task, spec, agent settings), talks to the model through litellm, and
reports to its supervisor (through the llm host and the run's client): plain lines for the log (the
model's text, each tool call and its result) and records (usage, the final result). Its tools run in
the run's tool runner, inside the run's jail (remote_tools): this loop never touches the worktree.
The conversation is kept in the run's directory, so a redirect continues it with the conductor's
instruction appended.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestra.core.agents.prompts import boundary_lines
from orchestra.core.agents.tools import READ_TOOL_SPECS, TOOL_SPECS, ToolError
from orchestra.core.agents.wire import RECORD_PREFIX, Redactor
from orchestra.core.base.redact import Redactor as BaseRedactor
from orchestra.core.base.files import write_atomic
from orchestra.core.gates.review import PRIORITY_GUIDE, MalformedReview, answer_format, parse_findings, retry_message
from orchestra.core.runs.run import Run
from orchestra.core.runs.store import RunStore
from orchestra.core.score.roles import role_lines, role_of
from orchestra.llm.remote_tools import RemoteTools

CONVERSATION_FILE = "conversation.json"
LOGGED_RESULT_LINES = 12   # lines of a tool's result shown in the log (the model gets all of it)

EXIT_DONE, EXIT_FAILED, EXIT_BUDGET = 0, 1, 3


@dataclass
class Job:
    """Everything one working session of the agent needs."""

    run: Run
    run_dir: Path
    api_key: str | None = field(default=None, repr=False)
    secrets: dict[str, str] = field(default_factory=dict, repr=False)  # kept out of the conversation file
    redirect: str | None = None
    retry_base: float = 1.0

    @property
    def settings(self) -> dict[str, Any]:
        return self.run.agent_config


class Reporter:
    """Lines and records to the supervisor, with every secret redacted."""

    def __init__(self, write: Callable[[str], None], secrets: list[str]) -> None:
        self.write, self.redact = write, Redactor(secrets)

    def line(self, text: str) -> None:
        for part in self.redact(text).split("\n"):
            self.write(part)

    def record(self, **values: Any) -> None:
        self.write(RECORD_PREFIX + self.redact(json.dumps(values, sort_keys=True, ensure_ascii=False)))


class LlmAgent:
    """The tool loop: ask the model, run the tools it calls, until it is done or its budget is spent."""

    def __init__(self, job: Job, reporter: Reporter, tools: RemoteTools) -> None:
        from orchestra.llm.model import Model, ModelSettings  # litellm loads here, not at import
        self.job, self.report, self.tools = job, reporter, tools
        settings = job.settings
        self.model = Model(ModelSettings(settings["model"], settings.get("api_base"), job.api_key,
                                         float(settings.get("request_timeout") or 120.0), job.retry_base),
                           on_text=reporter.line, on_note=lambda text: reporter.line(f"» {text}"))
        self.usage = {"model": settings["model"], "prompt_tokens": 0, "completion_tokens": 0, "cost": 0.0,
                      "turns": 0}

    @property
    def conversation_path(self) -> Path:
        """Where the conversation is kept: one per run, or one per stage of a workflow (each stage its agent's)."""
        flow = self.job.run.workflow
        if flow:
            return self.job.run_dir / f"conversation-stage{flow.get('at', 0) + 1}.json"
        return self.job.run_dir / CONVERSATION_FILE

    async def start_messages(self) -> list[dict[str, Any]]:
        saved = self.load()
        if saved is not None:
            messages, self.usage = saved["messages"], {**self.usage, **saved.get("usage", {})}
            instruction = self.job.redirect or "Continue the task."
            messages.append({"role": "user", "content": f"The conductor redirects you:\n\n{instruction}"})
            return messages
        instructions = await self.tools.instructions()
        return [{"role": "system", "content": system_prompt(self.job.run, instructions)},
                {"role": "user", "content": task_prompt(self.job.run)}]

    def load(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.conversation_path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        return data if isinstance(data.get("messages"), list) else None

    def save(self, messages: list[dict[str, Any]]) -> None:
        """Keep the conversation for a redirect: the run's secrets (and the model's key) never in it, 0600."""
        redact = BaseRedactor(self.job.secrets, [self.job.api_key] if self.job.api_key else [])
        data = redact.deep({"messages": messages, "usage": self.usage})
        write_atomic(self.conversation_path, json.dumps(data, indent=1), mode=0o600)

    async def work(self) -> int:
        from orchestra.llm.model import ModelUnavailable, parse_arguments
        spec = self.job.run.spec_config or {}
        reports = role_of(self.job.settings).reports_findings  # it reads and reports: read-only tools
        try:
            await self.tools.open(self.job.run.worktree, tuple(spec.get("allow") or ()), tuple(spec.get("deny") or ()),
                                  read_only=reports, role=self.job.settings.get("role"))
            messages = await self.start_messages()
        except ToolError as error:
            return self.finish(EXIT_FAILED, f"the run's tools could not be started: {error}")
        self.save(messages)
        spent = Budget(self.job.settings, self.usage)
        malformed = 0
        while True:
            if (reason := spent.exhausted(self.usage)) is not None:
                return self.finish(EXIT_BUDGET, f"stopped at its budget: {reason}; redirect to continue")
            try:
                reply = await self.model.reply(messages, READ_TOOL_SPECS if reports else TOOL_SPECS)
            except ModelUnavailable as error:
                return self.finish(EXIT_FAILED, str(error))
            self.count(reply)
            messages.append(reply.message())
            self.save(messages)
            if not reply.tool_calls and not reports:
                return self.finish(EXIT_DONE, "")
            if not reply.tool_calls:
                try:
                    return self.report_findings(reply.content)
                except MalformedReview as error:
                    malformed += 1
                    if malformed > FINDINGS_RETRIES:
                        return self.finish(EXIT_FAILED, f"its findings could not be read after {malformed} answers: "
                                                        f"{error}")
                    self.report.line(f"» malformed findings ({error}); asking again")
                    messages.append({"role": "user", "content": retry_message(str(error))})
                    continue
            for call in reply.tool_calls:
                messages.append(await self.run_tool(call, parse_arguments))
                self.save(messages)

    def count(self, reply: Any) -> None:
        usage = self.usage
        usage["turns"] += 1
        usage["prompt_tokens"] += reply.prompt_tokens
        usage["completion_tokens"] += reply.completion_tokens
        usage["cost"] = None if reply.cost is None or usage["cost"] is None else usage["cost"] + reply.cost
        self.report.record(usage=usage)

    async def run_tool(self, call: dict[str, Any], parse_arguments: Callable[[str], dict]) -> dict[str, Any]:
        name = call["function"]["name"]
        try:
            arguments = parse_arguments(call["function"]["arguments"])
            self.report.line(f"→ {name} {describe_call(arguments)}")
            result = await self.tools.call(name, arguments)
            shown = result
        except (ToolError, ValueError) as error:
            self.report.line(f"→ {name} refused: {error}" if isinstance(error, ToolError) else f"→ {name}: {error}")
            result = shown = f"error: {error}"
        lines = shown.splitlines()
        for line in lines[:LOGGED_RESULT_LINES]:
            self.report.line(f"  {line}")
        if len(lines) > LOGGED_RESULT_LINES:
            self.report.line(f"  … {len(lines) - LOGGED_RESULT_LINES} more lines")
        return {"role": "tool", "tool_call_id": call["id"] or name, "content": result}

    def report_findings(self, answer: str | None) -> int:
        """Finish with the findings of a final answer (a security agent's); MalformedReview when it has none."""
        source = f"{role_of(self.job.settings).name}:{self.job.run.agent}"
        found, explanation = parse_findings(answer or "", source)
        return self.finish(EXIT_DONE, "", findings=[f.to_json() for f in found], explanation=explanation)

    def finish(self, code: int, message: str, **reported: Any) -> int:
        self.report.record(result=message, code=code, **reported)
        if message:
            self.report.line(f"» {message}")
        return code


class Budget:
    """The turn, token and cost limits of one working session (each redirect gets a fresh one)."""

    def __init__(self, settings: dict[str, Any], usage: dict[str, Any]) -> None:
        self.settings = settings
        self.start = dict(usage)

    def exhausted(self, usage: dict[str, Any]) -> str | None:
        turns = usage["turns"] - self.start["turns"]
        tokens = (usage["prompt_tokens"] + usage["completion_tokens"]
                  - self.start["prompt_tokens"] - self.start["completion_tokens"])
        if turns >= int(self.settings.get("max_turns") or 50):
            return f"{turns} turns"
        if self.settings.get("max_tokens") and tokens >= self.settings["max_tokens"]:
            return f"{tokens} tokens (max_tokens {self.settings['max_tokens']})"
        cost = usage.get("cost")
        if self.settings.get("max_cost") and cost is not None and cost - (self.start.get("cost") or 0) \
                >= self.settings["max_cost"]:
            return f"${cost:.2f} (max_cost ${self.settings['max_cost']:.2f})"
        return None


def describe_call(arguments: dict[str, Any]) -> str:
    """A tool call's arguments, short enough for one log line."""
    parts = []
    for key, value in arguments.items():
        text = value if isinstance(value, str) else json.dumps(value)
        text = text.replace("\n", "⏎")
        parts.append(f"{key}={text[:60]}{'…' if len(text) > 60 else ''}" if key != "path" else text)
    return " ".join(parts)


WORK_LINES = ("Use the tools to explore, change and verify the code. Paths are relative to the repository root.",
              "When you are done, reply with a short summary of what you changed and why, without calling a tool.")
# An agent whose role reports findings reads, and answers with findings in the reviewer's schema.
FINDINGS_LINES = ("Use the tools to read and search the code; you cannot change files or run commands. Paths are "
                  "relative to the repository root.", PRIORITY_GUIDE,
                  "Each finding names the path and the line range in the current version of the file, and may "
                  "suggest replacement text for exactly those lines. Confidence is 0..1.",
                  "When you are done, reply without calling a tool.", *answer_format())
FINDINGS_RETRIES = 2  # malformed final answers put back to the model before the run fails


def system_prompt(run: Run, instructions: str) -> str:
    lines = [
        f"You are {run.agent}, a coding agent working in a git worktree of a repository (your working "
        "directory); the run is reviewed by a human conductor before anything is merged.",
        *role_lines(run.agent_config),
        *(FINDINGS_LINES if role_of(run.agent_config).reports_findings else WORK_LINES),
    ]
    lines.extend(boundary_lines(run.spec_config))
    if instructions:
        lines.append("\nThe repository's own instructions for agents:\n\n" + instructions)
    return "\n".join(lines)


def task_prompt(run: Run) -> str:
    return f"Task{f' (spec {run.spec})' if run.spec else ''}:\n\n{run.task}"


def job_for(store: RunStore, request: dict[str, Any]) -> Job:
    """The job a client asked for: its run, with the key and redirect the client brought."""
    run_id = request["run_id"]
    secrets = request.get("secrets") if isinstance(request.get("secrets"), dict) else {}
    run = store.load(run_id)
    if run.workflow and not request.get("review"):  # a workflow's stage: its agent, its role, its task
        from orchestra.core.runs.workflow import read_plan, staged
        run = staged(run, read_plan(store.run_dir(run_id)))
    return Job(run=run, run_dir=store.run_dir(run_id), api_key=request.get("api_key") or None,
               secrets={str(name): str(value) for name, value in secrets.items()},
               redirect=request.get("redirect") or None, retry_base=float(request.get("retry_base") or 1.0))


async def run_job(job: Job, reporter: Reporter, tools: RemoteTools) -> int:
    """One working session of the agent, from its run record to its exit status."""
    if job.settings.get("api_key_env") and not job.api_key:
        reporter.record(result=f"the environment variable {job.settings['api_key_env']} (api_key_env) is not set; "
                               "export it where orchestra runs", code=EXIT_FAILED)
        return EXIT_FAILED
    return await LlmAgent(job, reporter, tools).work()
