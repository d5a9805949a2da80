"""`orchestra spec new ID --template KIND`: a commented spec file that loads at once; every refusal writes nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from orchestra.cli import main
from orchestra.core.score import load_score
from orchestra.core.score.templates import TEMPLATES
from tests.core.test_cli import run_cli

SCORE = """\
[[agents]]
name = "fixer"
kind = "shell"
command = "true"

[[specs]]
id = "inline"
intent = "Already here"
"""


@pytest.fixture
def scored(repo: Path) -> Path:
    """The test repository with a score holding one agent and one inline spec."""
    (repo / "orchestra.toml").write_text(SCORE)
    return repo


def tree(root: Path) -> dict[str, str]:
    """Every file under root but .git, with its text: what a refusal must leave alone."""
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(root).parts}


@pytest.mark.parametrize("kind", list(TEMPLATES))
def test_each_template_writes_a_spec_file_that_loads_and_cannot_pass_until_filled_in(
        scored: Path, capsys: pytest.CaptureFixture[str], kind: str) -> None:
    code, out, err = run_cli(capsys, scored, "spec", "new", f"new-{kind}", "--template", kind)

    path = scored / "specs" / f"new-{kind}.toml"
    assert (code, err) == (0, "") and str(path) in out
    spec = load_score(scored / "orchestra.toml").spec(f"new-{kind}")
    assert spec.source == f"specs/new-{kind}.toml" and spec.intent.startswith("TODO")
    assert {"orchestra.toml", "specs/**"} <= set(spec.deny)
    text = path.read_text()
    for section in ("# Intent:", "# Boundaries:", "# Stable paths:", "# Verification:", "# Rollback:"):
        assert section in text
    assert spec.verify
    for check in spec.verify:
        done = subprocess.run(["sh", "-c", check.command], cwd=scored, capture_output=True, text=True)
        assert done.returncode != 0 and f"TODO in specs/new-{kind}.toml" in done.stderr


def test_the_templates_ask_for_what_their_kind_of_work_needs(scored: Path) -> None:
    for kind in TEMPLATES:
        assert main(["-C", str(scored), "spec", "new", kind, "--template", kind]) == 0
    score = load_score(scored / "orchestra.toml")
    bugfix, security, docs, refactor = (score.spec(kind) for kind in ("bugfix", "security", "docs", "refactor"))
    assert bugfix.verify[0].prove  # a failing test that reproduces the bug comes first
    assert [c.sarif for c in security.verify if c.sarif] == ["scan.sarif"] and security.max_autonomy == "manual"
    assert {".github/**", "docs/**"} <= set(security.deny)
    assert docs.allow == ("docs/**", "*.md")
    assert "tests/**" in refactor.deny and "tests/**" not in refactor.allow


def test_runs_keep_working_right_after_a_spec_is_written(scored: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, scored, "spec", "new", "fix-login", "--template", "bugfix")[0] == 0
    code, out, err = run_cli(capsys, scored, "runs", "--json")
    assert (code, out.strip(), err) == (0, "[]", "")


def test_the_specs_directory_is_created_and_other_spec_files_are_kept(scored: Path) -> None:
    (scored / "specs").mkdir()
    (scored / "specs" / "old.toml").write_text('intent = "Old"\n')
    assert main(["-C", str(scored), "spec", "new", "new", "--template", "docs"]) == 0
    assert [s.id for s in load_score(scored / "orchestra.toml").specs] == ["inline", "new", "old"]
    assert (scored / "specs" / "old.toml").read_text() == 'intent = "Old"\n'


REFUSALS = {
    "invalid-id": (["Fix_Login", "--template", "bugfix"], 2, "invalid spec id 'Fix_Login'"),
    "id-with-a-slash": (["../escape", "--template", "bugfix"], 2, "invalid spec id '../escape'"),
    "too-long-id": (["a" * 200, "--template", "bugfix"], 2, "spec id is 200 characters long"),
    "unknown-template": (["fix", "--template", "hotfix"], 2,
                         "unknown template 'hotfix': use one of bugfix, feature, refactor, docs, security"),
    "inline-id": (["inline", "--template", "feature"], 1, "orchestra.toml already has a spec 'inline'"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_refused_spec_new_says_why_in_one_line_and_writes_nothing(
        scored: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    args, status, reason = REFUSALS[case]
    before = tree(scored)

    code, out, err = run_cli(capsys, scored, "spec", "new", *args)

    assert (code, out) == (status, "")
    assert reason in err and len(err.strip().splitlines()) == 1
    assert tree(scored) == before and not (scored / "specs").exists()


def test_an_existing_spec_file_is_never_overwritten(scored: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (scored / "specs").mkdir()
    (scored / "specs" / "fix.toml").write_text('intent = "Mine"\n')

    code, out, err = run_cli(capsys, scored, "spec", "new", "fix", "--template", "bugfix")

    assert (code, out) == (1, "") and "specs/fix.toml already exists; it was left as it is" in err
    assert (scored / "specs" / "fix.toml").read_text() == 'intent = "Mine"\n'


def test_without_a_score_nothing_is_written(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, repo, "spec", "new", "fix", "--template", "bugfix")
    assert (code, out) == (1, "") and "There is no orchestra.toml in" in err and "orchestra init" in err
    assert not (repo / "specs").exists()


def test_a_file_called_specs_is_left_alone(scored: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (scored / "specs").write_text("my notes\n")
    code, out, err = run_cli(capsys, scored, "spec", "new", "fix", "--template", "bugfix")
    assert (code, out) == (1, "") and "is a file, not a directory; nothing was written" in err
    assert (scored / "specs").read_text() == "my notes\n"


def test_a_score_that_is_not_toml_is_reported_and_nothing_is_written(
        scored: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (scored / "orchestra.toml").write_text("[[specs]\n")
    code, out, err = run_cli(capsys, scored, "spec", "new", "fix", "--template", "bugfix")
    assert (code, out) == (2, "") and "orchestra.toml:1: TOML syntax error" in err
    assert not (scored / "specs").exists()


@pytest.mark.parametrize("args", [["new", "fix"], ["make", "fix", "--template", "bugfix"], ["new"]])
def test_a_malformed_spec_command_is_bad_usage(scored: Path, capsys: pytest.CaptureFixture[str],
                                               args: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["-C", str(scored), "spec", *args])
    assert caught.value.code == 2 and not (scored / "specs").exists()
    err = capsys.readouterr().err
    assert err.startswith("usage: orchestra spec") and "error:" in err
