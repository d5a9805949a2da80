"""Specialised roles: what each role's agent is told, the paths it may change, and what its role adds."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest

from orchestra.core.agents.prompts import cli_prompt
from orchestra.core.agents.tools import Toolbox, ToolError
from orchestra.core.gates.boundary import check_boundary
from orchestra.core.runs.run import Run
from orchestra.core.score.roles import ROLE_TABLE, role_check_names, role_lines
from orchestra.llm.llm_agent import system_prompt
from tests.core.helpers import PYTHON, output_lines, score_text, wait_settled
from tests.harness.fake_openai import FakeOpenAI, text, tool_calls

TESTS_TEXT = "Your role is tests"
DOCS_TEXT = "Your role is documentation"


def a_run(role: str | None, kind: str = "cli", spec: dict | None = None) -> Run:
    return Run(id="r1", agent="ann", spec="s", task="Do the thing", branch="b", worktree="/w", base="0" * 40,
               target="main", agent_config={"name": "ann", "kind": kind, "role": role}, spec_config=spec)


# -- what an agent is told ----------------------------------------------------------------------------------

def test_the_role_text_reaches_a_cli_agents_prompt_and_code_keeps_todays() -> None:
    spec = {"allow": ["src/**"], "verify": []}
    assert TESTS_TEXT in cli_prompt(a_run("tests", spec=spec))
    assert "tests/" in cli_prompt(a_run("tests", spec=spec))  # the role's paths are said
    assert cli_prompt(a_run("code", spec=spec)) == cli_prompt(a_run(None, spec=spec))
    assert "role" not in cli_prompt(a_run("code", spec=spec)).lower()


def test_the_role_text_reaches_an_llm_agents_system_prompt() -> None:
    plain = system_prompt(a_run(None, "llm"), "")
    assert system_prompt(a_run("code", "llm"), "") == plain
    assert DOCS_TEXT in system_prompt(a_run("docs", "llm"), "") and DOCS_TEXT not in plain
    security = system_prompt(a_run("security", "llm"), "")
    assert "you cannot change files" in security and '"findings"' in security  # the reviewer's schema
    assert "summary of what you changed" not in security


def test_every_role_but_code_says_something() -> None:
    assert role_lines({"role": "code"}) == [] and role_lines({}) == [] and role_lines({"role": "nonsense"}) == []
    for name in ROLE_TABLE:
        assert bool(role_lines({"role": name})) == (name != "code"), name


# -- the boundary a role derives ----------------------------------------------------------------------------

def test_a_tests_agent_may_change_only_tests_within_the_spec() -> None:
    tests = ROLE_TABLE["tests"]
    result = check_boundary(["src/x.py", "tests/test_x.py", "pkg/foo_test.go"], (), (), tests)
    assert result.violations() == ["a tests agent may only change tests: src/x.py"]
    # The spec's own allow still applies (a path must satisfy both), and its deny too.
    result = check_boundary(["tests/unit/a.py", "tests/other/b.py", "tests/secret/c.py"],
                            ["tests/unit/**", "tests/secret/**"], ["tests/secret/**"], tests)
    assert result.violations() == ["tests/other/b.py (outside allow)", "tests/secret/c.py (denied)"]


def test_a_docs_agent_may_change_only_documentation_never_the_licence() -> None:
    docs = ROLE_TABLE["docs"]
    result = check_boundary(["docs/guide.md", "README.md", "LICENSE.md", "AGENTS.md", "setup.py"], (), (), docs)
    assert result.violations() == ["a docs agent may only change documentation: LICENSE.md",
                                   "a docs agent may only change documentation: AGENTS.md",
                                   "a docs agent may only change documentation: setup.py"]
    assert check_boundary(["src/x.py"], (), (), ROLE_TABLE["code"]).ok


def test_the_toolbox_refuses_writes_outside_the_role_and_a_security_agent_writes_nothing(tmp_path: Path) -> None:
    tests = Toolbox(tmp_path, role="tests")
    assert tests.call("write_file", {"path": "tests/test_a.py", "content": "x = 1\n"}).startswith("created")
    with pytest.raises(ToolError, match="a tests agent may only change tests: src/a.py"):
        tests.call("write_file", {"path": "src/a.py", "content": "x = 1\n"})
    security = Toolbox(tmp_path, read_only=True, role="security")
    for name, arguments in (("write_file", {"path": "tests/b.py", "content": ""}),
                            ("edit_file", {"path": "tests/test_a.py", "search": "1", "replace": "2"}),
                            ("run_command", {"command": "touch pwned"})):
        with pytest.raises(ToolError, match="not allowed: this agent only reads"):
            security.call(name, arguments)
    assert not (tmp_path / "pwned").exists() and (tmp_path / "tests/test_a.py").read_text() == "x = 1\n"


# -- runs of shell agents with a role -----------------------------------------------------------------------

def role_score(role: str, command: str, spec: dict | None = None) -> str:
    return score_text({"ann": {"command": command, "role": role}}, [{"id": "s", "intent": "do it", **(spec or {})}])


@pytest.mark.parametrize("role,inside,outside,message", [
    ("tests", "tests/test_new.py", "src/app.py", "a tests agent may only change tests: src/app.py"),
    ("docs", "docs/guide.md", "src/app.py", "a docs agent may only change documentation: src/app.py"),
])
def test_a_role_run_fails_the_boundary_outside_its_paths_and_passes_inside(
        repo: Path, make_fleet, role: str, inside: str, outside: str, message: str) -> None:
    write = f'mkdir -p "$(dirname {inside})" && printf "%s" "$ORCHESTRA_TASK" > {inside}'
    fleet = make_fleet(repo, role_score(role, f"{write}; echo '# more' >> {outside}"))
    run = wait_settled(fleet, fleet.spawn("s")[0].id)
    assert run.state == "review", run.message
    gate = run.gates["boundary"]
    assert gate.status == "failed" and gate.failures == [message], gate.failures
    assert run.spec_config is not None and "allow" in run.spec_config and run.spec_config["allow"] == []
    told = (Path(run.worktree) / inside).read_text()
    assert told.startswith("do it\n\n") and "Your role is" in told  # ORCHESTRA_TASK carries the role's text
    fleet.reject(run.id, "next")
    fleet = make_fleet(repo, role_score(role, write))
    run = wait_settled(fleet, fleet.spawn("s")[0].id)
    assert run.gates["boundary"].status == "passed", run.gates["boundary"].failures


def test_the_specs_deny_still_applies_to_a_role(repo: Path, make_fleet) -> None:
    fleet = make_fleet(repo, role_score("tests", "mkdir -p tests/golden && echo x > tests/golden/a.txt",
                                        {"deny": ["tests/golden/**"]}))
    run = wait_settled(fleet, fleet.spawn("s")[0].id)
    assert run.gates["boundary"].failures == ["tests/golden/a.txt (denied)"]


# -- infra: its own validation gates ------------------------------------------------------------------------

GOOD_TF = 'variable "x" {\n  type = string\n}\n\noutput "y" {\n  value = var.x\n}\n'
BAD_TF = 'output "y" {\n  value = var.nope\n}\n'


def infra_agent(files: dict[str, str]) -> str:
    script = "import pathlib\n" + "".join(
        f"p = pathlib.Path({path!r}); p.parent.mkdir(parents=True, exist_ok=True); p.write_text({text!r})\n"
        for path, text in files.items())
    return f"{PYTHON} -c {shlex.quote(script)}"


def test_without_terraform_an_infra_run_says_not_validated(repo: Path, make_fleet, monkeypatch) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # git, not terraform (it is in /usr/local/bin when installed)
    if shutil.which("terraform", path="/usr/bin:/bin"):
        pytest.skip("terraform is installed in /usr/bin here")
    fleet = make_fleet(repo, role_score("infra", infra_agent({"infra/main.tf": GOOD_TF})))
    run = wait_settled(fleet, fleet.spawn("s")[0].id)
    gate = run.gates["terraform"]
    assert (gate.status, gate.summary) == ("error", "terraform not installed: not validated")
    from orchestra.core.policy import readiness
    assert "gate terraform could not run: terraform not installed: not validated" in readiness(run).reasons


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
def test_with_terraform_an_infra_run_is_validated(repo: Path, make_fleet) -> None:
    fleet = make_fleet(repo, role_score("infra", infra_agent({"infra/good/main.tf": GOOD_TF,
                                                                 "infra/bad/main.tf": BAD_TF})))
    run = wait_settled(fleet, fleet.spawn("s")[0].id, timeout=120)
    gate = run.gates["terraform"]
    assert gate.status == "failed", (gate.summary, gate.output_tail)
    assert any("undeclared input variable" in line for line in gate.output_tail), gate.output_tail
    assert sorted(p for p in run.changed_paths) == ["infra/bad/main.tf", "infra/good/main.tf"]  # nothing left behind


def test_an_infra_run_parses_the_yaml_and_json_it_changed(repo: Path, make_fleet) -> None:
    fleet = make_fleet(repo, role_score("infra", infra_agent({
        "k8s/deploy.yaml": "kind: Deployment\nspec: [1, 2\n", "deploy/config.json": '{"a": 1}',
        "cloudformation/stack.yml": "Resources:\n  B:\n    Bucket: !Ref Name\n", "notes/x.yaml": "a: [",
        "charts/app/templates/d.yaml": "{{ .Values.x }}: [\n"})))
    run = wait_settled(fleet, fleet.spawn("s")[0].id)
    gate = run.gates["infra-syntax"]
    assert gate.status == "failed" and gate.summary == "1 of 3 file(s) do not parse", gate.summary
    assert [line.split(":", 1)[0] for line in gate.failures] == ["k8s/deploy.yaml"]
    assert "terraform" not in run.gates  # no .tf file changed


def test_the_specs_own_terraform_check_replaces_the_roles() -> None:
    spec = {"verify": [{"name": "tf", "command": "cd infra && terraform validate"}]}
    assert role_check_names({"role": "infra"}, spec, ["infra/main.tf"]) == []
    assert role_check_names({"role": "infra"}, None, ["infra/main.tf"]) == ["terraform"]
    assert role_check_names({"role": "code"}, None, ["infra/main.tf", "k8s/a.yml"]) == []


# -- security: read-only, and its answer is findings ------------------------------------------------------

def security_score(url: str) -> str:
    return (f'[[agents]]\nname = "sec"\nkind = "llm"\nrole = "security"\nmodel = "openai/fake-model"\n'
            f'api_base = "{url}"\napi_key_env = "FAKE_PROVIDER_KEY"\n\n'
            '[[specs]]\nid = "audit"\nintent = "Audit src/ for vulnerabilities"\n')


FINDINGS = {"explanation": "One problem.", "findings": [
    {"title": "Hard-coded answer", "body": "The value is fixed.", "priority": "P1", "confidence": 0.8,
     "path": "src/app.py", "line_start": 2, "line_end": 2, "suggestion": None}]}


def test_a_security_agent_reads_cannot_write_and_reports_findings(repo: Path, make_fleet, server: FakeOpenAI) -> None:
    fleet = make_fleet(repo, security_score(server.url))
    server.script(
        tool_calls(("read_file", {"path": "src/app.py"})),
        tool_calls(("write_file", {"path": "src/app.py", "content": "pwned\n"}),
                   ("run_command", {"command": "echo pwned > src/app.py"})),
        text("Not JSON at all."),
        text(json.dumps(FINDINGS)),
    )
    run = wait_settled(fleet, fleet.spawn("audit")[0].id, timeout=60)
    assert run.state == "review", run.message
    assert run.changed_paths == []
    assert (Path(run.worktree) / "src/app.py").read_text() == "def answer():\n    return 41\n"
    offered = {tool["function"]["name"] for tool in server.requests[0]["tools"]}
    assert offered == {"list_files", "read_file", "search"}
    assert "Your role is security review" in server.requests[0]["messages"][0]["content"]
    refused = [m["content"] for m in server.requests[2]["messages"] if m["role"] == "tool"][-2:]
    assert all("not allowed: this agent only reads" in content for content in refused), refused
    assert any("malformed findings" in line for line in output_lines(fleet, run.id))
    gate = run.gates["security-sec"]
    assert (gate.kind, gate.status, gate.summary) == ("findings", "failed", "1 finding(s) (1 P1)")
    assert [f["source"] for f in gate.findings] == ["security:sec"] and gate.findings[0]["path"] == "src/app.py"
    from orchestra.core.policy import open_findings
    assert [f.title for f in open_findings(run)] == ["Hard-coded answer"]
