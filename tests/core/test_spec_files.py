"""Spec files: specs/*.toml next to orchestra.toml, loaded with the score, their errors located in them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from orchestra.cli import main
from orchestra.core.base.canonical import content_hash
from orchestra.core.score import ConfigError, load_score, parse_score
from tests.conftest import git
from tests.core.conftest import MakeFleet
from tests.core.helpers import score_text, wait_settled

AGENTS = """\
[[agents]]
name = "fixer"
kind = "shell"
command = "python fix.py"

[[agents]]
name = "critic"
kind = "shell"
command = "critique"
role = "review"
"""

INLINE = AGENTS + """
[[specs]]
id = "inline"
intent = "Keep it inline"
"""


def score_dir(tmp_path: Path, score: str = INLINE, **spec_files: str | bytes) -> Path:
    """Write orchestra.toml and specs/<name> for each spec file (a_toml is a.toml); the score's path."""
    (tmp_path / "specs").mkdir(exist_ok=True)
    for name, content in spec_files.items():
        path = tmp_path / "specs" / (name[:-5] + ".toml" if name.endswith("_toml") else name)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    path = tmp_path / "orchestra.toml"
    path.write_text(score)
    return path


def load_error(path: Path) -> list[str]:
    """The lines of the ConfigError loading path raises, with the temporary directory left out."""
    with pytest.raises(ConfigError) as caught:
        load_score(path)
    return [line.replace(f"{path.parent}/", "") for line in str(caught.value).splitlines()]


def test_spec_files_load_after_the_inline_specs_in_file_name_order_with_their_source(tmp_path: Path) -> None:
    fix = 'intent = "Fix the mean"\nallow = ["calc/**"]\n\n[[verify]]\nname = "tests"\ncommand = "pytest -q"\n'
    path = score_dir(tmp_path, **{"b-fix.toml": fix, "a-docs.toml": 'id = "a-docs"\nintent = "Document it"\n'})

    score = load_score(path)

    assert [spec.id for spec in score.specs] == ["inline", "a-docs", "b-fix"]
    inline, docs, fix_spec = score.specs
    assert (inline.source, inline.source_sha256) == (None, None)
    assert docs.source == "specs/a-docs.toml"
    assert fix_spec.source == "specs/b-fix.toml"
    assert fix_spec.source_sha256 == hashlib.sha256(fix.encode()).hexdigest()
    assert fix_spec.allow == ("calc/**",) and [(c.name, c.command) for c in fix_spec.verify] == [("tests", "pytest -q")]
    assert score.spec("b-fix") is fix_spec


def test_files_that_are_not_toml_and_dotfiles_are_ignored(tmp_path: Path) -> None:
    path = score_dir(tmp_path, **{"README.md": "not a spec", "notes_toml.bak": "intent = 1",
                                  ".#draft_toml": "broken [", "real_toml": 'intent = "Real"\n'})
    assert [spec.id for spec in load_score(path).specs] == ["inline", "real"]


def test_without_a_specs_directory_or_with_a_file_called_specs_only_the_score_is_read(tmp_path: Path) -> None:
    path = tmp_path / "orchestra.toml"
    path.write_text(INLINE)
    assert [spec.id for spec in load_score(path).specs] == ["inline"]
    (tmp_path / "specs").write_text("intent = 'not a directory'\n")
    assert [spec.id for spec in load_score(path).specs] == ["inline"]


def test_problems_name_the_spec_file_its_line_and_key_with_a_guess(tmp_path: Path) -> None:
    bad = 'intnet = "Fix it"\nagents = ["fixr"]\n\n[[verify]]\nname = "tests"\ncomand = "pytest"\n'
    path = score_dir(tmp_path, fix_toml=bad)

    assert load_error(path) == [
        "specs/fix.toml:1: intnet: unknown key 'intnet' (did you mean 'intent'?)",
        "specs/fix.toml:2: agents[0]: unknown agent 'fixr' (did you mean 'fixer'?)",
        "specs/fix.toml:6: verify[0].comand: unknown key 'comand' (did you mean 'command'?)",
    ]


