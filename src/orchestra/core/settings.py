"""The user's own settings: `$XDG_CONFIG_HOME/orchestra/settings.toml`, a file orchestra owns.

What belongs to the person rather than the repository lives here (today: the theme they picked).
orchestra reads it with tomllib and writes it with tomli-w; keys it does not know are kept as they
are. A file that cannot be read is reported and never overwritten, so nothing in it is lost.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestra.core.base.errors import OrchestraError
from orchestra.core.base.files import write_atomic

HEADER = "# orchestra's own settings, written by orchestra (comments here are not kept).\n"


class SettingsError(OrchestraError):
    """The settings file cannot be read (or written): the message names the file and why."""


def settings_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "orchestra" / "settings.toml"


@dataclass(frozen=True)
class NotifySettings:
    """How the conductor is told that a run needs them: `[notify]` in the settings file.

    `command` is an argv (a string is split like a shell would, but never run by one); the
    message is passed to it as its last argument and in the environment."""

    enabled: bool = True
    bell: bool = True
    desktop: bool = True
    command: tuple[str, ...] = ()


@dataclass(frozen=True)
class Settings:
    """The settings orchestra uses; `raw` is the whole file as read, unknown keys included."""

    theme: str | None = None
    raw: dict[str, Any] | None = None


def load_settings(path: Path | None = None) -> Settings:
    """The settings at path (default: settings_path()); empty when there is no file; SettingsError when
    the file is there but unreadable or malformed."""
    path = path or settings_path()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Settings(raw={})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise SettingsError(f"{path}: cannot be read ({error}); it was left as it is") from None
    ui = raw.get("ui", {})
    theme = ui.get("theme") if isinstance(ui, dict) else None
    if theme is not None and not isinstance(theme, str):
        raise SettingsError(f"{path}: [ui] theme must be a string; it was left as it is")
    return Settings(theme=theme, raw=raw)


def load_notify_settings(path: Path | None = None) -> NotifySettings:
    """`[notify]` of the settings file, checked key by key (defaults when absent); SettingsError names the
    file and the key at fault. Apart from load_settings, so a mistake here never stops a theme being saved."""
    path = path or settings_path()
    return _notify_settings(path, (load_settings(path).raw or {}).get("notify", {}))


def refuse_unknown(table: dict[str, Any], known: tuple[str, ...], said: str) -> None:
    """SettingsError for the first key of table that is not known: said (with {key}), the closest known key, and
    every known one."""
    for key in sorted(table.keys() - set(known)):
        close = difflib.get_close_matches(key, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SettingsError(said.format(key=key) + f"{hint}; known: {', '.join(known)}")


def _notify_settings(path: Path, table: Any) -> NotifySettings:
    if not isinstance(table, dict):
        raise SettingsError(f"{path}: notify must be a table ([notify])")
    refuse_unknown(table, tuple(NotifySettings.__dataclass_fields__), f"{path}: [notify] {{key}} is not a setting")
    for key in ("enabled", "bell", "desktop"):
        if not isinstance(table.get(key, True), bool):
            raise SettingsError(f"{path}: [notify] {key} must be true or false")
    return NotifySettings(enabled=table.get("enabled", True), bell=table.get("bell", True),
                          desktop=table.get("desktop", True), command=_command(path, table.get("command", ())))


def _command(path: Path, value: Any) -> tuple[str, ...]:
    """The notify command as an argv: a string is split with shell quoting rules, a list is taken as it is."""
    import shlex
    wrong = f"{path}: [notify] command must be a command line (a string) or an array of strings"
    if isinstance(value, str):
        try:
            return tuple(shlex.split(value))
        except ValueError as error:
            raise SettingsError(f"{wrong} ({error})") from None
    if isinstance(value, list | tuple) and all(isinstance(part, str) for part in value):
        return tuple(value)
    raise SettingsError(wrong)


def save_theme(theme: str, path: Path | None = None) -> Path:
    """Remember the theme the user picked; the rest of the file is kept. SettingsError when the file
    cannot be read (it is not overwritten) or written."""
    def pick(raw: dict[str, Any]) -> None:
        ui = raw.get("ui") if isinstance(raw.get("ui"), dict) else {}
        raw["ui"] = {**ui, "theme": theme}
    return update_settings(pick, path)


def update_settings(change: Callable[[dict[str, Any]], None], path: Path | None = None) -> Path:
    """Apply change to the settings as read and write them back; keys orchestra does not know are kept.
    SettingsError when the file cannot be read (it is not overwritten) or written."""
    path = path or settings_path()
    raw = dict(load_settings(path).raw or {})
    change(raw)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        import tomli_w  # only when the user's choice is saved: not on the way to the first paint
        write_atomic(path, HEADER + tomli_w.dumps(raw))
    except OSError as error:
        raise SettingsError(f"{path}: cannot be written ({error.strerror or error})") from None
    return path
