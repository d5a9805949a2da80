"""The llm client's side of its tool runner: starts it, hands it one request at a time, checks its answers.

The runner shares the client's process group, so stopping the run (the supervisor signals the group)
ends it too; in a sandbox its pid namespace ends every command it started with it. A runner that
died (a command the model ran may kill it) is started again for the next request, and opened on
the worktree the host last asked for.
"""

from __future__ import annotations

import os
import select
import subprocess
import time
from typing import Any

from orchestra.llm.tool_protocol import MAX_MESSAGE, ProtocolError, decode_response, encode, refusal

ANSWER_TIMEOUT = 600.0  # seconds; a command stops at 120, so only a stuck runner takes longer


class RunnerProcess:
    """One tool runner started with argv and env."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.argv, self.env = argv, env
        self.proc: subprocess.Popen[bytes] | None = None
        self.pending = b""
        self.opening: dict[str, Any] | None = None  # the last open request, replayed on a new runner

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     close_fds=True)
        self.pending = b""

    def ask(self, message: dict[str, Any]) -> dict[str, Any]:
        """The runner's checked answer to message; an error answer when it cannot give one."""
        if message.get("op") == "open":
            self.opening = message
        if self.proc is None or self.proc.poll() is not None:
            again = self.proc is not None
            self.start()
            if again and self.opening is not None and message is not self.opening \
                    and not self.exchange(self.opening)["ok"]:
                return refusal(message["id"], "the tool runner ended and could not be started again")
        return self.exchange(message)

    def exchange(self, message: dict[str, Any]) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        number = message["id"]
        data = encode(message)
        if len(data) > MAX_MESSAGE:
            return refusal(number, f"the request is too large ({len(data)} bytes; at most {MAX_MESSAGE})")
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
            line = self.read_line(time.monotonic() + ANSWER_TIMEOUT)
        except OSError:
            line = None
        if line is None:
            return refusal(number, self.gone())
        try:
            return decode_response(line, number)
        except ProtocolError as error:
            return refusal(number, f"the tool runner's answer could not be read ({error})")

    def read_line(self, deadline: float) -> bytes | None:
        """The runner's next line; None at its end, after the deadline, or past MAX_MESSAGE."""
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0 or len(self.pending) > MAX_MESSAGE or not select.select([fd], [], [], left)[0]:
                self.stop()
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return None
            self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        return line

    def gone(self) -> str:
        assert self.proc is not None
        try:
            status = self.proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            self.stop()
            return "the tool runner did not answer in time; it was stopped"
        return f"the tool runner ended (exit status {status}); it is started again for the next call"

    def stop(self) -> None:
        """End the runner: closing its stdin asks it to (killing its command), a kill makes sure."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            self.proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
