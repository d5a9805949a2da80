"""Theme files: load Textual themes from TOML in the shipped and the user's theme directories.

A theme file's top-level keys are `textual.theme.Theme`'s arguments; an optional
`[variables]` table overrides Textual CSS variables (colours, or text styles for keys
containing "style"). Broken files are reported as `ThemeProblem`s, never raised, so a
typo in a user theme can't stop the app from starting.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.color import Color, ColorParseError
from textual.css.constants import VALID_STYLE_FLAGS
from textual.theme import Theme

from orchestra.core.base.errors import OrchestraError

DEFAULT_DARK = "orchestra-dark"
DEFAULT_LIGHT = "orchestra-light"

FALLBACK_THEME = Theme(
    name="orchestra-fallback",
    primary="#559abe",
    secondary="#8794aa",
    accent="#c56ecf",
    foreground="#d5d9df",
    background="#1b1f24",
    surface="#24292f",
    panel="#2e333b",
    success="#61b367",
    warning="#d9b44a",
    error="#e07a7f",
    dark=True,
)
"""Used when no theme file can be loaded; mirrors orchestra-dark without its variables."""

_COLOUR_KEYS = (
    "primary", "secondary", "accent", "foreground", "background",
    "surface", "panel", "boost", "warning", "error", "success",
)
_BOOL_KEYS = ("dark", "ansi")
_FRACTION_KEYS = ("luminosity_spread", "text_alpha")
_KNOWN_KEYS = ("name", *_COLOUR_KEYS, *_BOOL_KEYS, *_FRACTION_KEYS, "variables")
_REQUIRED_KEYS = ("name", "primary")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_VARIABLE = re.compile(r"[A-Za-z_-][A-Za-z0-9_-]*")
_PERCENT = re.compile(r"\d+(\.\d+)?%")


class ThemeError(OrchestraError):
    """A theme file can't be used; `message` names the offending key."""

    def __init__(self, path: Path, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}")


@dataclass(frozen=True)
class ThemeProblem:
    """A theme file that was skipped, and why."""

    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def theme_dirs() -> list[Path]:
    """The directories searched for themes, lowest priority first: shipped, then the user's."""
    return [_shipped_dir(), _user_dir()]


def _shipped_dir() -> Path:
    """<repo>/themes in a source checkout (src layout), else orchestra/themes in the wheel."""
    here = Path(__file__).resolve()
    checkout = here.parents[3] / "themes"
    if here.parents[2].name == "src" and checkout.is_dir():
        return checkout
    return here.parents[1] / "themes"


