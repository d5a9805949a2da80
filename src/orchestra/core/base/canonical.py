"""One canonical JSON form, and the content hashes computed from it (ledger entries, spec hashes)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import hashlib


def canonical_json(data: Any) -> str:
    """Serialise data deterministically: sorted keys, no whitespace, UTF-8 kept as is."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(data: Any) -> str:
    """sha256 hex digest of data's canonical JSON, encoded as UTF-8."""
    return sha256(canonical_json(data).encode("utf-8")).hexdigest()


def sha256(data: bytes) -> hashlib._Hash:
    """hashlib.sha256(data), hashlib imported at the first use: it loads OpenSSL, 4 ms of a start that hashes
    nothing before its first frame."""
    import hashlib
    return hashlib.sha256(data)
