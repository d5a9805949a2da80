"""The llm host: one process that runs every llm agent of the user, so litellm is loaded once.

Importing litellm costs seconds of CPU and ~150 MB per process; sixteen agents each in their own
process would spend a minute of CPU starting and over 2 GB of memory. Instead each run's supervisor
starts a small client (orchestra.llm.llm_client), which hands the run to this host over a Unix
socket in a private directory and relays what the agent reports back to the supervisor.

The host serves jobs concurrently on one event loop. It talks to the model and never touches a
worktree: each tool call goes back to the run's client, whose tool runner does it inside the run's
jail (remote_tools, tool_protocol). A client that goes away (the run was stopped, its supervisor
killed it) cancels its job; its tool runner and commands end with the client. With no job for a
while the host exits; the next client starts a new one.

    python -m orchestra.llm.llm_host SOCKET_PATH
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from orchestra.core.agents.wire import EXIT_PREFIX
from orchestra.core.base.procs import yield_cpu
from orchestra.llm.remote_tools import RemoteTools
from orchestra.llm.tool_protocol import JOB_VERSION, MAX_MESSAGE

IDLE_EXIT = float(os.environ.get("ORCHESTRA_LLM_HOST_IDLE") or 300)  # seconds without a job before exiting
HOST_NICENESS = 5  # on top of the run's own (the first client's supervisor's)


class Host:
    """Accepts jobs on a socket and runs each one as a task."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self.jobs = 0
        self.last_job = time.monotonic()

    async def serve(self) -> None:
        from orchestra.llm import model  # noqa: F401  litellm loads once, before the first job
        if self.socket_path.exists():
            self.socket_path.unlink()
        server = await asyncio.start_unix_server(self.handle, path=str(self.socket_path), limit=2 * MAX_MESSAGE)
        os.chmod(self.socket_path, 0o600)
        async with server:
            while self.jobs or time.monotonic() - self.last_job < IDLE_EXIT:
                await asyncio.sleep(min(1.0, IDLE_EXIT / 4))
        # The socket goes first, so a client arriving now starts a new host instead of reaching this one.
        if self.socket_path.exists():
            self.socket_path.unlink()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.jobs += 1
        try:
            request = json.loads((await reader.readline()).decode("utf-8"))
            tools = RemoteTools(writer.write)
            job = asyncio.ensure_future(self.run_job(request, writer, tools))
            gone = asyncio.ensure_future(tools.listen(reader))  # returns at EOF: the client went away
            done, _ = await asyncio.wait({job, gone}, return_when=asyncio.FIRST_COMPLETED)
            if job not in done:
                job.cancel()
                await asyncio.gather(job, return_exceptions=True)
            else:
                gone.cancel()
                code = job.result()
                writer.write(f"{EXIT_PREFIX}{code}\n".encode())
                await writer.drain()
        except ConnectionError:
            pass  # the client went away: its supervisor says what became of its run
        except (ValueError, KeyError):  # a request it cannot read: said in the host's log, not lost
            traceback.print_exc()
        finally:
            self.jobs -= 1
            self.last_job = time.monotonic()
            writer.close()

    async def run_job(self, request: dict, writer: asyncio.StreamWriter, tools: RemoteTools) -> int:
        from orchestra.llm.llm_agent import EXIT_FAILED, Reporter, job_for, run_job
        from orchestra.core.runs.store import RunStore

        def write(text: str) -> None:
            writer.write((text + "\n").encode("utf-8", "replace"))

        if request.get("v") != JOB_VERSION:
            Reporter(write, []).record(result="this llm host is from another version of orchestra; stop it "
                                              f"(its socket: {self.socket_path}) and restart the run", code=EXIT_FAILED)
            return EXIT_FAILED
        if request.get("draft"):  # a spec draft: no run, the target branch read-only (draft_job)
            return await self.run_draft(request, write, tools)
        job = job_for(RunStore(Path(request["state_dir"])), request)
        reporter = Reporter(write, [job.api_key] if job.api_key else [])
        try:
            if request.get("review"):  # a reviewer's job: the run's candidate, read-only (review_job)
                from orchestra.llm.review_job import run_review_job
                return await run_review_job(request, reporter, tools, job.api_key)
            return await run_job(job, reporter, tools)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a bug in one job must not end the others
            traceback.print_exc()
            reporter.record(result=f"orchestra's llm agent failed: {type(error).__name__}: {error}", code=EXIT_FAILED)
            return EXIT_FAILED

    async def run_draft(self, request: dict, write: Callable[[str], None], tools: RemoteTools) -> int:
        from orchestra.llm.draft_job import run_draft_job
        from orchestra.llm.llm_agent import EXIT_FAILED, Reporter
        api_key = request.get("api_key")
        reporter = Reporter(write, [api_key] if api_key else [])
        try:
            return await run_draft_job(request, reporter, tools, api_key)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a bug in one job must not end the others
            traceback.print_exc()
            reporter.record(result=f"orchestra's spec drafter failed: {type(error).__name__}: {error}",
                            code=EXIT_FAILED)
            return EXIT_FAILED


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="orchestra-llm-host")
    parser.add_argument("socket_path", type=Path)
    args = parser.parse_args(argv)
    # Agents' work yields the CPU to the conductor's UI: with 16 runs streaming, parsing the models'
    # chunks takes most of a core, and the keys must still answer at once.
    yield_cpu(os.nice(0) + HOST_NICENESS)  # its own session (started by an llm client): its autogroup too
    asyncio.run(Host(args.socket_path).serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
