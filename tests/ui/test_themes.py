"""Theme files: the shipped themes, problem reporting for broken files, overrides, and use in an App."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from rich.color import Color as RichColor
from rich.color import ColorSystem
from textual.app import App, ComposeResult
from textual.theme import Theme
from textual.widgets import Label

from orchestra.ui import themes
from orchestra.ui.themes import (
    DEFAULT_DARK,
    DEFAULT_LIGHT,
    FALLBACK_THEME,
    ThemeError,
    ThemeProblem,
    load_theme_file,
    load_themes,
    theme_dirs,
)

SHIPPED = Path(__file__).parents[2] / "themes"
GOOD = 'name = "{name}"\nprimary = "#336699"\n'


def write(directory: Path, filename: str, text: str) -> Path:
    """Write a theme file into directory (created if needed) and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / filename
    path.write_text(text)
    return path


def only_problem(directory: Path) -> ThemeProblem:
    """Load directory, assert exactly one problem and that good.toml still loaded, return it."""
    loaded, problems = load_themes([directory])
    assert [theme.name for theme in loaded] == ["good"]
    assert len(problems) == 1
    return problems[0]


def test_shipped_themes_load_without_problems() -> None:
    loaded, problems = load_themes([SHIPPED])
    assert problems == []
    by_name = {theme.name: theme for theme in loaded}
    assert {DEFAULT_DARK, DEFAULT_LIGHT} <= set(by_name)
    assert by_name[DEFAULT_DARK].dark is True
    assert by_name[DEFAULT_LIGHT].dark is False
    assert by_name[DEFAULT_DARK].variables["footer-key-foreground"] == "#559abe"


def test_theme_dirs_are_the_checkout_themes_then_the_user_config(isolated_home: Path) -> None:
    assert theme_dirs() == [SHIPPED.resolve(), isolated_home / ".config" / "orchestra" / "themes"]


def test_installed_package_uses_its_bundled_themes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = tmp_path / "site-packages" / "orchestra" / "ui" / "themes.py"
    module.parent.mkdir(parents=True)
    monkeypatch.setattr(themes, "__file__", str(module))
    assert theme_dirs()[0] == tmp_path / "site-packages" / "orchestra" / "themes"