def _user_dir() -> Path:
    """$XDG_CONFIG_HOME/orchestra/themes; a relative or empty XDG_CONFIG_HOME is ignored per the spec."""
    base = os.environ.get("XDG_CONFIG_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".config"
    return root / "orchestra" / "themes"


def load_themes(dirs: list[Path] | None = None) -> tuple[list[Theme], list[ThemeProblem]]:
    """Load every *.toml in dirs (default `theme_dirs()`); later dirs override earlier ones by name.

    Within one directory a second file reusing a theme name is a problem, not an override. Textual's own
    check (deriving every shade) is left out for the shipped themes at start-up, where it took a tenth of
    the first frame's extra time: the tests derive each shipped theme, and Textual derives the one chosen.
    """
    themes: dict[str, Theme] = {}
    problems: list[ThemeProblem] = []
    shipped = _shipped_dir()
    for directory in theme_dirs() if dirs is None else dirs:
        found = _load_dir(directory, problems, derive=dirs is not None or directory != shipped)
        themes.update(found)
    return list(themes.values()), problems


def _load_dir(directory: Path, problems: list[ThemeProblem], derive: bool = True) -> dict[str, Theme]:
    """Load one directory's themes by name, appending its broken files to problems."""
    themes: dict[str, Theme] = {}
    origin: dict[str, Path] = {}
    for path in _toml_files(directory, problems):
        try:
            theme = load_theme_file(path, derive)
        except ThemeError as error:
            problems.append(ThemeProblem(error.path, error.message))
            continue
        if theme.name in themes:
            message = f"name {theme.name!r} is already used by {origin[theme.name].name}"
            problems.append(ThemeProblem(path, message))
            continue
        themes[theme.name], origin[theme.name] = theme, path
    return themes


def _toml_files(directory: Path, problems: list[ThemeProblem]) -> list[Path]:
    """The directory's *.toml files sorted by name; a missing directory has none."""
    if not directory.is_dir():
        return []
    try:
        return sorted(path for path in directory.glob("*.toml") if path.is_file())
    except OSError as error:
        problems.append(ThemeProblem(directory, f"cannot list directory: {error.strerror}"))
        return []


def load_theme_file(path: Path, derive: bool = True) -> Theme:
    """Parse and validate one theme file; raises ThemeError saying which key is wrong (or, with derive,
    what Textual found wrong when it derived the theme's shades)."""
    data = _read_toml(path)
    try:
        _check_keys(data)
        for key, value in data.items():
            _check_value(key, value)
        theme = Theme(**data)
        if derive:
            theme.to_color_system().generate()
    except _Invalid as invalid:
        raise ThemeError(path, str(invalid)) from None
    except Exception as error:  # Textual's own checks, e.g. while deriving shades.
        raise ThemeError(path, f"Textual rejected the theme: {error}") from error
    return theme


class _Invalid(Exception):
    """A validation failure whose text becomes the ThemeError message."""


def _read_toml(path: Path) -> dict[str, Any]:
    """The file's TOML table; unreadable files and syntax errors become ThemeError."""
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except OSError as error:
        raise ThemeError(path, f"cannot read file: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ThemeError(path, "not valid UTF-8 text") from None
    except tomllib.TOMLDecodeError as error:
        raise ThemeError(path, f"invalid TOML: {error}") from None


def _check_keys(data: dict[str, Any]) -> None:
    """Reject unknown keys (suggesting the closest known one) and missing required keys."""
    for key in data:
        if key not in _KNOWN_KEYS:
            raise _Invalid(f"unknown key {key!r}{_suggest(key, _KNOWN_KEYS)}")
    for key in _REQUIRED_KEYS:
        if key not in data:
            raise _Invalid(f"missing required key {key!r}")


def _suggest(word: str, choices: tuple[str, ...] | set[str]) -> str:
    """A '; did you mean ...?' suffix naming the closest choice, or nothing."""
    close = difflib.get_close_matches(word, sorted(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _check_value(key: str, value: Any) -> None:
    """Check one top-level value's type and content."""
    if key == "name":
        _check_name(value)
    elif key in _COLOUR_KEYS:
        _check_colour(key, _string(key, value))
    elif key in _BOOL_KEYS:
        if not isinstance(value, bool):
            raise _Invalid(f"{key} must be true or false, not {_describe(value)}")
    elif key in _FRACTION_KEYS:
        _check_fraction(key, value)
    else:
        _check_variables(value)


def _check_name(value: Any) -> None:
    """Theme names become a CSS class ("-theme-<name>"), so they must be identifiers."""
    if not _NAME.fullmatch(_string("name", value)):
        raise _Invalid(
            f"name {value!r} must start with a letter or '_' and contain only"
            " letters, digits, '-' and '_'"
        )


def _check_fraction(key: str, value: Any) -> None:
    """Require a number from 0 to 1 (TOML booleans are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Invalid(f"{key} must be a number from 0 to 1, not {_describe(value)}")
    if not 0 <= value <= 1:
        raise _Invalid(f"{key} must be from 0 to 1, not {value}")


def _check_variables(table: Any) -> None:
    """Check [variables]: identifier keys; text styles for "*style*" keys, else colours."""
    if not isinstance(table, dict):
        raise _Invalid(f"variables must be a table, not {_describe(table)}")
    for name, value in table.items():
        where = f"variables.{name}"
        if not _VARIABLE.fullmatch(name):
            raise _Invalid(f"{where}: not a valid CSS variable name")
        text = _string(where, value)
        if "style" in name:
            _check_text_style(where, text)
        else:
            _check_css_colour(where, text)


def _check_text_style(where: str, text: str) -> None:
    """Every word must be a Textual text-style flag such as bold, reverse or none."""
    for word in text.split() or [""]:
        if word not in VALID_STYLE_FLAGS:
            hint = _suggest(word, VALID_STYLE_FLAGS)
            raise _Invalid(f"{where} = {text!r}: {word!r} is not a text style{hint}")


def _check_css_colour(where: str, text: str) -> None:
    """Accept a CSS colour value: a colour (or "auto") optionally followed by an alpha percentage."""
    words = text.split()
    if len(words) == 2 and _PERCENT.fullmatch(words[1]):
        words = words[:1]
    if len(words) != 1:
        raise _Invalid(f"{where} = {text!r} is not a colour (expected e.g. '#336699' or '#336699 40%')")
    if words[0] != "auto":
        _check_colour(where, words[0])


def _check_colour(where: str, text: str) -> None:
    """Color.parse must accept text (hex, rgb(), hsl(), names, ansi_*)."""
    try:
        Color.parse(text)
    except ColorParseError as error:
        hint = f"; did you mean {error.suggested_color!r}?" if error.suggested_color else ""
        raise _Invalid(f"{where} = {text!r} is not a colour{hint}") from None


def _string(where: str, value: Any) -> str:
    """Return value if it is a string, else raise naming where."""
    if not isinstance(value, str):
        raise _Invalid(f"{where} must be a string, not {_describe(value)}")
    return value


def _describe(value: Any) -> str:
    """A short description of a TOML value for error messages, e.g. "integer 3"."""
    kinds = {bool: "boolean", int: "integer", float: "number", str: "string", dict: "table", list: "array"}
    return f"{kinds.get(type(value), type(value).__name__)} {value!r}"
