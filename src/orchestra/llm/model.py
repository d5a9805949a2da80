"""One streamed model call through litellm, with retries, usage and cost, and failures explained.

Imported only in agent processes: importing litellm takes seconds and loads a price map, which
LITELLM_LOCAL_MODEL_COST_MAP keeps offline.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import litellm  # noqa: E402  (after the environment above)

litellm.suppress_debug_info = True
litellm.telemetry = False

RETRIES = 4
MAX_DELAY = 30.0


class ModelUnavailable(Exception):
    """The model could not be used; the message says what to fix."""


class _Retryable(Exception):
    """A failure worth another attempt (rate limit, server error, timeout, a cut-off reply)."""

    def __init__(self, message: str, retry_after: float | None = None, advice: str | None = None) -> None:
        super().__init__(message)
        self.retry_after, self.advice = retry_after, advice


@dataclass
class Reply:
    """What the model said in one turn."""

    content: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None

    def message(self) -> dict[str, Any]:
        """The assistant message to append to the conversation."""
        message: dict[str, Any] = {"role": "assistant", "content": self.content or None}
        if self.tool_calls:
            message["tool_calls"] = self.tool_calls
        return message


@dataclass
class ModelSettings:
    model: str
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    request_timeout: float = 120.0
    retry_base: float = 1.0


class Model:
    """Streams replies from one model; on_text gets the reply's text as it arrives."""

    def __init__(self, settings: ModelSettings, on_text: Callable[[str], None],
                 on_note: Callable[[str], None]) -> None:
        self.settings, self.on_text, self.on_note = settings, on_text, on_note

    async def reply(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Reply:
        """One reply, retrying rate limits, server errors, timeouts and cut-off replies with backoff."""
        for attempt in range(RETRIES + 1):
            try:
                return await self._stream(messages, tools)
            except _Retryable as failure:
                if attempt == RETRIES:
                    advice = failure.advice or (f"check that {self.settings.api_base or 'the provider'} is up "
                                                "and answering, then redirect or restart the run")
                    raise ModelUnavailable(f"{failure} — gave up after {RETRIES + 1} attempts; {advice}") from None
                delay = min(MAX_DELAY, failure.retry_after or self.settings.retry_base * 2 ** attempt)
                self.on_note(f"{failure}; retrying in {delay:.3g}s (attempt {attempt + 2} of {RETRIES + 1})")
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _stream(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Reply:
        reply, calls, finished, pending_text = Reply(), {}, False, ""
        try:
            stream = await litellm.acompletion(
                model=self.settings.model, messages=messages, tools=tools or None, stream=True,
                stream_options={"include_usage": True}, api_base=self.settings.api_base,
                api_key=self.settings.api_key, timeout=self.settings.request_timeout, num_retries=0,
                # With tools, litellm 1.106 first checks them for MCP servers, which needs the `mcp`
                # package (not installed: orchestra's tools are plain functions).
                _skip_mcp_handler=True)
            async for chunk in _with_timeout(stream, self.settings.request_timeout):
                usage = getattr(chunk, "usage", None)
                if usage:
                    reply.prompt_tokens = usage.prompt_tokens or reply.prompt_tokens
                    reply.completion_tokens = usage.completion_tokens or reply.completion_tokens
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                delta = choice.delta
                if delta.content:
                    reply.content += delta.content
                    pending_text += delta.content
                    *lines, pending_text = pending_text.split("\n")
                    for line in lines:
                        self.on_text(line)
                for call in delta.tool_calls or []:
                    _merge_call(calls, call)
                finished = finished or bool(choice.finish_reason)
        except _Retryable:
            raise
        except Exception as error:  # litellm raises many classes; sort them by what the user can do
            raise self._classify(error) from None
        if pending_text:
            self.on_text(pending_text)
        if not finished:
            raise _Retryable("the model's reply was cut off before it finished")
        reply.tool_calls = [calls[index] for index in sorted(calls)]
        self._fill_usage(reply, messages)
        return reply

    def _classify(self, error: Exception) -> Exception:
        status = getattr(error, "status_code", None)
        name = type(error).__name__
        text = _first_line(str(error))
        if isinstance(error, litellm.RateLimitError) or status == 429:
            return _Retryable("rate limit reached (HTTP 429)", _retry_after(error),
                              "wait, lower the number of parallel runs, or raise the provider's limit")
        if isinstance(error, (litellm.Timeout, asyncio.TimeoutError)) or "Timeout" in name:
            return _Retryable(f"no answer within {self.settings.request_timeout:g}s")
        if isinstance(error, litellm.AuthenticationError) or status in (401, 403):
            return ModelUnavailable(f"the model provider refused the API key (HTTP {status}); check the variable "
                                    "named by api_key_env in orchestra.toml")
        if isinstance(error, litellm.NotFoundError) or status == 404:
            return ModelUnavailable(f"model {self.settings.model!r} was not found at "
                                    f"{self.settings.api_base or 'the provider'}: {text}")
        if isinstance(error, litellm.BadRequestError) or status == 400:
            return ModelUnavailable(f"the provider rejected the request (HTTP 400): {text}")
        if isinstance(error, litellm.APIConnectionError) and status is None and "Connection" in text:
            return _Retryable(f"cannot connect to {self.settings.api_base or 'the provider'}")
        if status is not None and status >= 500 or isinstance(error, (litellm.InternalServerError,
                                                                        litellm.ServiceUnavailableError)):
            return _Retryable(f"the model server failed (HTTP {status or 500})")
        return _Retryable(f"the model's reply could not be read ({name}: {text})")

    def _fill_usage(self, reply: Reply, messages: list[dict[str, Any]]) -> None:
        """Count tokens the provider did not report, and price them from litellm's offline map."""
        model = self.settings.model
        try:
            if not reply.prompt_tokens:
                reply.prompt_tokens = litellm.token_counter(model=model, messages=messages)
            if not reply.completion_tokens:
                reply.completion_tokens = litellm.token_counter(model=model, text=reply.content or " ")
        except Exception:
            reply.cost = None  # tokens neither reported nor countable: the cost is unknown, not zero
            return
        try:
            prompt_cost, completion_cost = litellm.cost_per_token(
                model=model, prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens)
            reply.cost = prompt_cost + completion_cost
        except Exception:
            reply.cost = None  # a model the price map does not know (local models, test servers)


async def _with_timeout(stream: Any, seconds: float) -> Any:
    """The stream's chunks, failing when the server goes quiet for longer than a request may take."""
    iterator = stream.__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(iterator.__anext__(), seconds)
        except StopAsyncIteration:
            return
        except asyncio.TimeoutError:
            raise _Retryable(f"the model went quiet for {seconds:g}s in the middle of a reply") from None
        yield chunk


def _merge_call(calls: dict[int, dict[str, Any]], delta: Any) -> None:
    index = getattr(delta, "index", None) or 0
    call = calls.setdefault(index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
    if getattr(delta, "id", None):
        call["id"] = delta.id
    function = getattr(delta, "function", None)
    if function is not None:
        if getattr(function, "name", None):
            call["function"]["name"] += function.name
        if getattr(function, "arguments", None):
            call["function"]["arguments"] += function.arguments


def _retry_after(error: Exception) -> float | None:
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None) or {}
    try:
        return float(headers.get("retry-after") or headers.get("Retry-After"))
    except (TypeError, ValueError):
        return None


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:300]


def parse_arguments(raw: str) -> dict[str, Any]:
    """A tool call's arguments; ValueError with a readable reason when they are not a JSON object."""
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError as error:
        raise ValueError(f"the arguments are not valid JSON ({error.msg} at {error.pos})") from None
    if not isinstance(value, dict):
        raise ValueError("the arguments must be a JSON object")
    return value