def test_problems_of_the_score_and_every_spec_file_are_reported_together_in_file_order(tmp_path: Path) -> None:
    path = score_dir(tmp_path, 'colour = "red"\n' + INLINE, b_toml='intent = ""\n', a_toml="intent = 3\n")

    with pytest.raises(ConfigError) as caught:
        load_score(path)

    error = caught.value
    assert [(p.file, p.line, p.key) for p in error.problems] == [
        (path, 1, "colour"), (tmp_path / "specs" / "a.toml", 1, "intent"), (tmp_path / "specs" / "b.toml", 1, "intent")]
    assert load_error(path)[1:] == ["specs/a.toml:1: intent: expected string, got integer",
                                    "specs/b.toml:1: intent: must not be empty"]
    assert error.exit_status == 2 and (error.path, error.line, error.key) == (path, 1, "colour")


def test_a_spec_file_repeating_an_inline_id_is_an_error_naming_both_places(tmp_path: Path) -> None:
    path = score_dir(tmp_path, inline_toml='id = "inline"\nintent = "Again"\n')
    with pytest.raises(ConfigError) as caught:
        load_score(path)
    assert (caught.value.path, caught.value.line, caught.value.key) == (tmp_path / "specs" / "inline.toml", 1, "id")
    assert load_error(path) == [
        "specs/inline.toml:1: id: duplicate spec id 'inline': also defined at orchestra.toml:13"]


def test_a_spec_file_left_without_an_id_repeating_an_inline_one_names_both_places(tmp_path: Path) -> None:
    path = score_dir(tmp_path, inline_toml='intent = "Again"\n')
    assert load_error(path) == ["specs/inline.toml: duplicate spec id 'inline': also defined at orchestra.toml:13"]


def test_two_spec_files_with_one_id_is_an_error_naming_both_files(tmp_path: Path) -> None:
    path = score_dir(tmp_path, a_toml='intent = "A"\nid = "b"\n', b_toml='intent = "B"\n')
    assert load_error(path) == [
        "specs/a.toml:2: id: id 'b' does not match the file's name 'a.toml': leave id out (the file's name is the "
        "id), or rename the file to 'b.toml'",
        "specs/b.toml: duplicate spec id 'b': also defined at specs/a.toml:2",
    ]


def test_an_id_that_is_not_the_files_name_is_an_error(tmp_path: Path) -> None:
    path = score_dir(tmp_path, fix_login_toml='id = "fix-logout"\nintent = "Fix it"\n')
    assert load_error(path) == [
        "specs/fix_login.toml:1: id: id 'fix-logout' does not match the file's name 'fix_login.toml': leave id out "
        "(the file's name is the id), or rename the file to 'fix-logout.toml'"]


def test_a_file_name_that_is_no_valid_id_asks_for_a_rename(tmp_path: Path) -> None:
    path = score_dir(tmp_path, **{"Fix Login_toml": 'intent = "Fix it"\n'})
    assert load_error(path) == [
        "specs/Fix Login.toml: the file's name 'Fix Login' is not a valid spec id (lower-case letters, digits, '-' "
        "and '_', starting with a letter or digit): rename the file, e.g. fix-login.toml"]


def test_an_id_of_the_wrong_type_or_pattern_is_reported_like_an_inline_ones(tmp_path: Path) -> None:
    path = score_dir(tmp_path, a_toml='id = 7\nintent = "A"\n', Bad_toml='id = "Bad"\nintent = "B"\n')
    assert load_error(path) == [
        "specs/Bad.toml:1: id: invalid spec id 'Bad': use lower-case letters, digits, '-' and '_', starting with a "
        "letter or digit",
        "specs/a.toml:1: id: expected string, got integer",
    ]


def test_a_spec_file_written_as_a_specs_table_says_to_drop_the_header(tmp_path: Path) -> None:
    path = score_dir(tmp_path, fix_toml='[[specs]]\nid = "fix"\nintent = "Fix it"\n')
    assert load_error(path) == ["specs/fix.toml:1: specs: a spec file holds one spec: write its keys (id, intent, "
                                "...) at the top level, without [[specs]]"]


def test_a_missing_intent_is_reported_in_the_spec_file(tmp_path: Path) -> None:
    path = score_dir(tmp_path, fix_toml='allow = ["src/**"]\n')
    assert load_error(path) == ["specs/fix.toml: intent: missing required key 'intent'"]


