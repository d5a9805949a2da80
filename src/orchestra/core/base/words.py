"""Counted nouns in user-facing messages: "1 file", "2 files", never "1 files" or "file(s)"."""

from __future__ import annotations


def plural(count: int, noun: str, many: str | None = None) -> str:
    """count and noun, the noun in the plural unless count is 1: "1 entry", "3 entries", "0 files".

    The plural is made by the regular English rules (entry → entries, match → matches); pass many
    for any other ("1 child", "2 children")."""
    return f"{count} {noun if count == 1 else many or plural_of(noun)}"


def plural_of(noun: str) -> str:
    """The regular English plural of a noun."""
    if noun.endswith("y") and noun[-2:-1] not in ("a", "e", "i", "o", "u", ""):
        return noun[:-1] + "ies"
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    return noun + "s"
