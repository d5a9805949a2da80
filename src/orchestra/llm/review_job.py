"""An llm reviewer's job in the llm host: each part of the change put to the model, its answer read.

The supervisor writes what the reviewer is asked (the parts of the diff with their prompts, see
core.gates.review) to a file in the run's directory and starts the run's llm client with
`--review FILE`; the host runs this job instead of the coding agent. The model may read the candidate
through three read-only tools (list_files, read_file, search), run by the tool runner in a read-only
jail; it answers each part with the findings JSON. A malformed answer is put back to it with the
reason, `retries` times, then the part (and so the gate) fails closed. The job's one record,
{"review": {...}}, carries the findings, explanations and usage to the supervisor.
"""

from __future__ import annotations

import json
from pathlib import Path
from collections.abc import Callable
from typing import Any

from orchestra.core.agents.tools import READ_TOOL_SPECS, ToolError
from orchestra.core.gates.review import MalformedReview, Part, parse_answer, retry_message
from orchestra.llm.remote_tools import RemoteTools

MAX_TOOL_TURNS = 24  # reads per part before the reviewer must answer


async def run_review_job(request: dict[str, Any], reporter: Any, tools: RemoteTools, api_key: str | None) -> int:
    """Review every part; the record says what was found, or why there is no verdict. Exit 0 either way
    (the supervisor reads the record; an exit without one is a failure of the job itself)."""
    from orchestra.llm.model import ModelUnavailable, parse_arguments

    asked = json.loads(Path(request["review"]).read_text(encoding="utf-8"))
    reviewer = asked["reviewer"]
    model, usage = one_shot_model(reviewer, api_key, request, reporter)
    result: dict[str, Any] = {"findings": [], "explanations": [], "error": None, "attempts": 0}
    try:
        await tools.open(asked["worktree"], (), (), read_only=True)
    except ToolError as error:
        result["error"] = f"the reviewer's read-only tools could not be started: {error}"
    retries = int(asked.get("retries", 2))
    for raw in asked["parts"] if result["error"] is None else []:
        part = Part(tuple(raw["paths"]), raw["diff"], raw["index"], raw["of"])
        messages: list[dict[str, Any]] = [{"role": "system", "content": asked["system"]},
                                          {"role": "user", "content": raw["prompt"]}]
        reporter.line(f"» reviewing part {part.index} of {part.of}: {', '.join(part.paths[:6])}"
                      + (" …" if len(part.paths) > 6 else ""))
        try:
            found = await _review_part(model, messages, part, asked["source"], retries, usage, result,
                                       tools, reporter, parse_arguments)
        except ModelUnavailable as error:
            result["error"] = str(error)
            break
        if found is None:
            break
        result["findings"] += [f.to_json() for f in found[0]]
        if found[1]:
            result["explanations"].append(found[1] if part.of == 1 else f"Part {part.index}: {found[1]}")
    reporter.record(review=result, usage=usage)
    return 0


async def _review_part(model: Any, messages: list[dict[str, Any]], part: Part, source: str, retries: int,
                       usage: dict[str, Any], result: dict[str, Any], tools: RemoteTools, reporter: Any,
                       parse_arguments: Any) -> tuple[list, str] | None:
    """(findings, explanation) for one part, or None after result["error"] was set."""
    return await ask_until_parsed(model, messages, lambda text: parse_answer(text, part, source), MalformedReview,
                                  retry_message, retries, usage, result, tools, reporter, parse_arguments,
                                  report_usage=True)


def one_shot_model(agent: dict[str, Any], api_key: str | None, request: dict[str, Any], reporter: Any
                   ) -> tuple[Any, dict[str, Any]]:
    """The model of a one-shot, read-only question (a review, a spec draft) and its usage so far (none): its
    notes go to the output, its text is not streamed."""
    from orchestra.llm.model import Model, ModelSettings
    model = Model(ModelSettings(agent["model"], agent.get("api_base"), api_key,
                                float(agent.get("request_timeout") or 120.0), float(request.get("retry_base") or 1.0)),
                  on_text=lambda text: None, on_note=lambda text: reporter.line(f"» {text}"))
    return model, {"model": agent["model"], "prompt_tokens": 0, "completion_tokens": 0, "cost": 0.0, "turns": 0}


async def ask_until_parsed(model: Any, messages: list[dict[str, Any]], parse: Callable[[str], Any],
                           malformed_error: type[Exception], retry_text: Callable[[str], str], retries: int,
                           usage: dict[str, Any], result: dict[str, Any], tools: RemoteTools, reporter: Any,
                           parse_arguments: Any, report_usage: bool = False,
                           max_tool_turns: int = MAX_TOOL_TURNS) -> Any:
    """Let the model read (the read tools, a bounded number of turns) until it answers; parse(answer), asking
    again with retry_text(why) after a malformed one, up to retries times; None after result["error"] was set.
    A reviewer's and a spec drafter's one-shot, read-only question."""
    malformed = tool_turns = 0
    while True:
        reply = await model.reply(messages, READ_TOOL_SPECS if tool_turns < max_tool_turns else [])
        count_usage(usage, reply)
        if report_usage:
            reporter.record(usage=usage)
        messages.append(reply.message())
        if reply.tool_calls:
            tool_turns += 1
            for call in reply.tool_calls:
                messages.append(await tool_result(call, tools, reporter, parse_arguments))
            continue
        result["attempts"] += 1
        try:
            return parse(reply.content)
        except malformed_error as error:
            malformed += 1
            reporter.line(f"» malformed answer ({error}); " + ("asking again" if malformed <= retries else "giving up"))
            if malformed > retries:
                result["error"] = f"malformed answer after {malformed} attempts: {error}"
                return None
            messages.append({"role": "user", "content": retry_text(str(error))})


async def tool_result(call: dict[str, Any], tools: RemoteTools, reporter: Any, parse_arguments: Any) -> dict[str, Any]:
    """One read-only tool call of the model run by the job's tools, as the tool message that answers it."""
    name = call["function"]["name"]
    try:
        arguments = parse_arguments(call["function"]["arguments"])
        reporter.line(f"→ {name} {json.dumps(arguments)[:120]}")
        content = await tools.call(name, arguments)
    except (ToolError, ValueError) as error:
        content = f"error: {error}"
    return {"role": "tool", "tool_call_id": call["id"] or name, "content": content}


def count_usage(usage: dict[str, Any], reply: Any) -> None:
    """Add one reply's tokens and cost to the job's usage (the cost unknown once any reply's is)."""
    usage["turns"] += 1
    usage["prompt_tokens"] += reply.prompt_tokens
    usage["completion_tokens"] += reply.completion_tokens
    usage["cost"] = None if reply.cost is None or usage["cost"] is None else usage["cost"] + reply.cost