def test_broken_toml_in_spec_files_is_reported_with_file_and_line_next_to_the_scores_problems(tmp_path: Path) -> None:
    path = score_dir(tmp_path, 'colour = "red"\n' + INLINE, a_toml='intent = "A"\nallow = [\n',
                     b_toml='intent = "B\n')
    lines = load_error(path)
    assert lines[0] == "orchestra.toml:1: colour: unknown key 'colour'"
    assert lines[1] == "specs/a.toml:2: TOML syntax error: Invalid value (at end of file)"
    assert lines[2].startswith("specs/b.toml:1: TOML syntax error:") and len(lines) == 3


def test_a_broken_score_and_broken_spec_files_are_reported_together(tmp_path: Path) -> None:
    path = score_dir(tmp_path, "[[agents]\n", a_toml="intent = = 1\n", b_toml='intent = "fine"\n')
    lines = load_error(path)
    assert [line.split(": TOML syntax error")[0] for line in lines] == ["orchestra.toml:1", "specs/a.toml:1"]


def test_a_nul_character_in_a_spec_file_is_reported_as_in_the_score(tmp_path: Path) -> None:
    path = score_dir(tmp_path, fix_toml='intent = "Fix"\nallow = ["src/\\u0000x"]\n')
    assert load_error(path) == ["specs/fix.toml:2: allow[0]: contains a NUL character (\\u0000)"]


def test_a_spec_file_nested_too_deep_is_refused_naming_its_line(tmp_path: Path) -> None:
    path = score_dir(tmp_path, deep_toml='intent = "Deep"\nallow = ' + "[" * 2000 + "]" * 2000 + "\n")
    assert load_error(path) == ["specs/deep.toml:2: allow: arrays and inline tables are nested more than 32 levels "
                                "deep"]


def test_a_spec_file_that_is_not_utf8_is_named_without_a_traceback(tmp_path: Path) -> None:
    path = score_dir(tmp_path, latin_toml='intent = "caf\xe9"\n'.encode("latin-1"))
    assert load_error(path) == ["specs/latin.toml: not valid UTF-8 text (invalid continuation byte)"]


def test_a_spec_file_that_is_a_directory_is_named(tmp_path: Path) -> None:
    path = score_dir(tmp_path)
    (tmp_path / "specs" / "odd.toml").mkdir()
    assert load_error(path) == ["specs/odd.toml: is a directory, not a file"]


def test_a_spec_file_that_is_a_dangling_link_is_named(tmp_path: Path) -> None:
    path = score_dir(tmp_path)
    (tmp_path / "specs" / "gone.toml").symlink_to(tmp_path / "nowhere.toml")
    assert load_error(path) == ["specs/gone.toml: file not found"]


def test_an_unreadable_spec_file_is_named(tmp_path: Path) -> None:
    """A read that fails for another reason than a missing file (here a link to itself: the tests run as root,
    who reads any file whatever its mode) says why."""
    path = score_dir(tmp_path)
    (tmp_path / "specs" / "loop.toml").symlink_to(tmp_path / "specs" / "loop.toml")
    assert load_error(path) == ["specs/loop.toml: cannot read file: Too many levels of symbolic links"]


def test_a_spec_files_reviewers_follow_the_same_rules_as_inline_ones(tmp_path: Path) -> None:
    path = score_dir(tmp_path, fix_toml='intent = "Fix"\nagents = ["fixer"]\nreview = ["fixer"]\n')
    assert load_error(path) == [
        "specs/fix.toml:3: review[0]: agent 'fixer' reviews but has no role = \"review\" (a reviewer only reads; "
        "give it the role)",
        "specs/fix.toml:3: review: spec 'fix': agent 'fixer' would review its own work",
    ]


LLM_AGENTS = """\
[[agents]]
name = "writer"
kind = "llm"
model = "openai/gpt-4o"

[[agents]]
name = "critic"
kind = "llm"
model = "openai/gpt-4o-mini"
role = "review"

[review]
agents = ["critic"]
"""


