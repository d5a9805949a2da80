"""One canonical JSON form, and the content hashes computed from it (ledger entries, spec hashes)."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(data: Any) -> str:
    """Serialise data deterministically: sorted keys, no whitespace, UTF-8 kept as is."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(data: Any) -> str:
    """sha256 hex digest of data's canonical JSON, encoded as UTF-8."""
    return hashlib.sha256(canonical_json(data).encode("utf-8")).hexdigest()
