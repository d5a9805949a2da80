"""The user's settings file: read with tomllib, written with tomli-w, never overwritten when broken."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from orchestra.core.settings import (
    NotifySettings,
    SettingsError,
    load_notify_settings,
    load_settings,
    save_theme,
    settings_path,
)


def test_it_lives_in_the_xdg_config_dir_and_is_empty_until_written(isolated_home: Path) -> None:
    assert settings_path() == isolated_home / ".config" / "orchestra" / "settings.toml"
    assert load_settings().theme is None and not settings_path().exists()


def test_a_chosen_theme_is_remembered_and_other_keys_are_kept() -> None:
    path = settings_path()
    path.parent.mkdir(parents=True)
    path.write_text('[ui]\ntheme = "orchestra-dark"\nkeep = 1\n\n[[hosts]]\nname = "box"\nssh = "me@box"\n')

    save_theme("orchestra-light")

    assert load_settings().theme == "orchestra-light"
    data = tomllib.loads(path.read_text())
    assert data["ui"] == {"theme": "orchestra-light", "keep": 1} and data["hosts"] == [{"name": "box", "ssh": "me@box"}]


@pytest.mark.parametrize("text", ["[ui\ntheme = 'x'\n", "[ui]\ntheme = 3\n", "\xff\xfe not text"])
def test_a_broken_settings_file_is_reported_and_never_overwritten(text: str) -> None:
    path = settings_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(text.encode("latin-1"))

    with pytest.raises(SettingsError, match=str(path)):
        load_settings()
    with pytest.raises(SettingsError, match="left as it is"):
        save_theme("orchestra-light")

    assert path.read_bytes() == text.encode("latin-1")


def test_notifications_are_on_by_default_and_configurable() -> None:
    assert load_notify_settings() == NotifySettings(enabled=True, bell=True, desktop=True, command=())
    path = settings_path()
    path.parent.mkdir(parents=True)
    path.write_text('[notify]\nbell = false\ncommand = "notify-send -u critical \'orchestra says\'"\n')
    assert load_notify_settings() == NotifySettings(bell=False, command=("notify-send", "-u", "critical",
                                                                         "orchestra says"))
    path.write_text('[notify]\nenabled = false\ncommand = ["my notifier", "--flag"]\n')
    assert load_notify_settings() == NotifySettings(enabled=False, command=("my notifier", "--flag"))


@pytest.mark.parametrize(("text", "message"), [
    ("[notify]\nbell = 'yes'\n", r"\[notify\] bell must be true or false"),
    ("[notify]\nenabled = 1\n", r"\[notify\] enabled must be true or false"),
    ("[notify]\ncommand = 3\n", r"\[notify\] command must be a command line \(a string\) or an array of strings"),
    ("[notify]\ncommand = ['ok', 2]\n", r"\[notify\] command must be"),
    ("[notify]\ncommand = \"unclosed 'quote\"\n", r"\[notify\] command must be .*No closing quotation"),
    ("[notify]\ndesktp = false\n", r"\[notify\] desktp is not a setting \(did you mean 'desktop'\?\)"),
    ("notify = true\n", r"notify must be a table"),
])
def test_bad_notify_settings_name_the_file_and_the_key(text: str, message: str) -> None:
    path = settings_path()
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(SettingsError, match=f"^{path}: {message}"):
        load_notify_settings()
    save_theme("orchestra-light")  # a mistake in [notify] does not stop the theme being remembered
    assert load_settings().theme == "orchestra-light"
