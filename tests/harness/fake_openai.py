"""An offline, scripted, OpenAI-compatible chat-completions server for tests.

Usage::

    from tests.harness.fake_openai import FakeOpenAI, text, tool_calls, status

    with FakeOpenAI() as server:
        server.script(text("Hello there"), tool_calls(("read_file", {"path": "a.py"})))
        reply = litellm.completion(model="openai/fake-model", api_base=server.url,
                                   api_key="sk-test", messages=[...])
        assert server.requests[0]["messages"] == [...]

For a slow, model-like stream give a reply a ``chunk_delay``: ``text("...", chunk_delay=0.05)``
waits 50 ms before each streamed chunk after the first.

The server listens on 127.0.0.1 on a free port, answers ``POST .../chat/completions``
(with or without ``/v1``, streaming or not) with the next scripted :class:`Reply`, and
``GET .../models`` with a list holding ``fake-model``. Every chat request is recorded
(parsed body in ``requests``, headers in ``headers``) before it is answered. Nothing is
written to disk. Stdlib only.

HTTP details that matter to clients: the server speaks HTTP/1.1 with keep-alive. Plain
JSON answers carry a Content-Length; streaming answers use chunked transfer encoding, one
HTTP chunk per SSE event, flushed at once. A connection cut mid-body therefore looks to the
client exactly like a real network cut (an incomplete chunked or Content-Length body).
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from tests.harness.scripted import FakeHTTPServer, ScriptedServer, TrackedHandler

__all__ = [
    "FakeOpenAI",
    "Reply",
    "cut_stream",
    "hang",
    "malformed",
    "status",
    "text",
    "tool_calls",
]

MODEL_ID = "fake-model"
EXHAUSTED_MESSAGE = "fake server: script exhausted"
CUT_STREAM_TEXT = "This reply is cut off before it is finished and never says done"


# --------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class Reply:
    """One scripted answer. Build it with the module-level constructors, not directly."""

    kind: str  # "text" | "tool_calls" | "status" | "hang" | "malformed" | "cut_stream"
    content: str | None = None
    calls: tuple[tuple[str, str], ...] = ()  # (function name, arguments as a JSON string)
    prompt_tokens: int = 10
    completion_tokens: int = 5
    code: int = 200
    message: str = ""
    retry_after: float | None = None
    seconds: float = 0.0
    after_chunks: int = 1
    chunk_delay: float = 0.0  # seconds between streamed chunks (streaming only)


def text(content: str, *, prompt_tokens: int = 10, completion_tokens: int = 5, chunk_delay: float = 0.0) -> Reply:
    """An assistant message holding `content`; finish_reason "stop".

    `chunk_delay` (seconds) makes a streamed reply slow: the server waits that long before each
    chunk after the first (the role delta), the way a model produces tokens. Non-streaming
    answers ignore it.
    """
    if not isinstance(content, str):
        raise TypeError(f"text() wants a str, got {type(content).__name__}")
    return Reply("text", content=content, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                 chunk_delay=_delay(chunk_delay))


def tool_calls(
    *calls: tuple[str, dict],
    content: str | None = None,
    prompt_tokens: int = 10,
    completion_tokens: int = 5,
    chunk_delay: float = 0.0,
) -> Reply:
    """An assistant message calling tools; each call is (name, arguments dict).

    The calls get ids "call_1", "call_2", ... (numbered within this reply);
    finish_reason is "tool_calls". Arguments are serialised now, so later changes to
    the dicts do not affect the reply. `chunk_delay` is as for :func:`text` (it spaces the
    content's words and the calls' pieces alike).
    """
    if not calls:
        raise ValueError("tool_calls() needs at least one (name, arguments) pair")
    encoded = []
    for call in calls:
        if not (isinstance(call, tuple) and len(call) == 2 and isinstance(call[0], str) and isinstance(call[1], dict)):
            raise TypeError(f"each tool call must be a (name, arguments dict) tuple, got {call!r}")
        encoded.append((call[0], json.dumps(call[1])))
    return Reply(
        "tool_calls",
        content=content,
        calls=tuple(encoded),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        chunk_delay=_delay(chunk_delay),
    )


def _delay(seconds: float) -> float:
    seconds = float(seconds)
    if not seconds >= 0:  # also refuses NaN
        raise ValueError(f"chunk_delay must be >= 0 seconds, got {seconds}")
    return seconds


def status(code: int, message: str = "", *, retry_after: float | None = None) -> Reply:
    """An HTTP error with an OpenAI-shaped body; `retry_after` sets the Retry-After header."""
    if not 400 <= code <= 599:
        raise ValueError(f"status() is for HTTP errors (400-599), got {code}")
    return Reply("status", code=code, message=message, retry_after=retry_after)


def hang(seconds: float) -> Reply:
    """Read the request, send nothing for `seconds` (or until the server stops), then close."""
    return Reply("hang", seconds=float(seconds))


def malformed() -> Reply:
    """HTTP 200 whose body (or, when streaming, whose SSE data line) is not valid JSON."""
    return Reply("malformed")


def cut_stream(after_chunks: int = 1, *, content: str = CUT_STREAM_TEXT) -> Reply:
    """Close the connection part-way through a text reply holding `content`.

    Streaming: the role delta, then `after_chunks` content chunks (one word each), then the
    connection closes with neither a finish_reason chunk, nor ``data: [DONE]``, nor the
    end of the chunked body. Non-streaming: the headers announce the full body, half of
    it is sent, and the connection closes.
    """
    if after_chunks < 0:
        raise ValueError("after_chunks must be >= 0")
    return Reply("cut_stream", content=content, after_chunks=after_chunks)


# --------------------------------------------------------------------------- helpers


class _Headers(dict):
    """A plain dict of request headers whose lookups ignore case (keys keep the sent case)."""

    def _key(self, key: object) -> object:
        if isinstance(key, str) and not dict.__contains__(self, key):
            lowered = key.lower()
            for existing in self.keys():
                if existing.lower() == lowered:
                    return existing
        return key

    def __getitem__(self, key: object) -> str:
        return dict.__getitem__(self, self._key(key))

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, self._key(key))

    def get(self, key: object, default: Any = None) -> Any:
        return dict.get(self, self._key(key), default)


_ERROR_KINDS = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "model_not_found"),
    408: ("timeout", None),
    409: ("invalid_request_error", None),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
}


def _error_body(code: int, message: str) -> bytes:
    if not message and code == 401:
        # litellm maps an OpenAI 401 to AuthenticationError only when it sees this wording.
        message = "Incorrect API key provided (fake server)"
    if not message:
        try:
            message = f"fake server: {HTTPStatus(code).phrase}"
        except ValueError:
            message = f"fake server: HTTP {code}"
    kind, err_code = _ERROR_KINDS.get(code, ("server_error" if code >= 500 else "invalid_request_error", None))
    return json.dumps({"error": {"message": message, "type": kind, "param": None, "code": err_code}}).encode()


def _words(content: str) -> list[str]:
    """Split text into streaming pieces: one word each, whitespace kept, joining back exactly."""
    pieces = [p for p in re.split(r"(?<=\s)(?=\S)", content) if p]
    return pieces or [content]


def _pieces(arguments: str, count: int = 3) -> list[str]:
    """Split a JSON arguments string into up to `count` pieces (streamed separately)."""
    if len(arguments) < count:
        return [arguments]
    step = -(-len(arguments) // count)
    return [arguments[i : i + step] for i in range(0, len(arguments), step)]


# --------------------------------------------------------------------------- HTTP


class _Handler(TrackedHandler):
    software = "FakeOpenAI"

    # -- routing
    def _route(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/")

    def do_GET(self) -> None:
        path = self._route()
        if path.endswith("/models") or path == "/models":
            self._send_json(200, {"object": "list", "data": [_model_entry()]})
        elif path.endswith("/models/" + MODEL_ID):
            self._send_json(200, _model_entry())
        else:
            self._send_raw(404, _error_body(404, f"fake server: no route GET {path}"))

    def do_POST(self) -> None:
        path = self._route()
        body = self._read_body()
        if not path.endswith("/chat/completions"):
            self._send_raw(404, _error_body(404, f"fake server: no route POST {path}"))
            return
        try:
            request = json.loads(body or b"null")
        except ValueError:
            request = None
        valid = isinstance(request, dict)
        if not valid:
            request = {"_unparsed": body.decode("utf-8", "replace")}
        reply = self.server.fake._record(request, _Headers(self.headers.items()), consume=valid)
        if not valid:
            self._send_raw(400, _error_body(400, "fake server: request body is not a JSON object"))
            return
        if reply is None:
            self._send_raw(500, _error_body(500, f"{EXHAUSTED_MESSAGE} (request #{len(self.server.fake.requests)})"))
            return
        _Answer(self, request, reply, self.server.fake._stop_event).send()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    # -- low-level writers
    def _send_json(self, code: int, obj: object) -> None:
        self._send_raw(code, json.dumps(obj).encode())

    def _send_raw(self, code: int, data: bytes, extra: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


def _model_entry() -> dict:
    return {"id": MODEL_ID, "object": "model", "created": 1700000000, "owned_by": "fake-openai"}


class _Answer:
    """Writes one scripted reply to one request."""

    def __init__(self, handler: _Handler, request: dict, reply: Reply, stop: threading.Event) -> None:
        self.h = handler
        self.reply = reply
        self.stop = stop
        self.stream = bool(request.get("stream"))
        options = request.get("stream_options") or {}
        self.include_usage = bool(isinstance(options, dict) and options.get("include_usage"))
        self.model = request.get("model") if isinstance(request.get("model"), str) else MODEL_ID
        self.id = f"chatcmpl-fake-{len(handler.server.fake.requests)}"
        self.created = int(time.time())

    # -- dispatch
    def send(self) -> None:
        kind = self.reply.kind
        if kind == "status":
            self._status()
        elif kind == "hang":
            self.stop.wait(self.reply.seconds)
            self.h.close_connection = True  # nothing sent: the client sees the connection close
        elif kind == "malformed":
            self._malformed()
        elif kind == "cut_stream":
            self._cut()
        elif self.stream:
            self._stream_message()
        else:
            self._json_message()

    # -- error and fault replies
    def _status(self) -> None:
        extra = {}
        if self.reply.retry_after is not None:
            seconds = self.reply.retry_after
            extra["Retry-After"] = str(int(seconds)) if float(seconds).is_integer() else str(seconds)
        self.h._send_raw(self.reply.code, _error_body(self.reply.code, self.reply.message), extra)

    def _malformed(self) -> None:
        if not self.stream:
            self.h._send_raw(200, b'{"id": "chatcmpl-fake", "choices": [ this is not JSON')
            return
        self._start_stream()
        self._event('{"id": "chatcmpl-fake", "choices": [ this is not JSON')
        self._event("[DONE]")
        self._end_stream()

    def _cut(self) -> None:
        content = self.reply.content or ""
        self.h.close_connection = True
        if not self.stream:
            data = json.dumps(self._completion(content, [], "stop")).encode()
            self.h.send_response(200)
            self.h.send_header("Content-Type", "application/json")
            self.h.send_header("Content-Length", str(len(data)))
            self.h.end_headers()
            self.h.wfile.write(data[: len(data) // 2])
            self.h.wfile.flush()
            self._hard_close()
            return
        self._start_stream()
        self._chunk({"role": "assistant", "content": ""})
        for piece in _words(content)[: self.reply.after_chunks]:
            self._chunk({"content": piece})
        self._hard_close()

    def _hard_close(self) -> None:
        try:
            self.h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- normal replies
    def _message(self) -> tuple[str | None, list[dict], str]:
        reply = self.reply
        calls = [
            {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": args}}
            for i, (name, args) in enumerate(reply.calls, start=1)
        ]
        return reply.content, calls, ("tool_calls" if calls else "stop")

    def _usage(self) -> dict:
        p, c = self.reply.prompt_tokens, self.reply.completion_tokens
        return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}

    def _completion(self, content: str | None, calls: list[dict], finish: str) -> dict:
        message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
        if calls:
            message["tool_calls"] = calls
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": self._usage(),
        }

    def _json_message(self) -> None:
        content, calls, finish = self._message()
        self.h._send_json(200, self._completion(content, calls, finish))

    def _stream_message(self) -> None:
        content, calls, finish = self._message()
        self._start_stream()
        self._chunk({"role": "assistant", "content": "" if content is not None or not calls else None})
        if content:
            for piece in _words(content):
                self._pause()
                self._chunk({"content": piece})
        for index, call in enumerate(calls):
            head = {"index": index, "id": call["id"], "type": "function",
                    "function": {"name": call["function"]["name"], "arguments": ""}}
            self._pause()
            self._chunk({"tool_calls": [head]})
            for piece in _pieces(call["function"]["arguments"]):
                self._pause()
                self._chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        self._pause()
        self._chunk({}, finish=finish)
        if self.include_usage:
            self._event(json.dumps(self._chunk_obj(None, None) | {"choices": [], "usage": self._usage()}))
        self._event("[DONE]")
        self._end_stream()

    # -- streaming primitives
    def _pause(self) -> None:
        """Wait the reply's chunk_delay before the next chunk; a stopping server abandons the reply (a cut)."""
        if self.reply.chunk_delay and self.stop.wait(self.reply.chunk_delay):
            raise ConnectionAbortedError("fake server: stopped in the middle of a slow stream")

    def _start_stream(self) -> None:
        self.h.send_response(200)
        self.h.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.h.send_header("Cache-Control", "no-cache")
        self.h.send_header("Transfer-Encoding", "chunked")
        self.h.end_headers()
        self.h.wfile.flush()

    def _chunk_obj(self, delta: dict | None, finish: str | None) -> dict:
        obj: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish}],
        }
        if self.include_usage:
            obj["usage"] = None
        return obj

    def _chunk(self, delta: dict, finish: str | None = None) -> None:
        self._event(json.dumps(self._chunk_obj(delta, finish)))

    def _event(self, data: str) -> None:
        payload = f"data: {data}\n\n".encode()
        self.h.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
        self.h.wfile.flush()

    def _end_stream(self) -> None:
        self.h.wfile.write(b"0\r\n\r\n")
        self.h.wfile.flush()


# --------------------------------------------------------------------------- server


class FakeOpenAI(ScriptedServer):
    """Context manager: `with FakeOpenAI() as server:` starts it, exit stops it (and releases any hanging replies).

    `FakeOpenAI(*replies, default=None)` may pre-load the script; `start()`/`stop()` are
    the non-context-manager spelling. `url` is "http://127.0.0.1:PORT/v1".
    """

    name, url_suffix, reply_type, counted = "fake-openai", "/v1", Reply, "chat"

    def make_server(self) -> FakeHTTPServer:
        return FakeHTTPServer(self, _Handler)

    # -- called from handler threads
    def _record(self, request: dict, headers: dict[str, str], *, consume: bool) -> Reply | None:
        with self._cond:
            self.requests.append(request)
            self.headers.append(headers)
            reply = self._next_reply() if consume else None
            self._cond.notify_all()
            return reply
