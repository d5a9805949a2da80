"""Reading one TOML file of the score (orchestra.toml or a spec file): its text, then its tables and lines.

Every way a file can fail to be read or parsed becomes a located ConfigError, never a traceback.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from orchestra.core.score.locate import ConfigError, LineIndex, nesting_error, syntax_error


def read_bytes(path: Path, missing: str = "file not found") -> bytes:
    """The file's bytes; ConfigError (missing as its message) when it is absent or unreadable."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(path, missing) from None
    except IsADirectoryError:
        raise ConfigError(path, "is a directory, not a file") from None
    except OSError as err:
        raise ConfigError(path, f"cannot read file: {err.strerror or err}") from None


def decode(path: Path, data: bytes) -> str:
    """The file's text (a byte order mark tolerated); ConfigError when it is not UTF-8."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ConfigError(path, f"not valid UTF-8 text ({err.reason})") from None


def parse_toml(text: str, path: Path) -> tuple[dict, LineIndex]:
    """The parsed tables of text and the line index of its keys; ConfigError on a syntax error."""
    index = LineIndex(text)
    if index.too_deep:  # refused before tomllib, whose parser recurses
        raise nesting_error(path, index)
    try:
        return tomllib.loads(text), index
    except tomllib.TOMLDecodeError as err:
        raise syntax_error(path, text, err) from None
    except RecursionError:  # nesting the line index could not read
        raise nesting_error(path, None) from None