def test_a_file_spec_reviewed_by_the_scores_reviewers_is_named_in_the_scores_problem(tmp_path: Path) -> None:
    path = score_dir(tmp_path, LLM_AGENTS, fix_toml='intent = "Fix"\nagents = ["critic"]\n',
                     other_toml='intent = "Other"\nagents = ["writer"]\n')
    lines = load_error(path)
    assert lines[0] == "orchestra.toml:13: review.agents: spec 'fix' (specs/fix.toml): agent 'critic' would review " \
                       "its own work"
    assert lines[1].startswith("orchestra.toml:13: review.agents: spec 'other' (specs/other.toml): reviewer "
                               "'critic' and author 'writer' both use openai models")
    assert lines[2:] == ["specs/fix.toml:2: agents: agent 'critic' has role \"review\": it reviews, it does not write"]


# Computed with the code from before spec files: an inline spec's hash must never change (the ledger keeps it).
HASHED = AGENTS + """
[[specs]]
id = "fix-mean"
intent = "Fix calc.mean"
allow = ["calc/**", "tests/**"]
deny = ["calc/_version.py"]
verify = ["python -m pytest -q", { name = "lint", command = "ruff check .", timeout = 60 }]
agents = ["fixer"]
review = ["critic"]
max_autonomy = "manual"

[[specs]]
id = "docs"
intent = "Document it"
"""


def test_an_inline_specs_hash_is_the_one_it_had_before_spec_files(tmp_path: Path) -> None:
    path = score_dir(tmp_path, HASHED, other_toml='intent = "A file spec beside them"\n')
    hashes = {spec.id: spec.content_hash() for spec in load_score(path).specs}
    assert hashes["fix-mean"] == "21bd4ad4db2bd40948841c118ce37c4b40d48c2aefccdccdca602a4978e94f68"
    assert hashes["docs"] == "8a90da91c5372bcaca9333f989135a8c9a0cb1ce3f1d73c372b22b6f1acdb055"
    assert "source" not in load_score(path).spec("docs").to_dict()


def test_a_file_specs_hash_changes_with_its_file_and_names_the_file(tmp_path: Path) -> None:
    path = score_dir(tmp_path, docs_toml='intent = "Document it"\n')
    first = load_score(path).spec("docs")
    inline_twin = parse_score(AGENTS + '[[specs]]\nid = "docs"\nintent = "Document it"\n', path).spec("docs")
    assert first.to_dict() == {**inline_twin.to_dict(), "source": "specs/docs.toml",
                               "source_sha256": first.source_sha256}
    assert first.content_hash() == content_hash(first.to_dict()) != inline_twin.content_hash()

    (tmp_path / "specs" / "docs.toml").write_text('intent = "Document it"\n# Rollback: revert the merge.\n')
    commented = load_score(path).spec("docs")
    (tmp_path / "specs" / "docs.toml").write_text('intent = "Document all of it"\n')
    reworded = load_score(path).spec("docs")
    assert len({first.content_hash(), commented.content_hash(), reworded.content_hash()}) == 3
    assert reworded.source_sha256 == hashlib.sha256(b'intent = "Document all of it"\n').hexdigest()


def test_a_broken_spec_file_stops_a_command_with_exit_2_and_its_name(
        repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "orchestra.toml").write_text(INLINE)
    (repo / "specs").mkdir()
    (repo / "specs" / "fix.toml").write_text('intnet = "x"\n')

    assert main(["-C", str(repo), "runs"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"{repo}/specs/fix.toml:1: intnet: unknown key 'intnet' (did you mean 'intent'?)" in err


def test_a_decision_on_a_file_specs_run_records_the_file_and_its_sha256(repo: Path, make_fleet: MakeFleet) -> None:
    text = 'intent = "Write the answer"\nallow = ["src/**"]\n'
    (repo / "specs").mkdir()
    (repo / "specs" / "answer.toml").write_text(text)
    git(repo, "add", "specs")
    fleet = make_fleet(repo, score_text({"writer": "echo 42 > src/answer.txt"}, [{"id": "inline", "intent": "x"}]))
    run = wait_settled(fleet, fleet.spawn("answer")[0].id)
    inline = wait_settled(fleet, fleet.spawn("inline")[0].id)

    fleet.accept(run.id)
    fleet.reject(inline.id, "not needed")

    accepted, rejected = fleet.ledger.entries()
    assert accepted["spec_file"] == "specs/answer.toml"
    assert accepted["spec_file_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert accepted["spec_hash"] == fleet.score.spec("answer").content_hash()
    assert "spec_file" not in rejected and rejected["spec_hash"] == fleet.score.spec("inline").content_hash()
