"""Secrets out of everything orchestra writes: which variable names hold secrets, and the redactor.

A secret is replaced wherever it occurs (and in the JSON and URL encodings a tool might print it in)
by a marker naming its variable, `[redacted OPENAI_API_KEY]`. Values shorter than MIN_SECRET are never
treated as secrets: replacing a short word everywhere would mangle output and hide nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

MIN_SECRET = 8

# Declared variables whose name says they hold a secret.
_SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL")
# Variables in orchestra's own environment that hold credentials whatever their prefix (GITHUB_TOKEN,
# AWS_SECRET_ACCESS_KEY, …): stricter than the words above, which would also catch GNOME_KEYRING_CONTROL.
_CREDENTIAL_ENDINGS = ("_API_KEY", "_APIKEY", "_TOKEN", "_SECRET", "_SECRET_KEY", "_ACCESS_KEY", "_PASSWORD",
                       "_PAT", "_CREDENTIALS")


def looks_secret(name: str) -> bool:
    """Whether a variable a score declares is, by its name, a secret (…KEY…, …TOKEN…, …_PAT)."""
    upper = name.upper()
    return any(word in upper for word in _SECRET_WORDS) or upper.endswith("_PAT")


def is_credential_name(name: str) -> bool:
    """Whether a variable found in orchestra's environment is, by its name, a credential (…_TOKEN, …_API_KEY)."""
    return name.upper().endswith(_CREDENTIAL_ENDINGS)


def secret_values(environ: Mapping[str, str], names: Iterable[str]) -> dict[str, str]:
    """name → value of each named variable that is set to something long enough to be a secret."""
    return {name: environ[name] for name in sorted(set(names)) if len(environ.get(name) or "") >= MIN_SECRET}


def _encodings(value: str) -> set[str]:
    """The value, and the forms a tool may print it in: JSON-escaped and percent-encoded."""
    return {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1], quote(value, safe="")}


class Redactor:
    """Replaces every secret in text, bytes or JSON-like values with a marker naming its variable."""

    def __init__(self, secrets: Mapping[str, str] | None = None, unnamed: Iterable[str] = ()) -> None:
        """secrets: variable name → value; unnamed: values whose marker is a plain `[redacted]`."""
        pairs = [*((value, "") for value in unnamed), *((value, name) for name, value in (secrets or {}).items())]
        self.markers: dict[str, str] = {}
        for value, name in pairs:
            if value and len(value) >= MIN_SECRET:
                marker = f"[redacted {name}]" if name else "[redacted]"
                self.markers.update(dict.fromkeys(_encodings(value), marker))
        # Longest first: where two secrets start at one place (one a prefix of the other) the longer wins.
        ordered = sorted(self.markers, key=len, reverse=True)
        self.longest = max((len(s.encode()) for s in ordered), default=0)  # in bytes
        self.text_pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        self.byte_pattern = re.compile(b"|".join(re.escape(s.encode()) for s in ordered)) if ordered else None

    def __call__(self, text: str) -> str:
        if self.text_pattern is None:
            return text
        return self.text_pattern.sub(lambda match: self.markers[match.group()], text)

    def data(self, raw: bytes) -> bytes:
        """raw with every secret's UTF-8 bytes replaced."""
        if self.byte_pattern is None:
            return raw
        return self.byte_pattern.sub(lambda match: self.markers[match.group().decode()].encode(), raw)

    def deep(self, value: Any) -> Any:
        """A copy of a JSON-like value (dicts, lists, strings) with every string in it redacted."""
        if self.text_pattern is None:
            return value
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {key: self.deep(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.deep(item) for item in value]
        return value

    def stream(self) -> RedactingStream:
        return RedactingStream(self)


class RedactingStream:
    """Redacts a byte stream fed in chunks, holding back just enough that a secret split across two
    chunks is still found."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self.held = b""

    def feed(self, chunk: bytes) -> bytes:
        """What of the stream so far can be written: redacted, and never ending inside a secret."""
        pattern = self.redactor.byte_pattern
        if pattern is None:
            return chunk
        data = self.held + chunk
        # A secret starting before `safe` lies wholly inside data, so every match found there is whole.
        safe = max(0, len(data) - (self.redactor.longest - 1))
        out, written = [], 0
        for match in pattern.finditer(data):
            if match.start() >= safe:
                break
            out += [data[written:match.start()], self.redactor.markers[match.group().decode()].encode()]
            written = match.end()
        cut = max(written, safe)
        out.append(data[written:cut])
        self.held = data[cut:]
        return b"".join(out)

    def flush(self) -> bytes:
        """The rest of the stream, redacted."""
        rest, self.held = self.held, b""
        return self.redactor.data(rest)
