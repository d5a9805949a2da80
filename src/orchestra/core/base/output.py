"""Turn an agent's raw output bytes into clean, bounded lines for the event log."""

from __future__ import annotations

import re

_ANSI = re.compile(r"\x1b(?:\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
MAX_LINE = 2000
OUTPUT_LIMIT = 16 * 1024 * 1024  # bytes of output a run's event log keeps; the rest is counted, not stored


def strip_escapes(text: str) -> str:
    """Text without terminal escape sequences (colours, cursor moves, titles)."""
    return _ANSI.sub("", text)


def clean_line(raw: bytes) -> str:
    """Decode a line, keep what a terminal would show after carriage returns, drop escape codes."""
    text = raw.decode("utf-8", "replace").rstrip("\r")
    if "\r" in text:
        text = text.rsplit("\r", 1)[-1]
    text = _CONTROL.sub("", strip_escapes(text)).replace("\t", "    ")
    if len(text) > MAX_LINE:
        text = text[:MAX_LINE] + f" … ({len(text) - MAX_LINE} more characters)"
    return text


class LineSplitter:
    """Split a byte stream into lines, keeping any partial line until it is complete or too long."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        self._pending += chunk
        *lines, self._pending = self._pending.split(b"\n")
        if len(self._pending) > 4 * MAX_LINE:
            lines.append(self._pending)
            self._pending = b""
        return lines

    @property
    def pending(self) -> bytes:
        """The unfinished last line so far."""
        return self._pending

    def flush(self) -> list[bytes]:
        rest, self._pending = self._pending, b""
        return [rest] if rest else []
