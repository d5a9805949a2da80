"""The lines a change adds, with their text: what the secret scan reads.

The diff is read as bytes and split on newlines only, so a lone carriage return in a file cannot shift
line numbers; each hunk's line counts say how many content lines follow, so an added line that itself
starts with "++ " is never taken for a file header. Binary files are the ones git calls binary (a NUL
byte near the start); run it from the git directory, where no checkout's .gitattributes is read, so a
candidate cannot mark its own text files binary to hide them.
"""

from __future__ import annotations

import re
from pathlib import Path

from orchestra.core.git.diffparse import unquote_path
from orchestra.core.git.runner import git_bytes

_HUNK = re.compile(rb"@@ -\d+(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")

AddedLines = dict[str, list[tuple[int, str]]]


def added_text(cwd: Path | str, since: str, rev: str) -> AddedLines:
    """path → [(line number in rev, text), ...] of every line the change since..rev adds or alters
    (renames followed; binary files and pure deletions leave nothing)."""
    out = git_bytes(cwd, "diff", "-U0", "--no-color", "--no-ext-diff", "--no-textconv", "-M", since, rev)
    return _parse(out.split(b"\n"))


def _parse(lines: list[bytes]) -> AddedLines:
    result: AddedLines = {}
    added: list[tuple[int, str]] | None = None  # the current file's
    old_left = new_left = number = 0
    for raw in lines:
        if old_left or new_left:
            if raw.startswith(b"+") and new_left and added is not None:
                added.append((number, raw[1:].decode("utf-8", "replace")))
                number, new_left = number + 1, new_left - 1
                continue
            if raw.startswith(b"-") and old_left:
                old_left -= 1
                continue
            if raw.startswith(b"\\"):  # "\ No newline at end of file"
                continue
            old_left = new_left = 0  # a malformed hunk: read what follows as headers
        if raw.startswith(b"diff --git "):
            added = None
        elif raw.startswith(b"+++ "):
            path = _new_path(raw[4:])
            added = None if path is None else result.setdefault(path, [])
        elif raw.startswith(b"@@ ") and added is not None:
            hunk = _HUNK.match(raw)
            if hunk:
                old_left = int(hunk.group(1) or b"1")
                number, new_left = int(hunk.group(2)), int(hunk.group(3) or b"1")
    return {path: added for path, added in result.items() if added}


def _new_path(marker: bytes) -> str | None:
    """The path of a `+++ b/path` line (None for /dev/null)."""
    text = unquote_path(marker.decode("utf-8", "replace").rstrip("\t"))
    if text == "/dev/null":
        return None
    return text[2:] if len(text) > 2 and text[1] == "/" else text
