"""Spec boundaries: which changed paths an agent was allowed to touch (by its spec, and by its role)."""

from __future__ import annotations

from dataclasses import dataclass

from orchestra.core.base.globs import matches_any
from orchestra.core.score.roles import ROLE_TABLE, Role, role_violation


@dataclass(frozen=True)
class BoundaryResult:
    """Paths that broke a spec's boundaries (or the agent's role's), by reason."""

    outside_allow: tuple[str, ...]
    inside_deny: tuple[str, ...]
    outside_role: tuple[str, ...] = ()
    role: Role = ROLE_TABLE["code"]

    @property
    def ok(self) -> bool:
        return not self.outside_allow and not self.inside_deny and not self.outside_role

    def violations(self) -> list[str]:
        return ([f"{p} (outside allow)" for p in self.outside_allow] + [f"{p} (denied)" for p in self.inside_deny]
                + [role_violation(self.role, p) for p in self.outside_role])


def check_boundary(changed_paths: list[str] | tuple[str, ...], allow: list[str] | tuple[str, ...],
                   deny: list[str] | tuple[str, ...], role: Role | None = None) -> BoundaryResult:
    """Which changed paths fall outside allow (when allow is given) or inside deny, and outside the role's
    paths (when its role limits them: a path must satisfy both)."""
    outside = tuple(p for p in changed_paths if allow and not matches_any(allow, p))
    denied = tuple(p for p in changed_paths if deny and matches_any(deny, p))
    role = role or ROLE_TABLE["code"]
    beyond_role = () if role.allow is None else tuple(p for p in changed_paths if not matches_any(role.allow, p))
    return BoundaryResult(outside, denied, beyond_role, role)
