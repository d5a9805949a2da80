"""Names that become parts of file paths: how long they may be and which characters they may hold.

A verify check's name becomes a file name (`<run dir>/gates/<name>.log`); the score refuses a bad one
at load time, and the gates refuse it again before they write anywhere."""

from __future__ import annotations

import re

MAX_NAME = 64  # characters in an agent name, spec id or check name
CHECK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def is_check_name(name: object) -> bool:
    """Whether name is a plain file name fit to name a check (and its log)."""
    return isinstance(name, str) and len(name) <= MAX_NAME and bool(CHECK_NAME.fullmatch(name))
