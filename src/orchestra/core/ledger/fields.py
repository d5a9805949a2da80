"""Reading just the fields a reader needs from ledger lines (msgspec: a fifth of json's time): the chain
fields verify checks, and the decision fields `orchestra stats` and autonomy count.

Only those readers load this module, so msgspec is not loaded by every command that appends.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from orchestra.core.ledger.lines import _member, _span, entry_hash, hashed_body, parse_line


class ChainFields(msgspec.Struct, gc=False):
    """The fields of an entry that verify reads, decoded straight from its line: the whole line is parsed
    as JSON (a garbled line is still refused) but only these are built. None: absent (or null)."""

    hash: Any = None
    prev: Any = None
    seq: Any = None
    action: Any = None
    decision: Any = None
    merge_commit: Any = None
    run: Any = None
    anchored: Any = None
    sig: Any = None
    signer: Any = None
    time: Any = None


_CHAIN_DECODER = msgspec.json.Decoder(ChainFields)
_CHAIN_NAMES = ChainFields.__struct_fields__


def parse_chain_fields(raw: bytes) -> ChainFields:
    """The fields verify needs of one line; ValueError when the line is not a JSON object.

    What msgspec refuses but json accepts (a lone surrogate escape, say) goes through json, so verify
    and entries() agree on which lines are entries."""
    try:
        return _CHAIN_DECODER.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        entry = parse_line(raw)
        return ChainFields(**{name: entry[name] for name in _CHAIN_NAMES if name in entry})


def line_hash_matches(raw: bytes, fields: ChainFields) -> bool:
    """hash_matches for a line read as ChainFields (the whole entry is parsed only for a line that is
    not in canonical form). The hash is taken over the line's pieces around its hash member (and its
    sig member), without copying them."""
    stored = fields.hash
    if type(stored) is not str:
        return False
    cuts = [_span(raw, _member("hash", stored))]
    if fields.sig is not None:
        cuts.append(_span(raw, _member("sig", fields.sig)))
    digest, view, pos = hashlib.sha256(), memoryview(raw), 0
    for start, end in sorted(cuts):
        digest.update(view[pos:start])
        pos = max(pos, end)
    digest.update(view[pos:])
    if digest.hexdigest() == stored:
        return True
    try:
        return entry_hash(hashed_body(parse_line(raw))) == stored  # a line not in canonical form
    except (UnicodeEncodeError, ValueError):  # a lone surrogate: no entry orchestra wrote
        return False


class DecisionFields(msgspec.Struct, gc=False):
    """What stats and autonomy read of an entry: the decision, its run, agent and spec, when, and what it
    decided with (None: absent)."""

    action: Any = None
    run: Any = None
    agent: Any = None
    spec: Any = None
    time: Any = None
    actor: Any = None
    forced: Any = None
    usage: Any = None
    tree: Any = None
    group: Any = None
    review_since: Any = None
    level: Any = None  # grant, revoke: the autonomy level set
    hash: Any = None
    demoted: Any = None  # a revoke by policy
    granted_by: Any = None  # an accept by policy: who granted the autonomy it acted on


_DECISION_DECODER = msgspec.json.Decoder(DecisionFields)


def decode_decisions(lines: list[bytes]) -> tuple[list[DecisionFields], int]:
    """The decision fields of each line, and how many lines could not be read (left out)."""
    found, bad = [], 0
    for line in lines:
        try:
            found.append(_DECISION_DECODER.decode(line))
        except (msgspec.DecodeError, msgspec.ValidationError):
            bad += 1
    return found, bad
