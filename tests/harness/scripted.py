"""What every fake model server of the tests shares: a scripted queue of replies, a threaded HTTP server
on 127.0.0.1 started and stopped as a context manager, and every request recorded. Stdlib only.

A vendor's fake (fake_openai, fake_anthropic, fake_gemini, fake_responses) subclasses ScriptedServer: it
names itself, says what its replies are and where its clients point (`url_suffix`, e.g. "/v1"), and builds
its HTTP server in `make_server()`; its handlers call `_track`/`_untrack` for their connections and record
requests under `_cond`, taking the next reply from `_script` (or `default`).
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class ScriptedServer:
    """Context manager: `with FakeX() as server:` starts it, exit stops it (and releases hanging replies).

    `FakeX(*replies, default=None)` may pre-load the script; `start()`/`stop()` are the non-context-manager
    spelling."""

    name = "fake"              # the thread's name, and what messages call the server
    url_suffix = ""            # what clients add to host:port ("/v1" for OpenAI-style clients)
    reply_type: type = object  # what script() accepts
    counted = "model"          # what wait_for_requests counts, in its message ("chat", "messages", …)

    def __init__(self, *replies: Any, default: Any = None) -> None:
        self.requests: list[dict] = []
        self.headers: list[Any] = []
        self.default = default
        self._script: list[Any] = list(replies)
        self._cond = threading.Condition()
        self._stop_event = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._live: dict[socket.socket, threading.Thread] = {}
        self._url = ""

    def make_server(self) -> ThreadingHTTPServer:
        """The vendor's HTTP server, bound to 127.0.0.1 on a free port, its handlers talking to self."""
        raise NotImplementedError

    # -- lifecycle
    @property
    def url(self) -> str:
        """The base URL to hand to clients, e.g. "http://127.0.0.1:PORT" plus url_suffix."""
        if not self._url:
            raise RuntimeError(f"{type(self).__name__} is not running; use `with {type(self).__name__}() as server:`")
        return self._url

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        self._stop_event.clear()
        self._server = self.make_server()
        host, port = self._server.server_address[:2]
        self._url = f"http://{host}:{port}{self.url_suffix}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01},
                                        name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Release hanging replies, stop accepting, close open connections, join handlers."""
        server = self._server
        if server is None:
            return
        self._stop_event.set()
        server.shutdown()
        server.server_close()
        with self._cond:
            live = dict(self._live)
        for conn in live:
            try:
                conn.shutdown(socket.SHUT_RDWR)  # wakes a handler waiting for a keep-alive request
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for thread in [*live.values(), self._thread]:
            if thread is not None and thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting
    def script(self, *replies: Any) -> None:
        """Append replies; each model request consumes the next one."""
        for reply in replies:
            if not isinstance(reply, self.reply_type):
                raise TypeError(f"script() takes Reply objects, got {reply!r}")
        with self._cond:
            self._script.extend(replies)

    @property
    def pending(self) -> int:
        """How many scripted replies have not been consumed yet."""
        with self._cond:
            return len(self._script)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> None:
        """Block until at least `count` model requests arrived; AssertionError on timeout."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(f"fake server: expected {count} {self.counted} request(s) within {timeout}s, "
                                     f"got {len(self.requests)}")

    # -- called from handler threads
    def _next_reply(self) -> Any:
        """The next scripted reply, or the default (call with _cond held)."""
        return self._script.pop(0) if self._script else self.default

    def _track(self, conn: socket.socket, thread: threading.Thread) -> None:
        with self._cond:
            self._live[conn] = thread

    def _untrack(self, conn: socket.socket, thread: threading.Thread | None = None) -> None:
        with self._cond:
            self._live.pop(conn, None)


class FakeHTTPServer(ThreadingHTTPServer):
    """The HTTP server of a fake: on 127.0.0.1, a free port, one daemon thread per connection; clients that
    hang up (timeouts, a killed CLI, a cut test) are normal here, anything else is reported as a bug."""

    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, fake: ScriptedServer, handler: type[BaseHTTPRequestHandler]) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):  # ConnectionError and TimeoutError included
            return
        super().handle_error(request, client_address)


class TrackedHandler(BaseHTTPRequestHandler):
    """A fake's request handler: HTTP/1.1 without logging, each connection tracked so that stop() can
    release and join it. `software` names the fake in its Server header."""

    server: FakeHTTPServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    software: str | None = None

    def version_string(self) -> str:
        return f"{self.software}/1.0" if self.software else super().version_string()

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, threading.current_thread())

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._untrack(self.connection, threading.current_thread())

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass
