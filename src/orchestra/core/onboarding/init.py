"""`orchestra init`: the starter score, its target set to the branch the repository is on."""

from __future__ import annotations

import json
import re

from orchestra.core.base.errors import OrchestraError
from orchestra.core.score import STARTER_TOML

# The starter's one `target = ...` line under [orchestra].
_TARGET_LINE = re.compile(r'^target = ".*"$', re.MULTILINE)


def starter_score(branch: str | None) -> str:
    """The starter orchestra.toml naming branch as its target (a TOML string, escaped as JSON's are).

    Without a branch (HEAD detached) the target line is left out, commented, so runs use whatever
    branch is checked out when they start: what the comment above it says."""
    if len(_TARGET_LINE.findall(STARTER_TOML)) != 1:
        raise OrchestraError("orchestra's starter score has no single `target` line to fill in (a bug).")
    line = f"target = {json.dumps(branch)}" if branch else '#target = "main"'
    return _TARGET_LINE.sub(lambda _: line, STARTER_TOML, count=1)
