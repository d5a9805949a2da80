"""A spec's parts in the score (issue 13): `[[specs.parts]]` (or `[[parts]]` in a spec file), each with its id,
intent, allow, deny, agents and verify, validated like a spec: every bad input named by file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestra.core.score import ConfigError, Spec, load_score, parse_score

AGENTS = """\
[[agents]]
name = "coder"
kind = "shell"
command = "true"

[[agents]]
name = "critic"
kind = "shell"
command = "true"
role = "review"
"""

SPEC = """
[[specs]]
id = "app"
intent = "the app"
deny = ["secrets/**"]
verify = ["make test"]
"""

API = """
[[specs.parts]]
id = "api"
intent = "the api"
allow = ["api/**"]
deny = ["api/vendor/**"]
verify = [{ name = "api-tests", command = "make api" }]
"""

UI = """
[[specs.parts]]
id = "ui"
intent = "the ui"
allow = ["ui/**"]
agents = ["coder"]
"""


def problems(text: str) -> list[str]:
    """Each problem of the score text as `line: key: message (did you mean …?)`."""
    with pytest.raises(ConfigError) as raised:
        parse_score(text, Path("orchestra.toml"))
    return [p.format("orchestra.toml").removeprefix("orchestra.toml:") for p in raised.value.problems]


def test_parts_load_and_each_is_a_spec_of_its_own() -> None:
    spec = parse_score(AGENTS + SPEC + API + UI, Path("orchestra.toml")).spec("app")
    assert [part.id for part in spec.parts] == ["api", "ui"]
    api = spec.part_spec("api")
    assert (api.id, api.part, api.intent, api.allow) == ("app", "api", "the api", ("api/**",))
    assert api.deny == ("secrets/**", "api/vendor/**")  # the spec's deny, and the part's own
    assert [check.name for check in api.verify] == ["api-tests"]  # its own checks, not the spec's
    assert api.to_dict()["part"] == "api" and "parts" not in api.to_dict()
    assert spec.part_spec("ui").agents == ("coder",)
    assert [part["id"] for part in spec.to_dict()["parts"]] == ["api", "ui"]


def test_a_spec_without_parts_hashes_as_before() -> None:
    spec = parse_score(AGENTS + SPEC, Path("orchestra.toml")).spec("app")
    assert "parts" not in spec.to_dict() and "part" not in spec.to_dict()
    assert spec.content_hash() == Spec(id="app", intent="the app", deny=("secrets/**",),
                                       verify=spec.verify).content_hash()


@pytest.mark.parametrize(("part", "expected", "on"), [
    ('id = "api"\nintent = "x"\nagents = ["codr"]', "agents[0]: unknown agent 'codr' (did you mean 'coder'?)",
     "agents"),
    ('id = "api"\nintent = "x"\nallow = ["/etc/**"]', "allow[0]: glob '/etc/**'", "allow"),
    ('id = "Bad Id"\nintent = "x"', "id: invalid part id 'Bad Id'", "id"),
    ('id = "api"\nintent = "x"\nalow = ["api/**"]', "alow: unknown key 'alow' (did you mean 'allow'?)", "alow"),
    ('id = "api"', "missing required key 'intent'", "[[specs.parts]]"),
    ('id = "api"\nintent = "  "', "intent: must not be empty", "intent"),
    ('id = "api"\nintent = "x"\nverify = [{ name = "boundary", command = "x" }]', "reserved for the boundary gate",
     "verify"),
])
def test_a_bad_part_is_named_by_line_and_key(part: str, expected: str, on: str) -> None:
    text = AGENTS + SPEC + "\n[[specs.parts]]\n" + part + "\n"
    found = problems(text)
    assert len(found) == 1 and expected in found[0], found
    line = next(number for number, content in enumerate(text.splitlines(), 1)
                if number > len((AGENTS + SPEC).splitlines()) and content.startswith(on))
    assert found[0].startswith(f"{line}: specs[0].parts[0]"), found


def test_a_duplicate_part_id_names_the_first() -> None:
    [found] = problems(AGENTS + SPEC + API + API.replace("the api", "again"))
    assert "specs[0].parts[1].id: duplicate part id 'api' (first defined at parts[0])" in found


@pytest.mark.parametrize(("parts", "expected"), [
    ('parts = "api"', "specs[0].parts: expected array of tables ([[specs.parts]], or [[parts]] in a spec file), "
                      "got string"),
    ('parts = ["api"]', "specs[0].parts[0]: expected table ([[specs.parts]]), got string"),
    ("parts = []", "specs[0].parts: is empty: give each part as a [[specs.parts]] table, or leave parts out"),
])
def test_parts_that_are_not_an_array_of_tables_are_refused(parts: str, expected: str) -> None:
    [found] = problems(AGENTS + SPEC + parts + "\n")
    assert expected in found


def test_a_reviewer_cannot_be_a_parts_author() -> None:
    [found] = problems(AGENTS + SPEC + API + UI.replace('agents = ["coder"]', 'agents = ["critic"]'))
    assert "agent 'critic' has role \"review\": it reviews, it does not write" in found


def test_a_spec_file_has_parts_as_top_level_tables(tmp_path: Path) -> None:
    (tmp_path / "orchestra.toml").write_text(AGENTS)
    (tmp_path / "specs").mkdir()
    body = 'intent = "the app"\n' + API.replace("[[specs.parts]]", "[[parts]]")
    (tmp_path / "specs" / "app.toml").write_text(body)
    spec = load_score(tmp_path / "orchestra.toml").spec("app")
    assert [part.id for part in spec.parts] == ["api"] and spec.part_spec("api").source == "specs/app.toml"
    (tmp_path / "specs" / "app.toml").write_text(body + '\n[[parts]]\nid = "ui"\nintent = "x"\nagents = ["nobody"]\n')
    with pytest.raises(ConfigError) as raised:
        load_score(tmp_path / "orchestra.toml")
    [problem] = raised.value.problems
    assert problem.file == tmp_path / "specs" / "app.toml" and problem.key == "parts[1].agents[0]"
    assert problem.line == 13 and "unknown agent 'nobody'" in problem.message
