"""What an agent's role means: what it is told, which paths it may change, which gates it adds.

`code` (or no role) means what an agent did before roles meant anything: no text, no limit, no gate.
A role's paths are gitignore-style globs (base.globs). A `tests` or `docs` agent may change only
paths its role covers, on top of (never instead of) the spec's own allow and deny; a `security` agent
changes nothing (it reports findings). Roles are read from a run's recorded agent settings, so a spec's
recorded config, and the spec hash the ledger keeps, stay the spec's own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from orchestra.core.score.model import ROLES

# Test files as the common ecosystems lay them out: test directories at any depth (src/test/ for Java and
# Kotlin, tests/ for Rust and Python), file-name conventions, pytest's conftest, Go's testdata.
TEST_GLOBS = ("tests/", "test/", "testing/", "__tests__/", "testdata/", "test_*.py", "*_test.py", "conftest.py",
              "*_test.go", "*_test.rb", "*_spec.rb", "*_test.exs", "*.test.*", "*.spec.*", "*Test.java",
              "*Tests.java", "*Test.kt", "*Tests.cs", "*.Tests/")
# Documentation: docs directories and prose files. Not *.txt (requirements.txt is code), and never the
# legal texts or the repository's instructions for agents (what other agents are told is not a docs edit).
DOCS_GLOBS = ("docs/", "doc/", "*.md", "*.mdx", "*.rst", "*.adoc", "*.asciidoc",
              "!LICENSE*", "!LICENCE*", "!COPYING*", "!NOTICE*", "!AGENTS.md", "!CLAUDE.md", "!CONVENTIONS.md")


@dataclass(frozen=True)
class Role:
    """One role: who the agent is, what it must not do, and the paths it may change (None: any)."""

    name: str
    text: str = ""
    allow: tuple[str, ...] | None = None
    covers: str = ""  # what its paths are, in "a tests agent may only change tests"
    reports_findings: bool = False  # its final answer is findings (the reviewer's schema), not a change


ROLE_TABLE: Mapping[str, Role] = {role.name: role for role in (
    Role("code"),
    Role("tests", "Your role is tests: you write and fix tests that pin down the intended behaviour, and you run "
         "them. Change only test files (test directories, test_*.py, *_test.go, *.spec.ts and the like); never "
         "change the code under test, even when a test shows it is wrong: say so in your summary instead.",
         TEST_GLOBS, "tests"),
    Role("docs", "Your role is documentation: you write and correct documentation (docs/, README and other "
         "*.md, *.rst, *.adoc files) so it matches what the code does. Never change code, tests, configuration, "
         "licence files or the repository's instructions for agents.", DOCS_GLOBS, "documentation"),
    Role("security", "Your role is security review: you look for vulnerabilities (injection, unsafe "
         "deserialisation, secrets in code, missing authorisation, unsafe defaults, vulnerable dependencies) and "
         "report them as findings. You change nothing: no file edits, no commands that modify anything.",
         (), "nothing: it reports findings", reports_findings=True),
    Role("infra", "Your role is infrastructure: build, CI, deployment and infrastructure-as-code (Terraform, "
         "Kubernetes, Docker, CI workflows). Keep changes minimal and reviewable, validate what you change with "
         "the repository's own tools (e.g. terraform validate), never apply anything to real infrastructure and "
         "never put credentials in files."),
    Role("review", "Your role is review: you read the change and report what is wrong with it; you change "
         "nothing."),
    Role("plan", "Your role is planning: you explore the repository and produce a plan (the steps, the files "
         "each touches, the risks and how to verify them). Do not implement the plan; change no source code."),
)}
assert set(ROLE_TABLE) == set(ROLES), "every role of the score has a meaning here"


def role_of(agent_config: Mapping[str, Any] | None) -> Role:
    """The role of a run's agent (its recorded settings); `code` when it has none or one unknown here."""
    name = (agent_config or {}).get("role")
    return ROLE_TABLE.get(name) if isinstance(name, str) and name in ROLE_TABLE else ROLE_TABLE["code"]


def role_lines(agent_config: Mapping[str, Any] | None) -> list[str]:
    """What the agent is told of its role ([] for `code`): its purpose, and the paths it may change."""
    role = role_of(agent_config)
    if not role.text:
        return []
    lines = [role.text]
    if role.allow:
        shown = ", ".join(p for p in role.allow if not p.startswith("!"))
        lines.append(f"As a {role.name} agent you may change only files matching: {shown}; changes anywhere "
                     "else fail the run's boundary gate.")
    return lines


def role_violation(role: Role, path: str) -> str:
    """Why path breaks the role's boundary, in one line."""
    if role.allow == ():
        return f"a {role.name} agent may not change files ({role.covers}): {path}"
    return f"a {role.name} agent may only change {role.covers}: {path}"


def role_check_names(agent_config: Mapping[str, Any] | None, spec_config: Mapping[str, Any] | None,
                     changed_paths: Iterable[str]) -> list[str]:
    """The gates the role adds to a run whose candidate changed changed_paths (an infra agent's validations
    of what it changed, where the spec's own checks do not already cover them)."""
    if role_of(agent_config).name != "infra":
        return []
    checks = [c for c in (spec_config or {}).get("verify", []) if isinstance(c, dict)]
    taken = {c.get("name") for c in checks}
    commands = " ".join(str(c.get("command", "")) for c in checks)
    paths = list(changed_paths)
    names = []
    if any(p.endswith(".tf") for p in paths) and "terraform validate" not in commands:
        names.append(TERRAFORM_GATE)
    if any(is_infra_data(p) for p in paths):
        names.append(INFRA_SYNTAX_GATE)
    return [name for name in names if name not in taken]


TERRAFORM_GATE = "terraform"
INFRA_SYNTAX_GATE = "infra-syntax"
# Where YAML and JSON are infrastructure (parsed as data, not templates): CI, deployment, compose files.
INFRA_DATA_GLOBS = (".github/workflows/", ".github/actions/", ".gitlab-ci.yml", ".circleci/", "k8s/", "kube/",
                    "kubernetes/", "manifests/", "deploy/", "deployment/", "deployments/", "infra/",
                    "infrastructure/", "ops/", "ansible/", "playbooks/", "terraform/", "cloudformation/", "charts/",
                    "helm/", "docker-compose*.yml", "docker-compose*.yaml", "compose.yml", "compose.yaml",
                    "!templates/")  # Helm templates are Go templates, not YAML
INFRA_DATA_SUFFIXES = (".yml", ".yaml", ".json")


def is_infra_data(path: str) -> bool:
    """Whether path is a YAML or JSON file of the infrastructure (see INFRA_DATA_GLOBS)."""
    from orchestra.core.base.globs import matches_any
    return path.endswith(INFRA_DATA_SUFFIXES) and matches_any(INFRA_DATA_GLOBS, path)
