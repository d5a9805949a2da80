"""How an agent process talks to its supervisor besides plain output lines: records, and redaction.

A record is one stdout line: RECORD_PREFIX followed by a JSON object (usage so far, the final
result). Everything else an agent prints is output for the log. Secrets are redacted before either
is written, so a key can never reach the event log, the run record or the ledger.
"""

from __future__ import annotations

import json
from typing import Any

RECORD_PREFIX = "\x1eorchestra "
EXIT_PREFIX = "\x1eexit "  # the llm host's last line to a client: the job's exit status
_PREFIX_BYTES = RECORD_PREFIX.encode()


def parse_record(raw: bytes) -> dict[str, Any] | None:
    """The record in a raw output line, or None when the line is ordinary output."""
    if not raw.startswith(_PREFIX_BYTES):
        return None
    try:
        value = json.loads(raw[len(_PREFIX_BYTES):].decode("utf-8", "replace"))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class Redactor:
    """Replaces each secret (and the record marker, so output cannot pose as a record) in text."""

    def __init__(self, secrets: list[str]) -> None:
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        text = text.replace("\x1e", "")
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return text
