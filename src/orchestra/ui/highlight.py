"""Syntax highlighting of single diff lines: Pygments tokens mapped to a few palette roles, cached."""

from __future__ import annotations

import re
from functools import cache, lru_cache

from pygments.lexer import Lexer
from pygments.lexers import get_lexer_for_filename
from pygments.token import Comment, Keyword, Name, Number, Operator, String, _TokenType
from pygments.util import ClassNotFound

__all__ = ["ROLES", "Spans", "clean", "highlight", "lexer_for"]

_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f]")
_TAB_SIZE = 4
_ROLES = {
    Keyword: "keyword",
    Operator.Word: "keyword",
    String: "string",
    Comment: "comment",
    Name.Function: "function",
    Name.Class: "function",
    Name.Decorator: "function",
    Number: "number",
}
ROLES = tuple(sorted(set(_ROLES.values())))

Spans = tuple[tuple[str, str | None], ...]


def clean(text: str) -> str:
    """Expand tabs and replace control characters so cell widths are exact."""
    return _CONTROL.sub("\ufffd", text.expandtabs(_TAB_SIZE))


@lru_cache(maxsize=512)
def lexer_for(path: str) -> Lexer | None:
    """Pygments lexer chosen by file name, or None for plain text."""
    try:
        return get_lexer_for_filename(path, stripnl=False)
    except ClassNotFound:
        return None


@cache
def _role_of(token: _TokenType) -> str | None:
    """Palette role for a Pygments token type (walking up to its parents)."""
    while token:
        if token in _ROLES:
            return _ROLES[token]
        token = token.parent
    return None


@lru_cache(maxsize=4096)
def highlight(text: str, lexer: Lexer | None) -> Spans:
    """Split one cleaned line into (text, role) spans.

    Lines are lexed on their own, so constructs spanning lines (docstrings,
    block comments) are only approximated; that is the price of laziness.
    """
    if lexer is None or not text.strip():
        return ((text, None),)
    spans: list[tuple[str, str | None]] = []
    for token, value in lexer.get_tokens(text):
        role = _role_of(token)
        if spans and spans[-1][1] == role:
            spans[-1] = (spans[-1][0] + value, role)
        else:
            spans.append((value, role))
    if spans and spans[-1][0].endswith("\n"):
        spans[-1] = (spans[-1][0][:-1], spans[-1][1])
    if "".join(value for value, _ in spans) != text:
        return ((text, None),)
    return tuple(span for span in spans if span[0])
