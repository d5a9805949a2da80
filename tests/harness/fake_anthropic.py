"""An offline, scripted Anthropic Messages API server for tests (what Claude Code talks to).

Usage::

    from tests.harness.fake_anthropic import FakeAnthropic, text, tool_use, status

    with FakeAnthropic() as server:
        server.script(tool_use(("Edit", {"file_path": "/w/a.py", "old_string": "x", "new_string": "y"})),
                      text("Done."))
        # ANTHROPIC_BASE_URL=server.url claude -p "..."
        assert server.requests[1]["messages"][-1]["content"][0]["type"] == "tool_result"

The server listens on 127.0.0.1 on a free port; `url` has no `/v1` (clients add it, as
ANTHROPIC_BASE_URL expects). ``POST /v1/messages`` (any query, e.g. ``?beta=true``) answers with the
next scripted :class:`Reply`, streamed as server-sent events when the request asks for a stream
(message_start, ping, content_block_start / content_block_delta (text_delta, input_json_delta) /
content_block_stop per block, message_delta with the stop_reason and usage, message_stop), else as
one JSON message. ``POST /v1/messages/count_tokens`` answers a token count and ``GET /v1/models``
lists ``fake-model``; neither consumes the script. Every messages request is recorded (parsed body in
``requests``, headers in ``headers``); every request of any kind is listed in ``calls`` as
"METHOD /path". When the script is exhausted the server answers with ``default`` if one is set, else
with a 500 whose message says so. Nothing is written to disk. Stdlib only.

HTTP details: HTTP/1.1 with keep-alive; JSON answers carry a Content-Length, streams use chunked
transfer encoding, one HTTP chunk per event, flushed at once.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from tests.harness.scripted import FakeHTTPServer, ScriptedServer, TrackedHandler

__all__ = ["FakeAnthropic", "Reply", "hang", "status", "text", "tool_use"]

MODEL_ID = "fake-model"
EXHAUSTED_MESSAGE = "fake server: script exhausted"


# --------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class Reply:
    """One scripted answer. Build it with the module-level constructors, not directly."""

    kind: str  # "message" | "status" | "hang"
    content: str | None = None
    calls: tuple[tuple[str, str], ...] = ()  # (tool name, input as a JSON string)
    input_tokens: int = 10
    output_tokens: int = 5
    code: int = 200
    message: str = ""
    seconds: float = 0.0


def text(content: str, *, input_tokens: int = 10, output_tokens: int = 5) -> Reply:
    """An assistant message holding one text block; stop_reason "end_turn"."""
    if not isinstance(content, str):
        raise TypeError(f"text() wants a str, got {type(content).__name__}")
    return Reply("message", content=content, input_tokens=input_tokens, output_tokens=output_tokens)


def tool_use(*calls: tuple[str, dict], content: str | None = None, input_tokens: int = 10,
             output_tokens: int = 5) -> Reply:
    """An assistant message calling tools (an optional text block first); each call is (name, input dict).

    The blocks get ids "toolu_fake_<request>_<n>"; stop_reason is "tool_use". Inputs are serialised
    now, so later changes to the dicts do not affect the reply.
    """
    if not calls:
        raise ValueError("tool_use() needs at least one (name, input) pair")
    encoded = []
    for call in calls:
        if not (isinstance(call, tuple) and len(call) == 2 and isinstance(call[0], str) and isinstance(call[1], dict)):
            raise TypeError(f"each tool call must be a (name, input dict) tuple, got {call!r}")
        encoded.append((call[0], json.dumps(call[1])))
    return Reply("message", content=content, calls=tuple(encoded), input_tokens=input_tokens,
                 output_tokens=output_tokens)


def status(code: int, message: str = "") -> Reply:
    """An HTTP error with an Anthropic-shaped body ({"type": "error", "error": {"type", "message"}})."""
    if not 400 <= code <= 599:
        raise ValueError(f"status() is for HTTP errors (400-599), got {code}")
    return Reply("status", code=code, message=message)


def hang(seconds: float) -> Reply:
    """Read the request, send nothing for `seconds` (or until the server stops), then close."""
    return Reply("hang", seconds=float(seconds))


# --------------------------------------------------------------------------- helpers


class _Headers(dict):
    """A plain dict of request headers whose lookups ignore case (keys keep the sent case)."""

    def _key(self, key: object) -> object:
        if isinstance(key, str) and not dict.__contains__(self, key):
            for existing in self.keys():
                if existing.lower() == key.lower():
                    return existing
        return key

    def __getitem__(self, key: object) -> str:
        return dict.__getitem__(self, self._key(key))

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, self._key(key))

    def get(self, key: object, default: Any = None) -> Any:
        return dict.get(self, self._key(key), default)


# The error types of https://docs.anthropic.com/en/api/errors, by status.
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
                403: "permission_error", 404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
                500: "api_error", 504: "timeout_error", 529: "overloaded_error"}


def _error_body(code: int, message: str) -> bytes:
    if not message:
        message = "invalid x-api-key" if code == 401 else f"fake server: {_phrase(code)}"
    kind = _ERROR_TYPES.get(code, "api_error" if code >= 500 else "invalid_request_error")
    return json.dumps({"type": "error", "error": {"type": kind, "message": message},
                       "request_id": "req_fake"}).encode()


def _phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return f"HTTP {code}"


def _words(content: str) -> list[str]:
    """Split text into streaming pieces: one word each, whitespace kept, joining back exactly."""
    return [p for p in re.split(r"(?<=\s)(?=\S)", content) if p] or [content]


def _pieces(data: str, count: int = 3) -> list[str]:
    """Split a JSON string into up to `count` pieces (streamed as separate input_json_delta events)."""
    step = max(1, -(-len(data) // count))
    return [data[i:i + step] for i in range(0, len(data), step)] or [""]


# --------------------------------------------------------------------------- HTTP


class _Handler(TrackedHandler):
    software = "FakeAnthropic"

    def _route(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/")

    def do_GET(self) -> None:
        path = self._route()
        self.server.fake._call(f"GET {path}")
        if path == "/v1/models":
            self._send_json(200, {"data": [_model_entry()], "has_more": False, "first_id": MODEL_ID,
                                  "last_id": MODEL_ID})
        elif path.startswith("/v1/models/"):
            self._send_json(200, _model_entry() | {"id": path.rsplit("/", 1)[1]})
        else:
            self._send_raw(404, _error_body(404, f"fake server: no route GET {path}"))

    def do_POST(self) -> None:
        path = self._route()
        body = self._read_body()
        self.server.fake._call(f"POST {path}")
        if path == "/v1/messages/count_tokens":
            self._send_json(200, {"input_tokens": max(1, len(body) // 4)})
            return
        if path != "/v1/messages":
            self._send_raw(404, _error_body(404, f"fake server: no route POST {path}"))
            return
        try:
            request = json.loads(body or b"null")
        except ValueError:
            request = None
        if not isinstance(request, dict):
            self.server.fake._record({"_unparsed": body.decode("utf-8", "replace")}, _Headers(self.headers.items()),
                                     consume=False)
            self._send_raw(400, _error_body(400, "fake server: request body is not a JSON object"))
            return
        reply = self.server.fake._record(request, _Headers(self.headers.items()), consume=True)
        if reply is None:
            self._send_raw(500, _error_body(500, f"{EXHAUSTED_MESSAGE} (request #{len(self.server.fake.requests)})"))
            return
        _Answer(self, request, reply, self.server.fake._stop_event).send()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = bytearray()
            while size := int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16):
                data += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return bytes(data)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send_json(self, code: int, obj: object) -> None:
        self._send_raw(code, json.dumps(obj).encode())

    def _send_raw(self, code: int, data: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", "req_fake")
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


def _model_entry() -> dict:
    return {"type": "model", "id": MODEL_ID, "display_name": "Fake Model", "created_at": "2025-01-01T00:00:00Z"}


class _Answer:
    """Writes one scripted reply to one messages request."""

    def __init__(self, handler: _Handler, request: dict, reply: Reply, stop: threading.Event) -> None:
        self.h = handler
        self.reply = reply
        self.stop = stop
        self.stream = bool(request.get("stream"))
        self.model = request.get("model") if isinstance(request.get("model"), str) else MODEL_ID
        self.number = len(handler.server.fake.requests)

    def send(self) -> None:
        if self.reply.kind == "status":
            self.h._send_raw(self.reply.code, _error_body(self.reply.code, self.reply.message))
        elif self.reply.kind == "hang":
            self.stop.wait(self.reply.seconds)
            self.h.close_connection = True  # nothing sent: the client sees the connection close
        elif self.stream:
            self._stream()
        else:
            self.h._send_json(200, self._message(self._blocks(), self._stop_reason()))

    def _blocks(self) -> list[dict]:
        blocks: list[dict] = [{"type": "text", "text": self.reply.content}] if self.reply.content else []
        for n, (name, arguments) in enumerate(self.reply.calls, start=1):
            blocks.append({"type": "tool_use", "id": f"toolu_fake_{self.number}_{n}", "name": name,
                           "input": json.loads(arguments)})
        return blocks

    def _stop_reason(self) -> str:
        return "tool_use" if self.reply.calls else "end_turn"

    def _message(self, content: list[dict], stop_reason: str | None) -> dict:
        return {"id": f"msg_fake_{self.number}", "type": "message", "role": "assistant", "model": self.model,
                "content": content, "stop_reason": stop_reason, "stop_sequence": None,
                "usage": {"input_tokens": self.reply.input_tokens, "output_tokens": self.reply.output_tokens,
                          "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}

    def _stream(self) -> None:
        self._start()
        start = self._message([], None)
        start["usage"]["output_tokens"] = 1
        self._event("message_start", {"type": "message_start", "message": start})
        self._event("ping", {"type": "ping"})
        for index, block in enumerate(self._blocks()):
            if block["type"] == "text":
                self._block(index, {"type": "text", "text": ""}, "text_delta", "text", _words(block["text"]))
            else:
                head = {key: block[key] for key in ("type", "id", "name")} | {"input": {}}
                self._block(index, head, "input_json_delta", "partial_json", _pieces(json.dumps(block["input"])))
        self._event("message_delta", {"type": "message_delta",
                                      "delta": {"stop_reason": self._stop_reason(), "stop_sequence": None},
                                      "usage": {"output_tokens": self.reply.output_tokens}})
        self._event("message_stop", {"type": "message_stop"})
        self.h.wfile.write(b"0\r\n\r\n")
        self.h.wfile.flush()

    def _block(self, index: int, head: dict, delta_type: str, field: str, pieces: list[str]) -> None:
        self._event("content_block_start", {"type": "content_block_start", "index": index, "content_block": head})
        for piece in pieces:
            self._event("content_block_delta", {"type": "content_block_delta", "index": index,
                                                "delta": {"type": delta_type, field: piece}})
        self._event("content_block_stop", {"type": "content_block_stop", "index": index})

    def _start(self) -> None:
        self.h.send_response(200)
        self.h.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.h.send_header("Cache-Control", "no-cache")
        self.h.send_header("request-id", "req_fake")
        self.h.send_header("Transfer-Encoding", "chunked")
        self.h.end_headers()
        self.h.wfile.flush()

    def _event(self, name: str, data: dict) -> None:
        payload = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
        self.h.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
        self.h.wfile.flush()


# --------------------------------------------------------------------------- server


class FakeAnthropic(ScriptedServer):
    """Context manager: `with FakeAnthropic() as server:` starts it, exit stops it (and releases hanging replies).

    `FakeAnthropic(*replies, default=None)` may pre-load the script; `start()`/`stop()` are the
    non-context-manager spelling. `url` (ANTHROPIC_BASE_URL) is "http://127.0.0.1:PORT": claude adds /v1.
    `calls` holds every request as "METHOD /path".
    """

    name, reply_type, counted = "fake-anthropic", Reply, "messages"

    def __init__(self, *replies: Reply, default: Reply | None = None) -> None:
        super().__init__(*replies, default=default)
        self.calls: list[str] = []

    def make_server(self) -> FakeHTTPServer:
        return FakeHTTPServer(self, _Handler)

    def _call(self, line: str) -> None:
        with self._cond:
            self.calls.append(line)

    def _record(self, request: dict, headers: dict[str, str], *, consume: bool) -> Reply | None:
        with self._cond:
            self.requests.append(request)
            self.headers.append(headers)
            reply = self._next_reply() if consume else None
            self._cond.notify_all()
            return reply
