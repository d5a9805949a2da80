"""`orchestra spec draft "WHAT"`: an llm agent (the fake model server) reads the target branch read-only and
proposes a spec; the file loads, cannot be spawned until edited, and nothing is left behind or overwritten."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from orchestra.core.git.repo import open_repository
from orchestra.core.score import ConfigError, load_score
from orchestra.core.score.drafts import check_draft_loads
from tests.conftest import git
from tests.core.helpers import PYTHON, SRC, processes_with, wait_for
from tests.core.test_cli import run_cli
from tests.harness.fake_openai import FakeOpenAI, hang, text, tool_calls

WANTED = "make answer() return 42"
PYPROJECT = '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n'


def llm_score(url: str, extra: str = "") -> str:
    return ('[[agents]]\nname = "coder"\nkind = "shell"\ncommand = "true"\n\n'
            f'[[agents]]\nname = "drafter"\nkind = "llm"\nmodel = "openai/fake-drafter"\napi_base = "{url}"\n'
            f'api_key_env = "FAKE_PROVIDER_KEY"\n\n{extra}')


@pytest.fixture
def project(repo: Path) -> Path:
    """The test repository with build files and a committed score; the checkout also holds uncommitted work."""
    (repo / "pyproject.toml").write_text(PYPROJECT)
    (repo / "Makefile").write_text("test:\n\tpython -m pytest -q\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "build files")
    (repo / "src" / "app.py").write_text("def answer():\n    return 'uncommitted'\n")  # the user's own work
    return repo


def scored(project: Path, url: str, extra: str = "") -> Path:
    (project / "orchestra.toml").write_text(llm_score(url, extra))
    git(project, "add", "orchestra.toml")
    git(project, "commit", "-q", "-m", "score")
    return project


def answer(spec_id: str = "answer-42", **changes: object) -> str:
    data = {"id": spec_id, "intent": "answer() returns 42; done when the tests say so",
            "allow": ["src/app.py", "tests/**"], "deny": ["README.md"], "stable": ["pyproject.toml"],
            "verify": [{"name": "tests", "command": "python -m pytest -q", "found_in": "Makefile"}],
            "notes": "answer() lives in src/app.py.", "rollback": "Nothing beyond the revert."}
    return json.dumps({**data, **changes})


def status(root: Path) -> str:
    return git(root, "status", "--porcelain", "--untracked-files=all")


def nothing_left(root: Path) -> None:
    """No temporary checkout, no jail of a drafter, no run: what a draft leaves is at most its spec file."""
    repo = open_repository(root)
    assert git(root, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert not (repo.common_dir / "worktrees").exists() or not any((repo.common_dir / "worktrees").iterdir())
    for place in (repo.worktrees_dir, repo.jails_dir):
        assert not place.exists() or not any(place.iterdir()), list(place.iterdir())
    runs = repo.state_dir / "runs"
    assert not runs.exists() or not any(runs.iterdir())


def test_a_drafted_spec_loads_with_the_models_answer_and_cannot_be_spawned_until_edited(
        project: Path, server: FakeOpenAI, capsys: pytest.CaptureFixture[str]) -> None:
    root = scored(project, server.url)
    before = status(root)
    server.script(tool_calls(("read_file", {"path": "src/app.py"})),
                  tool_calls(("write_file", {"path": "src/app.py", "content": "hacked\n"})), text(answer()))
    code, out, err = run_cli(capsys, root, "spec", "draft", WANTED)
    assert code == 0, err
    path = root / "specs" / "answer-42.toml"
    assert f"Wrote {path}" in out and "remove its `draft = true`" in out
    assert "drafter (openai/fake-drafter) is reading the repository" in err and "→ read_file" in err
    spec = load_score(root / "orchestra.toml").spec("answer-42")
    assert (spec.intent, spec.allow, spec.draft) == ("answer() returns 42; done when the tests say so",
                                                     ("src/app.py", "tests/**"), True)
    assert spec.deny == ("README.md", "pyproject.toml", "orchestra.toml", "specs/**")
    assert [(c.name, c.command) for c in spec.verify] == [("tests", "python -m pytest -q")]
    written = path.read_text()
    assert written.startswith(f"# Spec answer-42: drafted by drafter (openai/fake-drafter) from:\n#   {WANTED}\n")
    assert "nothing runs until you do" in written and "# Rollback" in written and "found in Makefile" in written
    # What it was asked: the files of the target with its build files; it read the committed file, read-only.
    prompt = server.requests[0]["messages"][1]["content"]
    assert WANTED in prompt and "src/app.py" in prompt and "--- pyproject.toml ---" in prompt and "pytest" in prompt
    assert {tool["function"]["name"] for tool in server.requests[0]["tools"]} == {"list_files", "read_file", "search"}
    assert "return 41" in server.requests[1]["messages"][3]["content"]  # the target's, not the uncommitted edit
    assert "not allowed" in server.requests[2]["messages"][5]["content"] or \
        "unknown tool" in server.requests[2]["messages"][5]["content"]
    # The checkout is as it was, but for the new spec file; nothing else is left; no run was started.
    assert set(status(root).splitlines()) == {*before.splitlines(), "?? specs/answer-42.toml"}
    assert (root / "src" / "app.py").read_text() == "def answer():\n    return 'uncommitted'\n"
    nothing_left(root)
    code, out, err = run_cli(capsys, root, "spawn", "answer-42")
    assert code == 1 and "specs/answer-42.toml is a draft" in err and "remove `draft = true`" in err
    nothing_left(root)
    path.write_text(written.replace("draft = true\n", ""))
    assert load_score(root / "orchestra.toml").spec("answer-42").draft is False


def test_json_prints_the_drafted_spec_as_well_as_writing_it(project: Path, server: FakeOpenAI,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    root = scored(project, server.url)
    server.script(text(answer()))
    code, out, err = run_cli(capsys, root, "spec", "draft", WANTED, "--json")
    assert code == 0, err
    drafted = json.loads(out)
    assert (drafted["id"], drafted["path"], drafted["agent"], drafted["draft"]) == (
        "answer-42", str(root / "specs" / "answer-42.toml"), "drafter", True)
    assert drafted["verify"] == [{"name": "tests", "command": "python -m pytest -q", "found_in": "Makefile"}]
    assert Path(drafted["path"]).is_file()


def test_a_malformed_answer_is_asked_again_then_fails_with_nothing_written(
        project: Path, server: FakeOpenAI, capsys: pytest.CaptureFixture[str]) -> None:
    root = scored(project, server.url)
    before = status(root)
    server.script(text("Here is a spec for you!"), text(answer(intent="")),
                  text(answer(verify=[{"name": "t", "command": "a"}, {"name": "t", "command": "b"}])))
    code, out, err = run_cli(capsys, root, "spec", "draft", WANTED)
    assert code == 1 and out == ""
    assert "drafter could not draft the spec: malformed answer after 3 attempts" in err
    assert "duplicate check name 't'" in err and "Nothing was written" in err
    assert len(server.requests) == 3
    assert "could not be used: the answer holds no JSON object" in server.requests[1]["messages"][-1]["content"]
    assert "intent" in server.requests[2]["messages"][-1]["content"]
    assert status(root) == before and not (root / "specs").exists()
    nothing_left(root)


def test_a_malformed_answer_then_a_good_one_is_written(project: Path, server: FakeOpenAI,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    root = scored(project, server.url)
    server.script(text(answer(allow=[])), text("```json\n" + answer() + "\n```"))
    code, out, err = run_cli(capsys, root, "spec", "draft", WANTED)
    assert code == 0, err
    assert "should be non-empty" in server.requests[1]["messages"][-1]["content"]
    assert load_score(root / "orchestra.toml").spec("answer-42").draft


def test_a_score_without_an_llm_agent_is_refused_saying_how_to_add_one(
        project: Path, server: FakeOpenAI, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "orchestra.toml").write_text('[[agents]]\nname = "coder"\nkind = "shell"\ncommand = "true"\n')
    code, out, err = run_cli(capsys, project, "spec", "draft", WANTED)
    assert code == 1 and "No llm agent can draft a spec" in err and 'kind = "llm"' in err
    assert not (project / "specs").exists() and server.requests == []
    nothing_left(project)


def test_an_agent_that_cannot_draft_is_bad_usage(project: Path, server: FakeOpenAI,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    root = scored(project, server.url)
    code, _, err = run_cli(capsys, root, "spec", "draft", WANTED, "--agent", "coder")
    assert code == 2 and "'coder' is a shell agent" in err and "(drafter)" in err
    code, _, err = run_cli(capsys, root, "spec", "draft", WANTED, "--agent", "nobody")
    assert code == 2 and "no agent 'nobody'" in err
    assert not (root / "specs").exists() and server.requests == []


def test_a_taken_id_gets_a_suffix_and_no_file_is_overwritten(project: Path, server: FakeOpenAI,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    root = scored(project, server.url, '[[specs]]\nid = "answer-42"\nintent = "inline"\n')
    (root / "specs").mkdir()
    existing = root / "specs" / "answer-42-2.toml"
    existing.write_text('intent = "already here"\n')
    server.script(text(answer("answer-42")), text(answer("Answer 42!")))
    code, out, err = run_cli(capsys, root, "spec", "draft", WANTED)
    assert code == 0, err
    assert "a spec 'answer-42' already exists: the draft's id is 'answer-42-3'" in out
    assert load_score(root / "orchestra.toml").spec("answer-42-3").draft
    code, out, err = run_cli(capsys, root, "spec", "draft", WANTED)
    assert code == 0, err
    assert "the proposed id 'Answer 42!' is not a valid spec id and a spec 'answer-42' already exists" in out
    assert (root / "specs" / "answer-42-4.toml").is_file()
    assert existing.read_text() == 'intent = "already here"\n'


def test_a_file_that_appears_while_drafting_is_left_as_it_is(project: Path, server: FakeOpenAI,
                                                             capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    root = scored(project, server.url)
    (root / "specs").mkdir()
    spec_file = root / "specs" / "answer-42.toml"
    # The id is chosen from what was there when drafting began; the file is created while the model works.
    monkeypatch.setattr("orchestra.core.onboarding.draft.taken_ids", lambda score: set())
    spec_file.write_text('intent = "the conductor\'s own"\n')
    server.script(text(answer()), text(answer()))
    code, out, err = run_cli(capsys, root, "spec", "draft", WANTED)
    assert code == 1 and "would not load, so nothing was written" in err and "duplicate spec id 'answer-42'" in err
    assert spec_file.read_text() == 'intent = "the conductor\'s own"\n'
    # Even a file that appears after that check is never replaced: it is created only if it is not there.
    monkeypatch.setattr("orchestra.core.onboarding.draft.check_draft_loads", lambda *args: None)
    code, out, err = run_cli(capsys, root, "spec", "draft", WANTED)
    assert code == 1 and "answer-42.toml already exists; it was left as it is" in err
    assert spec_file.read_text() == 'intent = "the conductor\'s own"\n'
    nothing_left(root)


def test_a_spec_file_that_would_break_the_score_is_found_before_writing(project: Path) -> None:
    (project / "orchestra.toml").write_text('[[agents]]\nname = "coder"\nkind = "shell"\ncommand = "true"\n')
    score_path = project / "orchestra.toml"
    check_draft_loads(score_path, "fine", 'draft = true\nintent = "x"\n')
    with pytest.raises(ConfigError, match="unknown agent 'ghost'"):
        check_draft_loads(score_path, "broken", 'intent = "x"\nagents = ["ghost"]\n')
    with pytest.raises(ConfigError, match="draft"):
        check_draft_loads(score_path, "typed", 'intent = "x"\ndraft = "yes"\n')
    assert not (project / "specs").exists()


def test_the_draft_marker_leaves_the_hash_of_other_specs_alone(project: Path) -> None:
    (project / "orchestra.toml").write_text('[[agents]]\nname = "coder"\nkind = "shell"\ncommand = "true"\n'
                                            '[[specs]]\nid = "a"\nintent = "x"\n'
                                            '[[specs]]\nid = "b"\nintent = "x"\ndraft = false\n'
                                            '[[specs]]\nid = "c"\nintent = "x"\ndraft = true\n')
    score = load_score(project / "orchestra.toml")
    a, b, c = (score.spec(name) for name in "abc")
    assert "draft" not in a.to_dict() and a.to_dict() == {**b.to_dict(), "id": "a"}
    assert c.to_dict()["draft"] is True and not a.draft and c.draft


def test_ctrl_c_while_the_model_works_leaves_nothing_behind(project: Path, server: FakeOpenAI) -> None:
    root = scored(project, server.url)
    before = status(root)
    server.script(hang(60))
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([PYTHON, "-m", "orchestra.cli", "-C", str(root), "spec", "draft", WANTED], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(server.requests) == 1, timeout=60, message="the drafter to ask the model")
        repo = open_repository(root)
        assert any(repo.worktrees_dir.iterdir())  # the temporary checkout is there while it works
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert status(root) == before and not (root / "specs").exists()
    nothing_left(root)
    wait_for(lambda: not processes_with("--draft"), timeout=10, message="the llm client to end")
