"""The agent process of an llm run: hands the run to the llm host, relays its report, runs its tools.

The supervisor runs this like any agent (own process group, output captured line by line), outside
the sandbox: it carries the model's key to the host, and its environment is the jail's plus that key
(the variable ORCHESTRA_LLM_KEY_ENV names) and the host's settings (ORCHESTRA_LLM_*). After `--`
comes the command of the run's tool runner, already wrapped in the run's jail by the supervisor:
this process starts it with its own environment minus the key and the host's settings, and hands it
every tool call the host sends (tool_protocol), so the model's file operations and commands happen
in the jail, never in the host.

It starts the host when none answers, copies the host's lines to stdout and exits with the job's
exit status. Killing it (stop, timeout) closes the connection, which cancels the job in the host;
the tool runner, in the same process group, goes with it.

    python -m orchestra.llm.llm_client STATE_DIR RUN_ID -- RUNNER_COMMAND...
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from orchestra.core.base.procs import FLEET_NICENESS, yield_cpu
from orchestra.core.base.redact import secret_values
from orchestra.core.runs.store import RunStore
from orchestra.core.supervise.secrets import secret_names
from orchestra.core.agents.wire import EXIT_PREFIX, HOST_SETTINGS, KEY_ENV, RECORD_PREFIX, llm_host_socket
from orchestra.core.jail.environment import KEPT
from orchestra.llm.runner_process import RunnerProcess
from orchestra.llm.tool_protocol import CALL_PREFIX, JOB_VERSION, ProtocolError, decode, encode, refusal

HOST_START_TIMEOUT = 120.0  # seconds; importing litellm takes ~5 s here, more on a busy machine


def socket_path() -> Path:
    """The host's socket, in a directory only this user can enter (the supervisor names it)."""
    path = llm_host_socket(os.environ)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def connect(path: Path) -> socket.socket | None:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(str(path))
    except OSError:
        client.close()
        return None
    return client


def start_host(path: Path) -> socket.socket:
    """Connect to the host, starting it first when none answers (one starter at a time)."""
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        client = connect(path)
        if client is not None:
            return client
        log = open(path.with_suffix(".log"), "ab")
        subprocess.Popen([sys.executable, "-m", "orchestra.llm.llm_host", str(path)], stdin=subprocess.DEVNULL,
                         stdout=log, stderr=log, start_new_session=True, close_fds=True, cwd="/",
                         env=host_environment(os.environ))
        deadline = time.monotonic() + HOST_START_TIMEOUT
        while time.monotonic() < deadline:
            time.sleep(0.1)
            client = connect(path)
            if client is not None:
                return client
    raise RuntimeError(f"the llm host did not start within {HOST_START_TIMEOUT:g}s (see {path.with_suffix('.log')})")


def host_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The host serves every run: it gets how this machine reaches the network and its own settings, not
    this run's private places, variables or key (each job brings its key)."""
    return {name: value for name, value in environ.items()
            if name in KEPT or (name.startswith(("LC_", HOST_SETTINGS)) and name != KEY_ENV)}


def runner_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The tool runner's (and the model's commands') environment: this one without the model's key and
    without the host's settings, its socket among them."""
    key_name = environ.get(KEY_ENV)
    return {name: value for name, value in environ.items() if name != key_name and not name.startswith(HOST_SETTINGS)}


def relay(client: socket.socket, runner: RunnerProcess) -> int:
    """Copy the host's lines to stdout until it sends the exit status; have the runner answer its calls."""
    out = sys.stdout.buffer
    with client.makefile("rb") as stream:
        for line in stream:
            if line.startswith(EXIT_PREFIX.encode()):
                return int(line[len(EXIT_PREFIX):].strip() or 1)
            if line.startswith(CALL_PREFIX.encode()):
                client.sendall(encode(call_runner(runner, line[len(CALL_PREFIX):])))
                continue
            out.write(line)
            out.flush()
    fail("the llm host stopped in the middle of the run (its log: " + str(socket_path().with_suffix(".log")) + ")")
    return 1


def call_runner(runner: RunnerProcess, line: bytes) -> dict:
    try:
        message = decode(line)
    except ProtocolError as error:
        return refusal(None, f"the llm client could not read the request: {error}")
    return runner.ask(message)


def fail(message: str) -> None:
    sys.stdout.write(RECORD_PREFIX + json.dumps({"result": message, "code": 1}) + "\n")
    sys.stdout.flush()


def job_request(state_dir: str, run_id: str) -> dict:
    """The first line to the host: the run, and what of this environment the job needs (its key)."""
    key_name = os.environ.get(KEY_ENV)
    run = RunStore(Path(state_dir)).load(run_id)
    return {"v": JOB_VERSION, "state_dir": str(Path(state_dir).resolve()), "run_id": run_id,
            "api_key": os.environ.get(key_name) if key_name else None,
            # What the host keeps out of the files it writes (the conversation): the run's secrets here.
            "secrets": secret_values(os.environ, secret_names(run, os.environ)),
            "redirect": os.environ.get("ORCHESTRA_REDIRECT") or None,
            "retry_base": float(os.environ.get("ORCHESTRA_LLM_RETRY_BASE") or 1.0)}


def draft_request(request_file: str) -> dict:
    """The first line to the host for a spec draft (no run): what it is asked, and the model's key."""
    key_name = os.environ.get(KEY_ENV)
    return {"v": JOB_VERSION, "draft": str(Path(request_file).resolve()),
            "api_key": os.environ.get(key_name) if key_name else None,
            "retry_base": float(os.environ.get("ORCHESTRA_LLM_RETRY_BASE") or 1.0)}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 3 and args[0] == "--draft" and args[2] == "--":  # a spec draft: no run, what is asked in FILE
        return hand_over(lambda: draft_request(args[1]), args[3:])
    review = None
    if len(args) > 3 and args[2] == "--review":  # a reviewer's job: what it is asked is in that file
        review, args = args[3], args[:2] + args[4:]
    if len(args) < 4 or args[2] != "--":
        print("usage: python -m orchestra.llm.llm_client STATE_DIR RUN_ID [--review FILE] -- RUNNER_COMMAND...\n"
              "       python -m orchestra.llm.llm_client --draft FILE -- RUNNER_COMMAND...", file=sys.stderr)
        return 2
    state_dir, run_id = args[0], args[1]

    def request() -> dict:
        job = job_request(state_dir, run_id)
        return {**job, "review": str(Path(review).resolve())} if review else job
    return hand_over(request, args[3:])


def hand_over(make_request: Callable[[], dict], runner_argv: list[str]) -> int:
    """Start the tool runner, reach the host (starting it if needed), send it the job and relay until it ends."""
    if os.getsid(0) == os.getpid():  # started by a supervisor, in a session of its own: below the UI with it
        yield_cpu(FLEET_NICENESS)
    runner = RunnerProcess(runner_argv, runner_environment(os.environ))
    path = socket_path()
    try:
        runner.start()  # while the host is reached (or started)
        client = connect(path) or start_host(path)
    except (OSError, RuntimeError) as error:
        fail(f"could not start orchestra's llm host or the run's tool runner: {error}")
        runner.stop()
        return 1
    client.sendall((json.dumps(make_request()) + "\n").encode())
    try:
        return relay(client, runner)
    finally:
        runner.stop()


if __name__ == "__main__":
    sys.exit(main())
