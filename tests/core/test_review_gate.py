"""Reviewer agents as a gate: an llm reviewer (against the fake model server) and a command reviewer
review the candidate read-only; orchestra computes the verdict, fails closed, and records it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestra.core.base.findings import APPROVED, CHANGES_REQUESTED
from orchestra.core.fleet import Fleet
from orchestra.core.policy import readiness
from orchestra.core.score import ConfigError
from tests.core.helpers import FAKE_KEY, ledger_lines, wait_for, wait_settled
from tests.harness.fake_openai import FakeOpenAI, hang, text, tool_calls

KEY = FAKE_KEY
AUTHOR = "printf 'def answer():\\n    return 42\\n' > src/app.py"


def finding(priority: str, title: str = "answer() ignores its input", line: int = 2, path: str = "src/app.py",
            **extra: object) -> dict:
    return {"title": title, "body": "It always returns a constant.", "priority": priority, "confidence": 0.8,
            "path": path, "line_start": line, "line_end": line, **extra}


def answer(*findings: dict, explanation: str = "Looks at the change.") -> str:
    return json.dumps({"findings": list(findings), "explanation": explanation})


def score(url: str, reviewer_model: str = "openai/claude-fake", independence: str | None = None,
          author: str = "shell", retries: int | None = None, request_timeout: float | None = None) -> str:
    policy = "[review]\nagents = [\"critic\"]\n" + (f'independence = "{independence}"\n' if independence else "") \
        + (f"retries = {retries}\n" if retries is not None else "")
    author_table = (f'[[agents]]\nname = "author"\nkind = "shell"\ncommand = "{AUTHOR}"\n' if author == "shell" else
                    f'[[agents]]\nname = "author"\nkind = "llm"\nmodel = "{author}"\napi_base = "{url}"\n'
                    'api_key_env = "FAKE_PROVIDER_KEY"\n')
    timeout = f"request_timeout = {request_timeout}\n" if request_timeout else ""
    return (policy + author_table
            + f'[[agents]]\nname = "critic"\nkind = "llm"\nrole = "review"\nmodel = "{reviewer_model}"\n'
              f'api_base = "{url}"\napi_key_env = "FAKE_PROVIDER_KEY"\n{timeout}'
            + '[[specs]]\nid = "fix"\nintent = "Make answer() return 42"\nallow = ["src/**"]\n'
              'verify = ["grep -q 42 src/app.py"]\n')


def reviewed(fleet: Fleet, timeout: float = 90) -> tuple:
    run = fleet.spawn("fix")[0]
    run = wait_settled(fleet, run.id, timeout=timeout)
    assert run.state == "review", run.message
    return run, run.gates["review-critic"]


def test_blocking_findings_request_changes_and_keep_the_run_from_being_ready(repo: Path, make_fleet,
                                                                            server: FakeOpenAI) -> None:
    fleet = make_fleet(repo, score(server.url))
    server.script(text(answer(finding("P1"), finding("P3", "naming", line=1))))
    run, gate = reviewed(fleet)
    assert (gate.kind, gate.status, gate.verdict, gate.tree) == ("review", "failed", CHANGES_REQUESTED, run.tree)
    assert [(f["priority"], f["path"], f["line_start"], f["source"]) for f in gate.findings] == [
        ("P1", "src/app.py", 2, "review:critic"), ("P3", "src/app.py", 1, "review:critic")]
    details = gate.details
    assert (details["agent"], details["model"], details["provider"], details["author_provider"],
            details["same_provider"]) == ("critic", "openai/claude-fake", "anthropic", None, False)
    assert details["prompt_tokens"] == 10 and details["explanation"] == "Looks at the change."
    assert not readiness(run).ready and any("review-critic" in r for r in readiness(run).reasons)
    # What the reviewer was asked: the spec, the evidence so far, the diff; and only read-only tools.
    request = server.requests[0]
    prompt = request["messages"][1]["content"]
    assert "Make answer() return 42" in prompt and "+    return 42" in prompt and "boundary (boundary) passed" in prompt
    assert {tool["function"]["name"] for tool in request["tools"]} == {"list_files", "read_file", "search"}
    assert KEY not in json.dumps(fleet.get(run.id).to_json())


def test_only_low_priority_findings_approve(repo: Path, make_fleet, server: FakeOpenAI) -> None:
    fleet = make_fleet(repo, score(server.url))
    server.script(text(answer(finding("P2"))))
    run, gate = reviewed(fleet)
    assert (gate.status, gate.verdict) == ("passed", APPROVED)
    assert readiness(run).ready, readiness(run).reasons


def test_the_reviewer_reads_the_candidate_through_read_only_tools(repo: Path, make_fleet, server: FakeOpenAI) -> None:
    fleet = make_fleet(repo, score(server.url))
    server.script(tool_calls(("read_file", {"path": "src/app.py"})),
                  tool_calls(("write_file", {"path": "src/app.py", "content": "hacked\n"})),
                  text(answer()))
    run, gate = reviewed(fleet)
    assert gate.verdict == APPROVED
    messages = server.requests[2]["messages"]
    assert "return 42" in messages[3]["content"]  # read_file's result
    assert "not allowed" in messages[5]["content"] or "unknown tool" in messages[5]["content"]
    assert (Path(run.worktree) / "src" / "app.py").read_text() == "def answer():\n    return 42\n"


def test_a_malformed_answer_is_asked_again_then_the_gate_fails_closed(repo: Path, make_fleet,
                                                                     server: FakeOpenAI) -> None:
    fleet = make_fleet(repo, score(server.url, retries=1))
    server.script(text("Looks good to me!"), text('{"findings": [{"title": "x"}], "explanation": "?"}'))
    run, gate = reviewed(fleet)
    assert (gate.status, gate.verdict) == ("error", None)
    assert "malformed answer after 2 attempts" in gate.summary and "schema" in gate.summary
    assert "could not be used" in server.requests[1]["messages"][-1]["content"]
    assert not readiness(run).ready


def test_a_malformed_answer_then_a_good_one_counts(repo: Path, make_fleet, server: FakeOpenAI) -> None:
    fleet = make_fleet(repo, score(server.url))
    server.script(text(answer(finding("P0", path="nowhere.py"))), text(answer(finding("P0"))))
    run, gate = reviewed(fleet)
    assert (gate.status, gate.verdict, gate.details["attempts"]) == ("failed", CHANGES_REQUESTED, 2)
    assert "is not a file of this change" in server.requests[1]["messages"][-1]["content"]


def test_a_reply_that_never_ends_fails_closed(repo: Path, make_fleet, server: FakeOpenAI) -> None:
    fleet = make_fleet(repo, score(server.url, request_timeout=0.5))
    server.script(*[hang(30)] * 5)
    run, gate = reviewed(fleet, timeout=120)
    assert gate.status == "error" and "no verdict" in gate.summary, gate.summary


def test_the_verdict_goes_stale_when_the_tree_changes_and_is_rerun(repo: Path, make_fleet, server: FakeOpenAI) -> None:
    fleet = make_fleet(repo, score(server.url))
    server.script(text(answer(finding("P1"))), text(answer()))
    run, gate = reviewed(fleet)
    assert gate.verdict == CHANGES_REQUESTED
    (Path(run.worktree) / "src" / "app.py").write_text("def answer(x=None):\n    return 42\n")
    def rerun():
        now = fleet.get(run.id)
        g = now.gates.get("review-critic")
        return now if now.tree != run.tree and g and g.tree == now.tree and g.status not in ("pending", "running") else None
    now = wait_for(rerun, 60)
    assert now.gates["review-critic"].verdict == APPROVED


def test_same_provider_is_a_configuration_error_under_provider_independence(repo: Path, make_fleet,
                                                                            server: FakeOpenAI) -> None:
    with pytest.raises(ConfigError) as error:
        make_fleet(repo, score(server.url, reviewer_model="openai/gpt-fake", author="openai/gpt-4o"))
    assert "both use openai models" in str(error.value)


def test_with_independence_none_the_verdict_is_stamped_same_provider(repo: Path, make_fleet,
                                                                     server: FakeOpenAI) -> None:
    fleet = make_fleet(repo, score(server.url, reviewer_model="openai/gpt-fake", author="openai/gpt-4o",
                                   independence="none"))
    server.script(tool_calls(("edit_file", {"path": "src/app.py", "search": "return 41", "replace": "return 42"})),
                  text("done"), text(answer()))
    run, gate = reviewed(fleet)
    assert gate.details["same_provider"] is True and "same provider" in gate.summary
    assert any("not an independent second opinion" in reason for reason in readiness(run).reasons)
    fleet.accept(run.id, force=True)
    entry = ledger_lines(fleet)[-1]
    review = next(g for g in entry["gates"] if g["name"] == "review-critic")
    assert review["verdict"] == APPROVED and review["reviewer"]["same_provider"] is True


def test_the_ledger_records_the_verdict_the_findings_digest_and_the_reviewer(repo: Path, make_fleet,
                                                                           server: FakeOpenAI) -> None:
    fleet = make_fleet(repo, score(server.url))
    server.script(text(answer(finding("P2"))))
    run, gate = reviewed(fleet)
    fleet.accept(run.id)
    entry = ledger_lines(fleet)[-1]
    review = next(g for g in entry["gates"] if g["name"] == "review-critic")
    assert review["verdict"] == APPROVED and review["kind"] == "review"
    assert review["findings"]["count"] == 1 and len(review["findings"]["sha256"]) == 64
    assert review["reviewer"]["model"] == "openai/claude-fake" and review["reviewer"]["provider"] == "anthropic"
    # The reviewers' own home and tmp go with the run's other leftovers.
    from tests.core.helpers import cli
    review_home = fleet.repo.jails_dir / f"{run.id}.review"
    assert review_home.is_dir()
    assert cli("prune", cwd=repo).returncode == 0 and not review_home.exists()


def test_a_command_reviewer_answers_on_stdout_and_cannot_write(repo: Path, make_fleet) -> None:
    reviewer = ("cat > /dev/null; echo hacked > src/app.py 2>/dev/null; "
                "printf '%s' '" + answer(finding("P0", "hard-coded")) + "'")
    text_ = ('[review]\nagents = ["critic"]\n'
             f'[[agents]]\nname = "author"\nkind = "shell"\ncommand = "{AUTHOR}"\n'
             "[[agents]]\nname = \"critic\"\nkind = \"shell\"\nrole = \"review\"\n"
             f"command = '''{reviewer}'''\n"
             '[[specs]]\nid = "fix"\nintent = "Make answer() return 42"\nallow = ["src/**"]\n')
    fleet = make_fleet(repo, text_)
    run, gate = reviewed(fleet)
    assert (gate.status, gate.verdict) == ("failed", CHANGES_REQUESTED)
    assert gate.findings[0]["priority"] == "P0" and gate.details["sandboxed"] is True
    assert (Path(run.worktree) / "src" / "app.py").read_text() == "def answer():\n    return 42\n"


def test_redirect_with_findings_reaches_the_authors_next_prompt_and_rework_resolves_them(
        repo: Path, make_fleet, server: FakeOpenAI) -> None:
    from tests.core.helpers import cli
    author = ('if [ -n "$ORCHESTRA_REDIRECT" ]; then printf "%s\\n" "$ORCHESTRA_REDIRECT"; '
              "printf 'def answer(x=None):\\n    return 42\\n' > src/app.py; else " + AUTHOR + "; fi")
    text_ = score(server.url).replace(f'command = "{AUTHOR}"', f"command = '''{author}'''")
    fleet = make_fleet(repo, text_)
    server.script(text(answer(finding("P1"), finding("P2", "docstring missing", line=1))),
                  text(answer(finding("P2", "docstring missing", line=1))))
    run, gate = reviewed(fleet)
    fleet.comment(run.id, "src/app.py", 2, "Use a named constant.")
    shown = cli("review", run.id, "--json", cwd=repo)
    report = json.loads(shown.stdout)
    assert report["ready"] is False and [f["priority"] for f in report["findings"]] == ["P1", "P1", "P2"]
    blocking = next(f for f in report["findings"] if f["source"] == "review:critic" and f["priority"] == "P1")
    done = cli("redirect", run.id, "--finding", blocking["id"], "-m", "Take the input into account.", cwd=repo)
    assert done.returncode == 0 and "with 1 finding and 1 comment;" in done.stdout, done.stderr
    entry = ledger_lines(fleet)[-1]
    assert entry["action"] == "redirect" and [f["id"] for f in entry["findings"]] == [blocking["id"]]
    assert entry["comments"][0]["title"] == "Use a named constant." and entry["message"] == "Take the input into account."
    def reworked():
        now = fleet.get(run.id)
        g = now.gates.get("review-critic")
        return now if now.state == "review" and now.tree != run.tree and g and g.tree == now.tree \
            and g.status not in ("pending", "running") else None
    now = wait_for(reworked, 90)
    from tests.core.helpers import output_lines
    sent = "\n".join(output_lines(fleet, run.id))
    assert "Take the input into account." in sent and "[P1] src/app.py:2: answer() ignores its input" in sent
    assert "src/app.py:2: Use a named constant." in sent
    assert now.comments == [] and now.feedback[-1]["findings"][0]["id"] == blocking["id"]
    report = json.loads(cli("review", run.id, "--json", cwd=repo).stdout)
    assert [f["id"] for f in report["feedback"]["resolved"]] == [blocking["id"]] and report["feedback"]["remaining"] == []
    assert report["ready"] is True, report["reasons"]
    assert "1 resolved, 0 remaining" in cli("review", run.id, cwd=repo).stdout
    runs = json.loads(cli("runs", "--json", cwd=repo).stdout)
    review = next(g for g in runs[0]["gates"] if g["name"] == "review-critic")
    assert (review["kind"], review["verdict"], review["stale"]) == ("review", APPROVED, False)
    assert runs[0]["ready"] is True and {e["label"] for e in runs[0]["evidence"]} >= {"tests", "boundary", "review"}


def test_redirect_refuses_unknown_findings_and_empty_redirects(repo: Path, make_fleet, server: FakeOpenAI) -> None:
    from tests.core.helpers import cli
    fleet = make_fleet(repo, score(server.url))
    server.script(text(answer()))
    run, gate = reviewed(fleet)
    bad = cli("redirect", run.id, "--finding", "123456789abc", cwd=repo)
    assert bad.returncode == 2 and "No open finding 123456789abc" in bad.stderr
    empty = cli("redirect", run.id, "--with-findings", cwd=repo)
    assert empty.returncode == 2 and "needs --message" in empty.stderr
    assert fleet.get(run.id).state == "review" and len(ledger_lines(fleet)) == 0
    assert cli("comment", run.id, "src/app.py", "x", cwd=repo).returncode == 2


def test_a_large_diff_is_reviewed_file_by_file_within_the_budget_and_the_findings_merged(
        repo: Path, make_fleet, server: FakeOpenAI) -> None:
    lines = "".join(f"value_{n} = {n}\\n" for n in range(200))  # ~3.3 KB per file: one file per part
    author = " && ".join(f"printf '{lines}' > src/mod{i}.py" for i in range(3))
    text_ = score(server.url).replace(f'command = "{AUTHOR}"', f"command = '''{author}'''").replace(
        '[review]\n', '[review]\nbudget = 1000\n')
    fleet = make_fleet(repo, text_)
    server.script(*[text(answer(finding("P2", f"module {i}", path=f"src/mod{i}.py"), explanation=f"mod{i} ok"))
                    for i in range(3)])
    run, gate = reviewed(fleet)
    assert len(server.requests) == 3
    for i, request in enumerate(server.requests):
        prompt = request["messages"][1]["content"]
        assert f"part {i + 1} of 3" in prompt and f"src/mod{i}.py" in prompt
        assert not any(f"b/src/mod{j}.py" in prompt for j in range(3) if j != i)
    assert sorted(f["path"] for f in gate.findings) == ["src/mod0.py", "src/mod1.py", "src/mod2.py"]
    assert gate.verdict == APPROVED and "Part 2: mod1 ok" in gate.details["explanation"]


def test_a_cli_reviewer_with_its_own_command_gets_the_prompt_in_its_place(repo: Path, make_fleet) -> None:
    script = repo / "review.py"
    script.write_text("import json, sys\nprompt = sys.argv[1]\nok = 'Make answer() return 42' in prompt\n"
                      "print(json.dumps({'findings': [] if ok else [{'title': 'no prompt', 'body': '', "
                      "'priority': 'P0', 'confidence': 1, 'path': 'src/app.py', 'line_start': 1, 'line_end': 1}],"
                      " 'explanation': 'argument seen' if ok else 'nothing'}))\n")
    import subprocess
    import sys
    subprocess.run(["git", "add", "review.py"], cwd=repo, check=True)
    text_ = ('[review]\nagents = ["critic"]\n'
             f'[[agents]]\nname = "author"\nkind = "shell"\ncommand = "{AUTHOR}"\n'
             "[[agents]]\nname = \"critic\"\nkind = \"cli\"\nrole = \"review\"\n"
             f"command = '''{sys.executable} review.py {{prompt}}'''\n"
             '[[specs]]\nid = "fix"\nintent = "Make answer() return 42"\nallow = ["src/**"]\n')
    fleet = make_fleet(repo, text_)
    run, gate = reviewed(fleet)
    assert (gate.verdict, gate.details["explanation"]) == (APPROVED, "argument seen"), gate.summary


def test_the_conductors_comments_are_not_evidence_and_are_kept_once(repo: Path, make_fleet, server: FakeOpenAI) -> None:
    from orchestra.core.policy import evidence
    fleet = make_fleet(repo, score(server.url))
    server.script(text(answer()))
    run, gate = reviewed(fleet)
    first = fleet.comment(run.id, "src/app.py", 2, "Name it.\nIt is a magic number.")
    fleet.comment(run.id, "src/app.py", 2, "Name it.\nIt is a magic number.")
    other = fleet.comment(run.id, "src/app.py", 2, "Name it.\nOr document it.")
    run = fleet.get(run.id)
    assert [c["id"] for c in run.comments] == [first.id, other.id]
    assert readiness(run).ready and "findings" not in {item.label for item in evidence(run)}
    fleet.uncomment(run.id, first.id)
    assert [c["id"] for c in fleet.get(run.id).comments] == [other.id]


def test_the_evidence_line_carries_counts_and_the_same_provider_flag_as_data(repo: Path, make_fleet,
                                                                           server: FakeOpenAI) -> None:
    from orchestra.core.policy import evidence
    fleet = make_fleet(repo, score(server.url, reviewer_model="openai/gpt-fake", author="openai/gpt-4o",
                                   independence="none"))
    server.script(tool_calls(("edit_file", {"path": "src/app.py", "search": "return 41", "replace": "return 42"})),
                  text("done"), text(answer(finding("P2"), finding("P3", "naming", line=1), finding("P2", "more"))))
    run, gate = reviewed(fleet)
    items = {item.label: item for item in evidence(run)}
    assert items["review"].same_provider is True and items["review"].text == APPROVED
    assert items["findings"].counts == (("P2", 2), ("P3", 1)) and items["findings"].state == "ok"
