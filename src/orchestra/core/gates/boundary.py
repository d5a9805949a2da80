"""Spec boundaries: which changed paths an agent was allowed to touch."""

from __future__ import annotations

from dataclasses import dataclass

from orchestra.core.base.globs import matches_any


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
    outside = tuple(p for p in changed_paths if allow and not matches_any(allow, p))
    denied = tuple(p for p in changed_paths if deny and matches_any(deny, p))
    return BoundaryResult(outside, denied)
