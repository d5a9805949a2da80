"""The built-in agent's tools as the llm host reaches them: through the run's client, in its tool runner.

Each call is a request line to the client (tool_protocol); the answer arrives on the same connection
and is matched by its id. The host itself never opens a file of the worktree or starts a command.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from orchestra.core.agents.tools import ToolError
from orchestra.llm.tool_protocol import CALL_PREFIX, ProtocolError, decode, encode, request


class RemoteTools:
    """The tools of one job; write sends a line to its client, listen() takes the client's answers."""

    def __init__(self, write: Callable[[bytes], None]) -> None:
        self.write = write
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.last_id = 0

    async def open(self, worktree: str, allow: tuple[str, ...], deny: tuple[str, ...], read_only: bool = False,
                   role: str | None = None) -> None:
        """Point the runner's toolbox at the worktree, with the spec's boundaries (and the role's) for writing
        (read_only: no writing and no commands at all, for a reviewer or a security agent)."""
        await self.ask("open", worktree=worktree, allow=list(allow), deny=list(deny), read_only=read_only, role=role)

    async def instructions(self) -> str:
        """The repository's own instructions for agents (AGENTS.md, …), as the runner reads them."""
        return await self.ask("instructions")

    async def call(self, name: str, arguments: dict[str, Any]) -> str:
        """One tool call of the model: its result, or ToolError with what the model is told."""
        return await self.ask("tool", name=name, arguments=arguments)

    async def ask(self, op: str, **fields: Any) -> str:
        self.last_id += 1
        number = self.last_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[number] = future
        try:
            self.write(CALL_PREFIX.encode() + encode(request(number, op, **fields)))
            answer = await future
        finally:
            self.pending.pop(number, None)
        if not answer.get("ok"):
            raise ToolError(str(answer.get("error") or "the tool failed"))
        return str(answer.get("result", ""))

    async def listen(self, reader: asyncio.StreamReader) -> None:
        """Take the client's answers until it goes away (then returns)."""
        while line := await reader.readline():
            try:
                answer = decode(line)
            except ProtocolError:
                continue
            future = self.pending.get(answer["id"])
            if future is not None and not future.done():
                future.set_result(answer)
