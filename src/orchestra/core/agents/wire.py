"""How an agent process talks to its supervisor besides plain output lines: records, and redaction;
and what the built-in agent's process (the llm client) is given besides its jail's environment.

A record is one stdout line: RECORD_PREFIX followed by a JSON object (usage so far, the final
result). Everything else an agent prints is output for the log. An agent process redacts its own key
before writing either (base/redact is the redactor; the supervisor redacts everything again on disk).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from orchestra.core.agents.presets import PROVIDER_KEYS, model_provider
from orchestra.core.base.redact import Redactor as BaseRedactor

RECORD_PREFIX = "\x1eorchestra "
EXIT_PREFIX = "\x1eexit "  # the llm host's last line to a client: the job's exit status
_PREFIX_BYTES = RECORD_PREFIX.encode()

KEY_ENV = "ORCHESTRA_LLM_KEY_ENV"        # names the variable holding the model's key, for the llm client
HOST_SOCKET = "ORCHESTRA_LLM_HOST_SOCKET"  # where the llm host listens
HOST_SETTINGS = "ORCHESTRA_LLM_"         # the prefix of the llm host's own settings (socket, idle time, retries)


def parse_record(raw: bytes) -> dict[str, Any] | None:
    """The record in a raw output line, or None when the line is ordinary output."""
    if not raw.startswith(_PREFIX_BYTES):
        return None
    try:
        value = json.loads(raw[len(_PREFIX_BYTES):].decode("utf-8", "replace"))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class Redactor(BaseRedactor):
    """The redactor over unnamed secrets that also drops the record marker, so output cannot pose as a record."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__(unnamed=secrets)

    def __call__(self, text: str) -> str:
        return super().__call__(text.replace("\x1e", ""))


def model_key_name(agent: Mapping[str, Any]) -> str | None:
    """The variable holding the key an llm agent's model is called with: its api_key_env, else its
    provider's usual one (what litellm would read)."""
    return agent.get("api_key_env") or PROVIDER_KEYS.get(model_provider(agent.get("model")) or "")


def llm_host_socket(environ: Mapping[str, str]) -> Path:
    """Where the llm host listens: ORCHESTRA_LLM_HOST_SOCKET, else in the user's state directory (under
    /tmp when that path is too long for a Unix socket). environ is the user's, not a jail's."""
    if environ.get(HOST_SOCKET):
        return Path(environ[HOST_SOCKET])
    home = environ.get("HOME") or os.path.expanduser("~")
    path = Path(environ.get("XDG_STATE_HOME") or Path(home) / ".local" / "state") / "orchestra" / "llm-host.sock"
    return path if len(str(path)) <= 100 else Path(f"/tmp/orchestra-{os.getuid()}") / "llm-host.sock"


def llm_client_variables(agent: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    """What an llm run's client gets on top of its jail's environment: its model's key (and the name
    of the variable holding it, so the client keeps it from the tools), the llm host's socket and
    settings. The client passes none of them on to the tool runner."""
    variables = {name: value for name, value in environ.items() if name.startswith(HOST_SETTINGS)}
    variables[HOST_SOCKET] = str(llm_host_socket(environ))
    key_name = model_key_name(agent)
    if key_name:
        variables[KEY_ENV] = key_name
        if key_name in environ:
            variables[key_name] = environ[key_name]
    return variables
