"""The agent process of an llm run: hands the run to the llm host and relays its report.

The supervisor runs this like any agent (own process group, output captured line by line). It
starts the host when none answers, sends the job with this process's environment (the provider key
travels only over the private socket), copies the host's lines to stdout and exits with the job's
exit status. Killing it (stop, timeout) closes the connection, which cancels the job in the host.

    python -m orchestra.llm.llm_client STATE_DIR RUN_ID
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from orchestra.core.agents.wire import EXIT_PREFIX, RECORD_PREFIX

HOST_START_TIMEOUT = 120.0  # seconds; importing litellm takes ~5 s here, more on a busy machine


def socket_path() -> Path:
    """The host's socket, in a directory only this user can enter (Unix socket paths must stay short).

    ORCHESTRA_LLM_HOST_SOCKET names another path (the tests share one host between their repositories)."""
    if os.environ.get("ORCHESTRA_LLM_HOST_SOCKET"):
        path = Path(os.environ["ORCHESTRA_LLM_HOST_SOCKET"])
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "orchestra"
    path = state / "llm-host.sock"
    if len(str(path)) > 100:
        path = Path(f"/tmp/orchestra-{os.getuid()}") / "llm-host.sock"
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
                         stdout=log, stderr=log, start_new_session=True, close_fds=True)
        deadline = time.monotonic() + HOST_START_TIMEOUT
        while time.monotonic() < deadline:
            time.sleep(0.1)
            client = connect(path)
            if client is not None:
                return client
    raise RuntimeError(f"the llm host did not start within {HOST_START_TIMEOUT:g}s (see {path.with_suffix('.log')})")


def relay(client: socket.socket) -> int:
    """Copy the host's lines to stdout until it sends the exit status."""
    out = sys.stdout.buffer
    with client.makefile("rb") as stream:
        for line in stream:
            if line.startswith(EXIT_PREFIX.encode()):
                return int(line[len(EXIT_PREFIX):].strip() or 1)
            out.write(line)
            out.flush()
    fail("the llm host stopped in the middle of the run (its log: " + str(socket_path().with_suffix(".log")) + ")")
    return 1


def fail(message: str) -> None:
    sys.stdout.write(RECORD_PREFIX + json.dumps({"result": message, "code": 1}) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m orchestra.llm.llm_client STATE_DIR RUN_ID", file=sys.stderr)
        return 2
    state_dir, run_id = args
    path = socket_path()
    try:
        client = connect(path) or start_host(path)
    except (OSError, RuntimeError) as error:
        fail(f"could not start orchestra's llm host: {error}")
        return 1
    request = {"state_dir": str(Path(state_dir).resolve()), "run_id": run_id, "environ": dict(os.environ)}
    client.sendall((json.dumps(request) + "\n").encode())
    return relay(client)


if __name__ == "__main__":
    sys.exit(main())
