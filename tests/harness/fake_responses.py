"""An offline, scripted server for the OpenAI Responses API (what Codex CLI speaks), for tests.

Usage::

    from tests.harness.fake_responses import FakeResponses, text, function_call, status

    with FakeResponses() as server:
        server.script(function_call("exec_command", {"cmd": "echo hi > a.txt"}), text("Done."))
        ...  # run codex with -c openai_base_url=server.url (or a provider whose base_url is server.url)
        assert server.requests[1]["input"][-1]["type"] == "function_call_output"

The server listens on 127.0.0.1 on a free port and answers ``POST .../responses`` with the next
scripted :class:`Reply`, streamed as Server-Sent Events the way Codex consumes them:
``response.created``, per output item ``response.output_item.added`` (text as
``response.output_text.delta`` events) and ``response.output_item.done``, then
``response.completed`` carrying the response id and its usage. ``GET .../models`` lists
``fake-model``. A WebSocket upgrade (``GET .../responses``, which Codex tries before HTTP) is
refused with 404 and recorded in ``refused``. Every POST is recorded (parsed body in
``requests``, headers in ``headers``, case-insensitive) before it is answered. Stdlib only;
nothing is written to disk.

Codex's tools as 0.171.0 sends them for a model it has no profile for (``fake-model``):
``exec_command`` ({"cmd": ...}: a shell command, its answer a ``function_call_output``),
``write_stdin``, ``view_image``, ``request_user_input``, goals and sub-agent tools, ``web_search``;
see :func:`tool_names`.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from tests.harness.fake_openai import _error_body, _Headers, _words
from tests.harness.scripted import FakeHTTPServer, ScriptedServer, TrackedHandler

__all__ = ["FakeResponses", "Reply", "custom_call", "function_call", "hang", "status", "text", "tool_names"]

MODEL_ID = "fake-model"
EXHAUSTED_MESSAGE = "fake server: script exhausted"


# --------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class Reply:
    """One scripted answer. Build it with the module-level constructors, not directly."""

    kind: str  # "message" | "status" | "hang"
    items: tuple[dict, ...] = ()  # output items without ids (text messages, function and custom tool calls)
    input_tokens: int = 10
    output_tokens: int = 5
    code: int = 200
    message: str = ""
    seconds: float = 0.0
    chunk_delay: float = 0.0


def text(content: str, *, input_tokens: int = 10, output_tokens: int = 5, chunk_delay: float = 0.0) -> Reply:
    """An assistant message holding content, streamed a word per delta (chunk_delay seconds apart)."""
    if not isinstance(content, str):
        raise TypeError(f"text() wants a str, got {type(content).__name__}")
    item = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": content}]}
    return Reply("message", (item,), input_tokens, output_tokens, chunk_delay=float(chunk_delay))


def function_call(name: str, arguments: dict, *, content: str | None = None) -> Reply:
    """A call of the function tool name (e.g. "exec_command"), after an optional message."""
    if not isinstance(arguments, dict):
        raise TypeError(f"function_call() wants the arguments as a dict, got {arguments!r}")
    call = {"type": "function_call", "name": name, "arguments": json.dumps(arguments)}
    return Reply("message", (*_said(content), call))


def custom_call(name: str, tool_input: str, *, content: str | None = None) -> Reply:
    """A call of the freeform (custom) tool name, e.g. apply_patch with a patch as its input."""
    call = {"type": "custom_tool_call", "name": name, "input": tool_input}
    return Reply("message", (*_said(content), call))


def status(code: int, message: str = "") -> Reply:
    """An HTTP error with an OpenAI-shaped body (a 401 says "Incorrect API key provided")."""
    if not 400 <= code <= 599:
        raise ValueError(f"status() is for HTTP errors (400-599), got {code}")
    return Reply("status", code=code, message=message)


def hang(seconds: float) -> Reply:
    """Read the request, send nothing for seconds (or until the server stops), then close."""
    return Reply("hang", seconds=float(seconds))


def tool_names(request: dict) -> list[str]:
    """The names of the tools a request offers (namespaces by their own name)."""
    return [tool.get("name") or tool.get("type", "?") for tool in request.get("tools") or ()]


def _said(content: str | None) -> tuple[dict, ...]:
    return (text(content).items[0],) if content else ()


# --------------------------------------------------------------------------- HTTP


class _Handler(TrackedHandler):

    def _route(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/")

    def do_GET(self) -> None:
        path = self._route()
        if path.endswith("/models"):
            self._send_json(200, {"object": "list", "data": [{"id": MODEL_ID, "object": "model",
                                                                "created": 1700000000, "owned_by": "fake"}]})
            return
        if self.headers.get("Upgrade", "").lower() == "websocket":
            self.server.fake._refuse(f"GET {path} (websocket)")
        else:
            self.server.fake._refuse(f"GET {path}")
        self._send_raw(404, _error_body(404, f"fake server: no route GET {path}"))

    def do_POST(self) -> None:
        path = self._route()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if not path.endswith("/responses"):
            self.server.fake._refuse(f"POST {path}")
            self._send_raw(404, _error_body(404, f"fake server: no route POST {path}"))
            return
        try:
            request = json.loads(body or b"null")
        except ValueError:
            request = None
        if not isinstance(request, dict):
            self.server.fake._record({"_unparsed": body.decode("utf-8", "replace")}, _Headers(self.headers.items()))
            self._send_raw(400, _error_body(400, "fake server: request body is not a JSON object"))
            return
        reply = self.server.fake._record(request, _Headers(self.headers.items()))
        if reply is None:
            count = len(self.server.fake.requests)
            self._send_raw(500, _error_body(500, f"{EXHAUSTED_MESSAGE} (request #{count})"))
            return
        _Answer(self, request, reply, self.server.fake._stop_event).send()

    def _send_json(self, code: int, obj: object) -> None:
        self._send_raw(code, json.dumps(obj).encode())

    def _send_raw(self, code: int, data: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


class _Answer:
    """Writes one scripted reply to one request as an SSE stream."""

    def __init__(self, handler: _Handler, request: dict, reply: Reply, stop: threading.Event) -> None:
        self.h, self.reply, self.stop = handler, reply, stop
        self.number = len(handler.server.fake.requests)
        self.id = f"resp_fake_{self.number}"
        self.model = request.get("model") if isinstance(request.get("model"), str) else MODEL_ID

    def send(self) -> None:
        if self.reply.kind == "status":
            self.h._send_raw(self.reply.code, _error_body(self.reply.code, self.reply.message))
        elif self.reply.kind == "hang":
            self.stop.wait(self.reply.seconds)
            self.h.close_connection = True
        else:
            self._stream()

    def _response(self, status: str, output: list[dict]) -> dict:
        response: dict[str, Any] = {"id": self.id, "object": "response", "created_at": int(time.time()),
                                    "status": status, "model": self.model, "output": output}
        if status == "completed":
            i, o = self.reply.input_tokens, self.reply.output_tokens
            response["usage"] = {"input_tokens": i, "input_tokens_details": {"cached_tokens": 0},
                                 "output_tokens": o, "output_tokens_details": {"reasoning_tokens": 0},
                                 "total_tokens": i + o}
        return response

    def _stream(self) -> None:
        self.h.send_response(200)
        self.h.send_header("Content-Type", "text/event-stream")
        self.h.send_header("Cache-Control", "no-cache")
        self.h.send_header("Transfer-Encoding", "chunked")
        self.h.end_headers()
        self._event("response.created", {"response": self._response("in_progress", [])})
        done = [self._item(index, item) for index, item in enumerate(self.reply.items)]
        self._event("response.completed", {"response": self._response("completed", done)})
        self.h.wfile.write(b"0\r\n\r\n")
        self.h.wfile.flush()

    def _item(self, index: int, item: dict) -> dict:
        """Stream one output item; the finished item (with its ids) is returned."""
        whole = {**item, "id": f"item_{self.number}_{index}", "status": "completed"}
        if item["type"] in ("function_call", "custom_tool_call"):
            whole["call_id"] = f"call_{self.number}_{index}"
        if item["type"] != "message":
            self._event("response.output_item.added", {"output_index": index, "item": whole})
        else:
            self._event("response.output_item.added", {"output_index": index,
                                                       "item": {**whole, "status": "in_progress", "content": []}})
            for piece in _words(item["content"][0]["text"]):
                if self.reply.chunk_delay and self.stop.wait(self.reply.chunk_delay):
                    raise ConnectionAbortedError("fake server: stopped in the middle of a slow stream")
                self._event("response.output_text.delta", {"item_id": whole["id"], "output_index": index,
                                                           "content_index": 0, "delta": piece})
        self._event("response.output_item.done", {"output_index": index, "item": whole})
        return whole

    def _event(self, kind: str, data: dict) -> None:
        payload = f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()
        self.h.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
        self.h.wfile.flush()


# --------------------------------------------------------------------------- server


class FakeResponses(ScriptedServer):
    """Context manager: `with FakeResponses() as server:` starts it, exit stops it (releasing hanging replies).

    `url` is "http://127.0.0.1:PORT/v1"; `refused` holds the requests it has no answer for (WebSocket
    upgrades, other routes)."""

    name, url_suffix, reply_type, counted = "fake-responses", "/v1", Reply, "responses"

    def __init__(self, *replies: Reply, default: Reply | None = None) -> None:
        super().__init__(*replies, default=default)
        self.refused: list[str] = []

    def make_server(self) -> FakeHTTPServer:
        return FakeHTTPServer(self, _Handler)

    def _record(self, request: dict, headers: _Headers) -> Reply | None:
        with self._cond:
            self.requests.append(request)
            self.headers.append(headers)
            reply = None
            if "_unparsed" not in request:
                reply = self._next_reply()
            self._cond.notify_all()
            return reply

    def _refuse(self, what: str) -> None:
        with self._cond:
            self.refused.append(what)