def test_relative_xdg_config_home_falls_back_to_dot_config(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")
    assert theme_dirs()[1] == isolated_home / ".config" / "orchestra" / "themes"


@pytest.mark.parametrize("filename", sorted(path.name for path in SHIPPED.glob("*.toml")))
def test_status_colours_stay_distinct_and_readable_when_downgraded(filename: str) -> None:
    theme = load_theme_file(SHIPPED / filename)
    statuses = [theme.success, theme.warning, theme.error]
    for system in (ColorSystem.EIGHT_BIT, ColorSystem.STANDARD):
        numbers = {RichColor.parse(colour).downgrade(system).number for colour in statuses}
        assert len(numbers) == 3, f"{filename}: status colours collide in {system.name}"
    for colour in [theme.foreground, *statuses]:
        assert contrast(colour, theme.background) >= 4.5, f"{filename}: {colour} is hard to read"


def contrast(first: str, second: str) -> float:
    """WCAG contrast ratio of two #rrggbb colours."""
    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def luminance(colour: str) -> float:
    """WCAG relative luminance of a #rrggbb colour."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def test_broken_toml_is_a_problem_naming_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "good.toml", GOOD.format(name="good"))
    broken = write(tmp_path, "broken.toml", 'name = "broken"\nprimary = \n')
    problem = only_problem(tmp_path)
    assert problem.path == broken
    assert "invalid TOML" in problem.message and "line 2" in problem.message
    assert str(problem).startswith(f"{broken}: ")


def test_unknown_key_is_a_problem_with_a_suggestion(tmp_path: Path) -> None:
    write(tmp_path, "good.toml", GOOD.format(name="good"))
    typo = write(tmp_path, "typo.toml", GOOD.format(name="typo") + 'backround = "#000000"\n')
    problem = only_problem(tmp_path)
    assert problem.path == typo
    assert "unknown key 'backround'" in problem.message
    assert "did you mean 'background'?" in problem.message


def test_bad_colour_is_a_problem_naming_the_key(tmp_path: Path) -> None:
    write(tmp_path, "good.toml", GOOD.format(name="good"))
    write(tmp_path, "bad.toml", GOOD.format(name="bad") + 'error = "#12345"\n')
    problem = only_problem(tmp_path)
    assert problem.path.name == "bad.toml"
    assert "error = '#12345' is not a colour" in problem.message


def test_missing_name_is_a_problem(tmp_path: Path) -> None:
    write(tmp_path, "good.toml", GOOD.format(name="good"))
    write(tmp_path, "nameless.toml", 'primary = "#336699"\n')
    problem = only_problem(tmp_path)
    assert problem.path.name == "nameless.toml"
    assert problem.message == "missing required key 'name'"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("dark = \"yes\"\n", "dark must be true or false, not string 'yes'"),
        ("text_alpha = 1.5\n", "text_alpha must be from 0 to 1, not 1.5"),
        ("surface = 12\n", "surface must be a string, not integer 12"),
        ('[variables]\nscrollbar = "bleu"\n', "scrollbar = 'bleu' is not a colour; did you mean 'blue'?"),
        ("[variables]\nborder = \"#336699 lots\"\n", "variables.border = '#336699 lots' is not a colour"),
        ("[variables]\n\"link-style\" = \"bodl\"\n", "'bodl' is not a text style; did you mean 'bold'?"),
    ],
)
def test_wrong_values_name_the_key(tmp_path: Path, extra: str, expected: str) -> None:
    path = write(tmp_path, "x.toml", GOOD.format(name="x") + extra)
    with pytest.raises(ThemeError) as raised:
        load_theme_file(path)
    assert expected in raised.value.message
    assert str(raised.value).startswith(f"{path}: ")


def test_variables_accept_colours_with_alpha_and_text_styles(tmp_path: Path) -> None:
    extra = (
        "[variables]\n"
        '"input-selection-background" = "#336699 35%"\n'
        '"block-cursor-foreground" = "ansi_default"\n'
        '"button-focus-text-style" = "b reverse"\n'
        '"footer-key-foreground" = "auto 90%"\n'
    )
    theme = load_theme_file(write(tmp_path, "x.toml", GOOD.format(name="x") + extra))
    assert theme.variables["button-focus-text-style"] == "b reverse"


def test_duplicate_name_in_one_directory_keeps_the_first(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", GOOD.format(name="same"))
    write(tmp_path, "b.toml", GOOD.format(name="same").replace("#336699", "#993366"))
    loaded, problems = load_themes([tmp_path])
    assert [theme.primary for theme in loaded] == ["#336699"]
    assert [problem.path.name for problem in problems] == ["b.toml"]
    assert "already used by a.toml" in problems[0].message


def test_user_theme_overrides_a_shipped_one(tmp_path: Path, isolated_home: Path) -> None:
    shipped = tmp_path / "shipped"
    shutil.copytree(SHIPPED, shipped)
    user_dir = isolated_home / ".config" / "orchestra" / "themes"
    write(user_dir, "mine.toml", GOOD.format(name=DEFAULT_DARK).replace("#336699", "#ff8800"))
    loaded, problems = load_themes([shipped, user_dir])
    assert problems == []
    by_name = {theme.name: theme for theme in loaded}
    assert by_name[DEFAULT_DARK].primary == "#ff8800"
    assert DEFAULT_LIGHT in by_name


def test_missing_directories_are_skipped(tmp_path: Path) -> None:
    assert load_themes([tmp_path / "nope"]) == ([], [])


def test_unreadable_file_is_a_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "locked.toml", GOOD.format(name="locked"))
    real_open = Path.open

    def deny(self: Path, *args: object, **kwargs: object):  # chmod 0 would not stop root
        if self == path:
            raise PermissionError(13, "Permission denied")
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", deny)
    _, problems = load_themes([tmp_path])
    assert [str(problem) for problem in problems] == [f"{path}: cannot read file: Permission denied"]


class ThemedApp(App[None]):
    """A minimal app to switch themes in."""

    def compose(self) -> ComposeResult:
        yield Label("status: [$success]pass[/] [$warning]slow[/] [$error]fail[/]")


async def test_loaded_themes_register_and_switch_in_an_app() -> None:
    loaded, problems = load_themes()
    assert problems == []
    app = ThemedApp()
    async with app.run_test() as pilot:
        for theme in [*loaded, FALLBACK_THEME]:
            app.register_theme(theme)
            app.theme = theme.name
            await pilot.pause()
            assert app.current_theme.name == theme.name
            assert app.current_theme is theme
            assert theme.variables.items() <= app.theme_variables.items()


def test_fallback_theme_is_a_dark_textual_theme() -> None:
    assert isinstance(FALLBACK_THEME, Theme)
    assert FALLBACK_THEME.name == "orchestra-fallback" and FALLBACK_THEME.dark
