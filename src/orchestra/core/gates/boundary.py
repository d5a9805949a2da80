"""Spec boundaries: which changed paths an agent was allowed to touch."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache


@lru_cache(maxsize=512)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """Compile a boundary glob: `**` spans directories, `*`/`?` stay within one, no slash means any depth."""
    pattern = pattern.strip().lstrip("./") if pattern.startswith("./") else pattern.strip()
    anchored = "/" in pattern.rstrip("/")
    body = pattern.strip("/")
    out, i = [], 0
    while i < len(body):
        char = body[i]
        if body.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif body.startswith("**", i):
            out.append(".*")
            i += 2
        elif char == "*":
            out.append("[^/]*")
            i += 1
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[":
            end = body.find("]", i + 1)
            if end == -1:
                out.append(re.escape(char))
                i += 1
            else:
                out.append("[" + body[i + 1:end].replace("!", "^", 1) + "]")
                i = end + 1
        else:
            out.append(re.escape(char))
            i += 1
    prefix = "" if anchored else "(?:.*/)?"
    # A pattern naming a directory covers everything below it.
    return re.compile(f"^{prefix}{''.join(out)}(?:/.*)?$")


def matches(pattern: str, path: str) -> bool:
    return bool(glob_regex(pattern).match(path))


def matches_any(patterns: tuple[str, ...] | list[str], path: str) -> bool:
    return any(matches(pattern, path) for pattern in patterns)


@dataclass(frozen=True)
class BoundaryResult:
    """Paths that broke a spec's boundaries, by reason."""

    outside_allow: tuple[str, ...]
    inside_deny: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.outside_allow and not self.inside_deny

    def violations(self) -> list[str]:
        return [f"{p} (outside allow)" for p in self.outside_allow] + [f"{p} (denied)" for p in self.inside_deny]


def check_boundary(changed_paths: list[str] | tuple[str, ...], allow: list[str] | tuple[str, ...],
                   deny: list[str] | tuple[str, ...]) -> BoundaryResult:
    """Which changed paths fall outside allow (when allow is given) or inside deny."""
    outside = tuple(p for p in changed_paths if allow and not matches_any(tuple(allow), p))
    denied = tuple(p for p in changed_paths if deny and matches_any(tuple(deny), p))
    return BoundaryResult(outside, denied)
