"""Symbolic links a change adds that lead outside the repository (absolute, or up past its root)."""

from __future__ import annotations

import posixpath
from pathlib import Path

from orchestra.core.git.runner import git

_SYMLINK_MODE = "120000"
UNREADABLE = "(target could not be read)"


def symlinks_leaving(cwd: Path | str, base: str, rev: str) -> list[tuple[str, str]]:
    """(path, target) of every symlink added or changed between base and rev that leads outside.

    A target leads outside when it is absolute or, read relative to the link's directory, climbs
    above the repository root with `..`. Targets git cannot hand back are reported as UNREADABLE.
    """
    links = _new_symlinks(cwd, base, rev)
    if not links:
        return []
    targets = _blob_texts(cwd, list(dict.fromkeys(blob for _, blob in links)))
    leaving = []
    for path, blob in links:
        target = targets.get(blob)
        if target is None or leads_outside(path, target):
            leaving.append((path, UNREADABLE if target is None else target))
    return leaving


def leads_outside(path: str, target: str) -> bool:
    """Whether a link at path (relative to the root) with this target points outside the root."""
    if target.startswith("/"):
        return True
    depth = len([part for part in posixpath.dirname(path).split("/") if part])
    for part in target.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


def _new_symlinks(cwd: Path | str, base: str, rev: str) -> list[tuple[str, str]]:
    """(path, blob id) of every path whose new side in `git diff base rev` is a symlink."""
    out = git(cwd, "diff", "--raw", "-z", "--no-renames", "--no-abbrev", base, rev)
    fields = out.split("\0")
    found = []
    for header, path in zip(fields[0::2], fields[1::2]):
        parts = header.lstrip(":").split()
        if len(parts) >= 4 and parts[1] == _SYMLINK_MODE:
            found.append((path, parts[3]))
    return found


def _blob_texts(cwd: Path | str, blobs: list[str]) -> dict[str, str]:
    """The contents of blobs, read with one `git cat-file --batch`.

    git's output arrives decoded, so sizes are counted in UTF-8 bytes; a blob whose text cannot be
    measured exactly (bytes that are not UTF-8) is left out, and reading goes on at the next header.
    """
    out = git(cwd, "cat-file", "--batch", input="".join(f"{blob}\n" for blob in blobs)) + "\n"
    texts: dict[str, str] = {}
    pos, ascii_only = 0, out.isascii()
    for blob in blobs:
        if not out.startswith(f"{blob} blob ", pos):
            pos = out.find(f"\n{blob} blob ", pos) + 1  # resynchronise after a blob left out
            if pos == 0:
                break
        end = out.find("\n", pos)
        size = out[pos:end].split()[-1]
        if end < 0 or not size.isdigit():
            break
        start = end + 1
        stop = start + int(size) if ascii_only else _advance(out, start, int(size))
        if stop is not None and out[stop : stop + 1] == "\n":
            texts[blob] = out[start:stop]
            pos = stop + 1
    return texts


def _advance(text: str, start: int, size: int) -> int | None:
    """The index in text that lies `size` UTF-8 bytes after start, or None when it falls mid-character
    or on a character that replaced undecodable bytes (its byte count is unknown)."""
    pos, left = start, size
    while left > 0 and pos < len(text):
        if text[pos] == "\ufffd":
            return None
        left -= len(text[pos].encode("utf-8"))
        pos += 1
    return pos if left == 0 else None
