"""The built-in agent's tool calls, on their way from the llm host to the run's tool runner and back.

The llm host never touches a worktree. Each request travels host → the run's llm client (over the
host's socket, as a line starting with CALL_PREFIX) → the client's tool runner (a line on its stdin),
which works inside the run's jail; the response comes back the same way (a line on the runner's
stdout, then a line on the socket). One response per request, JSON objects, one a line:

    {"v": 1, "id": 1, "op": "open", "worktree": "...", "allow": [...], "deny": [...], "read_only": false,
     "role": "tests"}                                          the runner's toolbox
    {"v": 1, "id": 2, "op": "instructions"}                    the repository's instructions for agents
    {"v": 1, "id": 3, "op": "tool", "name": "read_file", "arguments": {...}}   one tool call of the model
    {"v": 1, "id": 3, "ok": true, "result": "..."}   or   {"v": 1, "id": 3, "ok": false, "error": "..."}

A refusal, a failure, a runner that died or answered nonsense: all are error responses, which the
model gets as the tool's result. A runner's answer is untrusted (the model's commands run next to
it): it is checked here and only ever becomes a tool result.
"""

from __future__ import annotations

import json
from typing import Any

VERSION = 1
JOB_VERSION = 4             # of the job, the first line a client sends the host (the run, its key); 4: drafts
CALL_PREFIX = "\x1etool "   # a host's line to its client that is a request, not output to relay
MAX_MESSAGE = 16 * 1024 * 1024  # bytes in one line; a write_file of a large file fits


class ProtocolError(ValueError):
    """A line that is not a message of this version."""


def request(number: int, op: str, **fields: Any) -> dict[str, Any]:
    return {"v": VERSION, "id": number, "op": op, **fields}


def answer(number: Any, result: str) -> dict[str, Any]:
    return {"v": VERSION, "id": number, "ok": True, "result": result}


def refusal(number: Any, error: str) -> dict[str, Any]:
    return {"v": VERSION, "id": number, "ok": False, "error": error}


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False).encode("utf-8", "replace") + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """The message on line; ProtocolError when it is not one (of this version)."""
    try:
        message = json.loads(line.decode("utf-8", "replace"))
    except ValueError:
        raise ProtocolError("not JSON") from None
    if not isinstance(message, dict) or message.get("v") != VERSION or not isinstance(message.get("id"), int):
        raise ProtocolError(f"not a version {VERSION} message")
    return message


def decode_response(line: bytes, number: int) -> dict[str, Any]:
    """The response to request number on line, checked; ProtocolError when it is anything else."""
    message = decode(line)
    if message["id"] != number:
        raise ProtocolError(f"an answer to request {message['id']}, not {number}")
    if message.get("ok") is True and isinstance(message.get("result"), str):
        return message
    if message.get("ok") is False and isinstance(message.get("error"), str):
        return message
    raise ProtocolError("neither a result nor an error")
