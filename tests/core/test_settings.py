"""The user's settings file: read with tomllib, written with tomli-w, never overwritten when broken."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from orchestra.core.settings import SettingsError, load_settings, save_theme, settings_path


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
