"""The tool runner: the built-in agent's tools, run inside the run's jail.

The run's llm client starts it as the supervisor prescribes (in the run's sandbox when the machine
can make one, with the jail's environment and no provider key) and owns it: requests arrive on
stdin, answers leave on stdout (tool_protocol), one at a time. The commands the model runs inherit
this process's environment. When stdin closes or SIGTERM arrives, the command running is killed and
the runner ends. It stays small (no asyncio): there is one per working run.

    python -m orchestra.llm.tool_runner
"""

from __future__ import annotations

import os
import queue
import signal
import sys
import threading
from pathlib import Path
from typing import Any, BinaryIO

from orchestra.core.agents.tools import Toolbox, ToolError
from orchestra.llm.tool_protocol import MAX_MESSAGE, ProtocolError, answer, decode, encode, refusal


class ToolRunner:
    """Answers requests with the run's toolbox."""

    def __init__(self) -> None:
        self.toolbox: Toolbox | None = None

    def respond(self, line: bytes) -> dict[str, Any]:
        try:
            message = decode(line)
        except ProtocolError as error:
            return refusal(None, f"the tool runner could not read the request: {error}")
        try:
            return answer(message["id"], self.perform(message))
        except ToolError as error:
            return refusal(message["id"], str(error))
        except Exception as error:  # a bug must become the tool's result, not end the runner
            return refusal(message["id"], f"the tool failed: {type(error).__name__}: {error}")

    def perform(self, message: dict[str, Any]) -> str:
        op = message.get("op")
        if op == "open":
            role = message.get("role")
            self.toolbox = Toolbox(Path(message["worktree"]), tuple(message.get("allow") or ()),
                                   tuple(message.get("deny") or ()), read_only=bool(message.get("read_only")),
                                   role=role if isinstance(role, str) else None)
            return "open"
        if self.toolbox is None:
            raise ToolError("the tool runner was not opened on a worktree")
        if op == "instructions":
            return self.toolbox.repository_instructions()
        if op == "tool":
            arguments = message.get("arguments")
            if not isinstance(arguments, dict):
                raise ToolError("the arguments must be a JSON object")
            return self.toolbox.call(str(message.get("name")), arguments)
        raise ToolError(f"unknown request {op!r}")


def read_requests(stdin: BinaryIO, lines: queue.Queue[bytes]) -> None:
    """Stdin's lines into the queue; at its end (the client went away) this process is told to stop,
    which ends a command that is still running."""
    while line := stdin.readline(MAX_MESSAGE + 1):
        lines.put(line)
    os.kill(os.getpid(), signal.SIGTERM)


def stop(signum: int, frame: object) -> None:
    raise SystemExit(0)  # raised where the runner waits: a running command is killed on the way out


def main() -> int:
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, stop)
    lines: queue.Queue[bytes] = queue.Queue()
    threading.Thread(target=read_requests, args=(sys.stdin.buffer, lines), daemon=True).start()
    runner, out = ToolRunner(), sys.stdout.buffer
    while True:
        out.write(encode(runner.respond(lines.get())))
        out.flush()


if __name__ == "__main__":
    sys.exit(main())
