"""A spec draft's job in the llm host: the model reads the repository and proposes a spec as JSON.

`orchestra spec draft` (core.onboarding.draft) writes what the agent is asked to a private file and starts
an llm client with `--draft FILE`; the host runs this job. There is no run: the model reads a temporary
checkout of the target branch through the three read-only tools (list_files, read_file, search), run by
the tool runner in a read-only jail, and answers with one JSON object (core.score.drafts). A malformed
answer is put back to it with the reason, `retries` times, then the job gives up. Its one record,
{"draft": {...}}, carries the checked draft (or why there is none) and the usage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orchestra.core.agents.tools import ToolError
from orchestra.core.onboarding.draft_prompt import MAX_READS
from orchestra.core.score.drafts import MalformedDraft, parse_draft
from orchestra.llm.remote_tools import RemoteTools
from orchestra.llm.review_job import ask_until_parsed, one_shot_model



async def run_draft_job(request: dict[str, Any], reporter: Any, tools: RemoteTools, api_key: str | None) -> int:
    """Draft the spec; the record holds the draft or why there is none. Exit 0 either way (the command reads
    the record; an exit without one is a failure of the job itself)."""
    from orchestra.llm.model import ModelUnavailable

    asked = json.loads(Path(request["draft"]).read_text(encoding="utf-8"))
    agent = asked["agent"]
    model, usage = one_shot_model(agent, api_key, request, reporter)
    result: dict[str, Any] = {"draft": None, "error": None, "attempts": 0}
    messages = [{"role": "system", "content": asked["system"]}, {"role": "user", "content": asked["prompt"]}]
    try:
        await tools.open(asked["worktree"], (), (), read_only=True)
        result["draft"] = await _draft(model, messages, int(asked.get("retries", 2)), usage, result, tools, reporter)
    except ToolError as error:
        result["error"] = f"the drafter's read-only tools could not be started: {error}"
    except ModelUnavailable as error:
        result["error"] = str(error)
    reporter.record(draft=result, usage=usage)
    return 0


async def _draft(model: Any, messages: list[dict[str, Any]], retries: int, usage: dict[str, Any],
                 result: dict[str, Any], tools: RemoteTools, reporter: Any) -> dict[str, Any] | None:
    """The checked draft as JSON, or None after result["error"] was set."""
    from orchestra.llm.model import parse_arguments
    again = lambda why: (f"Your answer could not be used: {why}. Answer again "  # noqa: E731
                         "with ONE JSON object meeting the schema, and nothing else.")
    return await ask_until_parsed(model, messages, lambda text: parse_draft(text).to_json(), MalformedDraft, again,
                                  retries, usage, result, tools, reporter, parse_arguments,
                                  max_tool_turns=MAX_READS)
