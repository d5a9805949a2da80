"""Whether a CLI agent is working, waiting for an answer, or stalled.

A CLI agent's stdin is a pipe nobody writes to, so an agent that asks a question blocks for good.
ActivityWatch is fed the agent's output lines and its unterminated last line (where a prompt without
a newline sits) with the time each arrived, and assess() says:

- waiting: the last thing printed looks like a question or prompt for the user, and nothing has
  been printed since for `waiting_after` seconds;
- stalled: the last thing printed is what its preset knows as a stall (a sign-in in a browser, a
  retry loop on an unreachable network: `stall_lines`), or nothing was printed for `unknown_after`
  seconds and nothing prompt-like; the reason carries the agent's last words. A long think, a slow
  command or a hang look the same from outside, so a silent agent is shown stalled, never silently
  working forever;
- working: otherwise.

Times are plain numbers of seconds (e.g. time.monotonic()), passed in so tests control the clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from orchestra.core.base.output import strip_escapes

__all__ = ["Activity", "ActivityWatch", "format_duration", "looks_like_prompt"]

_FLAGS = re.IGNORECASE
# A yes/no choice: (y/n), [Y/n], [y/N], (yes/no), [Y/n/a], (Y)es/(N)o/(A)ll, y/n, yes/no.
_YES_NO = re.compile(r"[(\[]\s*y(?:es)?\s*/\s*n(?:o)?(?:\s*/\s*\w+)*\s*[)\]]"
                     r"|[(\[]\s*n(?:o)?\s*/\s*y(?:es)?(?:\s*/\s*\w+)*\s*[)\]]"
                     r"|\(y\)es\s*/\s*\(n\)o(?:\s*/\s*\(\w\)[\w' ]*)*|\by/n\b|\byes/no\b", _FLAGS)
# What may follow a yes/no choice on a prompt line: a default in brackets, then ':', '?' or '>'.
_AFTER_CHOICE = re.compile(r"\s*(?:\[[^\]]*\]|\([^)]*\))?\s*[:?>]?\s*", _FLAGS)
_PROMPTS = tuple(re.compile(pattern, _FLAGS) for pattern in (
    r"^(?:>{1,3}|»|❯|\$|%)$",  # a bare prompt character
    r"^\W*(?:please\s+)?(?:press|hit)\s+(?:enter|return|any key|a key)\b",
    r"\b(?:password|passphrase|token|api key|username|verification code|one-time code)\b.{0,80}:$",
    r"^\W*(?:please\s+)?(?:enter|type|choose|select|pick|provide|input|specify)\s+(?:a|an|the|your|one|"
    r"value|name|number|choice|option|selection|path|file|password|key|message|command)\b.*[:>]$",
    r"\[\s*\d+\s*-\s*\d+\s*\]\s*:$",  # a numbered choice, "[1-3]:" (not a counter like "[3/10]")
))
# Lines that end in '?' without asking the user: headings, list items, comments, quotes, URLs.
_NOT_A_QUESTION = re.compile(r"^(?:#|[-*+•]\s|\d+[.)]\s|//|>\s*\S|\w+://\S*$)")


@dataclass(frozen=True)
class Activity:
    """What an agent seems to be doing, and why orchestra thinks so."""

    state: str  # "working" | "waiting" | "stalled"
    reason: str


def looks_like_prompt(text: str) -> bool:
    """Whether a line of output reads as a question or prompt that waits for the user's answer."""
    line = strip_escapes(text).strip()
    if not line:
        return False
    if _ends_with_choice(line) or any(pattern.search(line) for pattern in _PROMPTS):
        return True
    # A question mark counts only at the very end: "Is it x? No." is narration, not a prompt.
    return line.endswith("?") and not _NOT_A_QUESTION.match(line)


def _ends_with_choice(line: str) -> bool:
    """A yes/no choice that only a default and a ':' / '?' / '>' follow."""
    matches = list(_YES_NO.finditer(line))
    return bool(matches) and _AFTER_CHOICE.fullmatch(line[matches[-1].end():]) is not None


def format_duration(seconds: float) -> str:
    """A short human duration: '45s', '2m 10s', '1h 5m'."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def _shorten(text: str, width: int = 80) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


class ActivityWatch:
    """Follows one agent's output and judges whether it is working, waiting or unknown."""

    def __init__(self, waiting_after: float = 3.0, unknown_after: float = 90.0,
                 stall_lines: tuple[str, ...] = ()) -> None:
        self.waiting_after, self.unknown_after = waiting_after, unknown_after
        self.stall_lines = tuple(re.compile(pattern, _FLAGS) for pattern in stall_lines)
        self._last_output: float | None = None  # when anything was last printed
        self._watching_since: float | None = None  # the first assessment, for silence before any output
        self._last_line = ""  # the last non-blank complete line
        self._partial = ""
        self._stall: tuple[str, float] | None = None  # the last line its preset knows as a stall, and when

    def line(self, text: str, now: float) -> None:
        """A complete output line arrived; it also completes any partial line."""
        self._last_output = now
        self._partial = ""
        if text.strip():
            self._last_line = strip_escapes(text).strip()
            if any(pattern.search(self._last_line) for pattern in self.stall_lines):
                # Remembered: a retry line is often followed by a stack trace, which says less.
                self._stall = (self._last_line, now)

    def partial(self, text: str, now: float) -> None:
        """The current unterminated last line; "" clears it. Only a change counts as new output."""
        text = strip_escapes(text)
        if text and text != self._partial:
            self._last_output = now
        self._partial = text

    def assess(self, now: float) -> Activity:
        """The agent's state at now; before any output, silence counts from the first assessment."""
        if self._watching_since is None:
            self._watching_since = now
        since = self._last_output if self._last_output is not None else self._watching_since
        quiet = max(0.0, now - since)
        last = self._partial.strip() or self._last_line
        if quiet >= self.waiting_after and looks_like_prompt(last):
            return Activity("waiting", f"asks: {_shorten(last)}")
        if quiet >= self.waiting_after and self._stall is not None and now - self._stall[1] < self.unknown_after:
            return Activity("stalled", _shorten(self._stall[0]))
        if quiet >= self.unknown_after:
            said = f"; last: {_shorten(last, 60)}" if last else ""
            return Activity("stalled", f"no output for {format_duration(quiet)}{said}")
        return Activity("working", "output just now" if quiet < 1 else f"output {format_duration(quiet)} ago")
