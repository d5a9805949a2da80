"""An offline, scripted Gemini API (generativelanguage) server for tests.

Usage::

    from tests.harness.fake_gemini import FakeGemini, text, function_calls, status

    with FakeGemini() as server:
        server.script(function_calls(("write_file", {"file_path": "a.py", "content": "x = 1\\n"})),
                      text("Done."))
        # GOOGLE_GEMINI_BASE_URL=server.url GEMINI_API_KEY=... gemini --prompt "..."
        assert server.requests[0]["contents"][-1]["parts"][0]["text"] == "..."

The server listens on 127.0.0.1 on a free port. ``POST /{version}/models/{model}:generateContent``
and ``:streamGenerateContent`` (``?alt=sse``: server-sent events) answer with the next scripted
:class:`Reply`; ``:countTokens`` answers a count from the request's size and ``:embedContent`` a
small vector, neither consuming the script; ``GET /{version}/models`` lists ``fake-gemini``.
Every request is recorded: generate requests (parsed body) in ``requests`` with their headers in
``headers``, their model in ``models`` and their method in ``methods``; every request of any
kind, as ``"METHOD path"``, in ``calls`` (what a client asks at start-up). The key a client sent
(``x-goog-api-key`` header or ``key`` query parameter) is in ``keys``. Nothing is written to
disk. Stdlib only.

Errors look like Google's: ``{"error": {"code", "message", "status", "details"}}``;
``status(400, api_key_invalid=True)`` is the answer to a key Google does not know.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from tests.harness.scripted import FakeHTTPServer, ScriptedServer, TrackedHandler
from urllib.parse import parse_qs, urlsplit

__all__ = ["FakeGemini", "Reply", "function_calls", "hang", "status", "text"]

MODEL_ID = "fake-gemini"
EXHAUSTED_MESSAGE = "fake server: script exhausted"
API_KEY_INVALID = "API key not valid. Please pass a valid API key."
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}
_GENERATE = re.compile(r"^/[^/]+/models/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)$")


# --------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class Reply:
    """One scripted answer. Build it with the module-level constructors, not directly."""

    kind: str  # "text" | "function_calls" | "status" | "hang"
    content: str | None = None
    calls: tuple[tuple[str, str], ...] = ()  # (function name, arguments as a JSON string)
    prompt_tokens: int = 10
    completion_tokens: int = 5
    code: int = 200
    message: str = ""
    reason: str = ""  # google.rpc.ErrorInfo reason, e.g. API_KEY_INVALID
    seconds: float = 0.0


def text(content: str, *, prompt_tokens: int = 10, completion_tokens: int = 5) -> Reply:
    """A model turn holding `content`; finishReason STOP. Streamed one word per event."""
    if not isinstance(content, str):
        raise TypeError(f"text() wants a str, got {type(content).__name__}")
    return Reply("text", content=content, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)


def function_calls(*calls: tuple[str, dict], content: str | None = None, prompt_tokens: int = 10,
                   completion_tokens: int = 5) -> Reply:
    """A model turn calling functions (the client's tools); each call is (name, args dict).

    The calls get ids "call_1", "call_2", ... within this reply; `content`, when given, is a text
    part before them. Arguments are serialised now, so later changes to the dicts do not matter.
    """
    if not calls:
        raise ValueError("function_calls() needs at least one (name, args) pair")
    encoded = []
    for call in calls:
        if not (isinstance(call, tuple) and len(call) == 2 and isinstance(call[0], str) and isinstance(call[1], dict)):
            raise TypeError(f"each function call must be a (name, args dict) tuple, got {call!r}")
        encoded.append((call[0], json.dumps(call[1])))
    return Reply("function_calls", content=content, calls=tuple(encoded), prompt_tokens=prompt_tokens,
                 completion_tokens=completion_tokens)


def status(code: int, message: str = "", *, api_key_invalid: bool = False) -> Reply:
    """An HTTP error with a Google-shaped body; api_key_invalid gives the answer to an unknown key."""
    if not 400 <= code <= 599:
        raise ValueError(f"status() is for HTTP errors (400-599), got {code}")
    if api_key_invalid:
        return Reply("status", code=code, message=message or API_KEY_INVALID, reason="API_KEY_INVALID")
    return Reply("status", code=code, message=message)


def hang(seconds: float) -> Reply:
    """Read the request, send nothing for `seconds` (or until the server stops), then close."""
    return Reply("hang", seconds=float(seconds))


def _error_body(code: int, message: str, reason: str = "") -> bytes:
    if not message:
        try:
            message = f"fake server: {HTTPStatus(code).phrase}"
        except ValueError:
            message = f"fake server: HTTP {code}"
    error: dict[str, Any] = {"code": code, "message": message,
                             "status": _STATUS_NAMES.get(code, "INTERNAL" if code >= 500 else "FAILED_PRECONDITION")}
    if reason:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
                             "domain": "googleapis.com",
                             "metadata": {"service": "generativelanguage.googleapis.com"}}]
    return json.dumps({"error": error}).encode()


def _words(content: str) -> list[str]:
    """Streaming pieces: one word each, whitespace kept, joining back exactly."""
    pieces = [p for p in re.split(r"(?<=\s)(?=\S)", content) if p]
    return pieces or [content]


# --------------------------------------------------------------------------- HTTP


class _Handler(TrackedHandler):
    software = "FakeGemini"

    def _key(self) -> str | None:
        query = parse_qs(urlsplit(self.path).query)
        return self.headers.get("x-goog-api-key") or (query.get("key") or [None])[0]

    def do_GET(self) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        self.server.fake._note(f"GET {path}", self._key())
        if re.fullmatch(r"/[^/]+/models", path):
            self._send_json(200, {"models": [_model_entry()]})
        elif re.fullmatch(r"/[^/]+/models/[^/:]+", path):
            self._send_json(200, _model_entry(path.rsplit("/", 1)[1]))
        else:
            self._send_raw(404, _error_body(404, f"fake server: no route GET {path}"))

    def do_POST(self) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        body = self._read_body()
        fake = self.server.fake
        fake._note(f"POST {path}", self._key())
        route = _GENERATE.match(path)
        try:
            request = json.loads(body or b"null")
        except ValueError:
            request = None
        if route is None:
            self._send_raw(404, _error_body(404, f"fake server: no route POST {path}"))
        elif not isinstance(request, dict):
            self._send_raw(400, _error_body(400, "fake server: request body is not a JSON object"))
        elif route["method"] == "countTokens":
            self._send_json(200, {"totalTokens": max(1, len(body) // 4)})
        elif route["method"] in ("embedContent", "batchEmbedContents"):
            self._send_json(200, {"embedding": {"values": [0.0] * 8}})
        elif route["method"] in ("generateContent", "streamGenerateContent"):
            reply = fake._record(request, dict(self.headers.items()), route["model"], route["method"])
            if reply is None:
                self._send_raw(500, _error_body(500, f"{EXHAUSTED_MESSAGE} (request #{len(fake.requests)})"))
            else:
                _Answer(self, reply, route["model"], route["method"] == "streamGenerateContent").send()
        else:
            self._send_raw(404, _error_body(404, f"fake server: no method {route['method']}"))

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

    def _send_json(self, code: int, obj: object) -> None:
        self._send_raw(code, json.dumps(obj).encode())

    def _send_raw(self, code: int, data: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


def _model_entry(model: str = MODEL_ID) -> dict:
    return {"name": f"models/{model}", "displayName": model, "inputTokenLimit": 1048576,
            "outputTokenLimit": 65536, "supportedGenerationMethods": ["generateContent", "countTokens"]}


class _Answer:
    """Writes one scripted reply to one generate request."""

    def __init__(self, handler: _Handler, reply: Reply, model: str, stream: bool) -> None:
        self.h = handler
        self.reply = reply
        self.model = model
        self.stream = stream
        self.id = f"fake-response-{len(handler.server.fake.requests)}"

    def send(self) -> None:
        if self.reply.kind == "status":
            self.h._send_raw(self.reply.code, _error_body(self.reply.code, self.reply.message, self.reply.reason))
        elif self.reply.kind == "hang":
            self.h.server.fake._stop_event.wait(self.reply.seconds)
            self.h.close_connection = True
        elif self.stream:
            self._stream()
        else:
            self.h._send_json(200, self._response(self._parts(), finish=True))

    def _parts(self) -> list[dict]:
        parts: list[dict] = [{"text": self.reply.content}] if self.reply.content else []
        for index, (name, args) in enumerate(self.reply.calls, start=1):
            parts.append({"functionCall": {"id": f"call_{index}", "name": name, "args": json.loads(args)}})
        return parts

    def _response(self, parts: list[dict], *, finish: bool) -> dict:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        response: dict[str, Any] = {"candidates": [candidate], "modelVersion": self.model, "responseId": self.id}
        if finish:
            candidate["finishReason"] = "STOP"
            p, c = self.reply.prompt_tokens, self.reply.completion_tokens
            response["usageMetadata"] = {"promptTokenCount": p, "candidatesTokenCount": c, "totalTokenCount": p + c}
        return response

    def _stream(self) -> None:
        self.h.send_response(200)
        self.h.send_header("Content-Type", "text/event-stream")
        self.h.send_header("Transfer-Encoding", "chunked")
        self.h.end_headers()
        pieces = [[{"text": word}] for word in _words(self.reply.content)] if self.reply.content else []
        calls = [part for part in self._parts() if "functionCall" in part]
        if calls:
            pieces.append(calls)
        pieces = pieces or [[{"text": ""}]]
        for index, parts in enumerate(pieces):
            self._event(self._response(parts, finish=index == len(pieces) - 1))
        self.h.wfile.write(b"0\r\n\r\n")
        self.h.wfile.flush()

    def _event(self, obj: dict) -> None:
        payload = f"data: {json.dumps(obj)}\r\n\r\n".encode()
        self.h.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
        self.h.wfile.flush()


# --------------------------------------------------------------------------- server


class FakeGemini(ScriptedServer):
    """Context manager: `with FakeGemini() as server:` starts it, exit stops it (and releases hanging replies).

    `FakeGemini(*replies, default=None)` may pre-load the script; `default` answers once it is spent.
    `url` (GOOGLE_GEMINI_BASE_URL) is "http://127.0.0.1:PORT", no version. Besides requests and headers it
    records each generate request's model and method, and every call ("METHOD /path") with its key.
    """

    name, reply_type, counted = "fake-gemini", Reply, "generate"

    def __init__(self, *replies: Reply, default: Reply | None = None) -> None:
        super().__init__(*replies, default=default)
        self.models: list[str] = []
        self.methods: list[str] = []
        self.calls: list[str] = []
        self.keys: list[str | None] = []

    def make_server(self) -> FakeHTTPServer:
        return FakeHTTPServer(self, _Handler)

    def tool_names(self, index: int = 0) -> list[str]:
        """The function names request `index` offered the model."""
        tools = self.requests[index].get("tools") or []
        return [decl["name"] for tool in tools for decl in tool.get("functionDeclarations") or []]

    def _note(self, call: str, key: str | None) -> None:
        with self._cond:
            self.calls.append(call)
            self.keys.append(key)

    def _record(self, request: dict, headers: dict[str, str], model: str, method: str) -> Reply | None:
        with self._cond:
            self.requests.append(request)
            self.headers.append(headers)
            self.models.append(model)
            self.methods.append(method)
            reply = self._next_reply()
            self._cond.notify_all()
            return reply
