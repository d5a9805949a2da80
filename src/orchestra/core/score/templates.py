"""Spec file templates (`orchestra spec new ID --template KIND`) and the writer that puts one in specs/.

A template is a commented spec file for one kind of work: intent, boundaries, stable paths, verification
and rollback, each with what to write there for that kind. Its placeholder values load as a valid spec, so
every command keeps working at once; its verify commands fail until they are replaced, so no run of an
unfinished spec is ever ready.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestra.core.base.errors import BadUsage, OrchestraError
from orchestra.core.score.document import decode, parse_toml, read_bytes
from orchestra.core.score.model import NAME
from orchestra.core.score.names import too_long
from orchestra.core.score.spec_files import SPEC_DIR


@dataclass(frozen=True)
class Template:
    """What one kind of spec asks for, section by section (comment lines, and the placeholder values)."""

    title: str
    intent: str
    intent_help: str
    allow: tuple[str, ...]
    allow_help: str
    deny: tuple[str, ...]
    stable_help: str
    verify: str
    rollback: str
    extra: str = ""


# Every template denies these: an agent must not rewrite the score or the spec it is judged by.
SCORE_PATHS = ("orchestra.toml", f"{SPEC_DIR}/**")


def failing(spec_id: str, what: str) -> str:
    """A placeholder verify command: it fails, saying what to put in its place."""
    return f"echo 'TODO in {SPEC_DIR}/{spec_id}.toml: {what}' >&2; exit 1"


def _bugfix(spec_id: str) -> Template:
    """The template of a bug fix: a failing test that reproduces the bug first, then the suite."""
    return Template(
        "a bug fix",
        "TODO: fix <the bug>: when <steps>, <what happens> instead of <what should happen>",
        "Say what is wrong as a user sees it, and what right looks like. Link the issue if there is one.",
        ("src/**", "tests/**"),
        "The module the bug is in and the tests; keep it narrow: a fix that needs more is a bigger spec.",
        (),
        "Public interfaces callers rely on (their signatures must not move for a bug fix), migrations,\n"
        "lock files, generated code.",
        f'''# First, a failing test that reproduces the bug. prove = true lays the test files the run adds or
# edits on the merge base and runs this command there: it must FAIL there (the bug is real and the test
# catches it) and pass on the candidate (the fix works). A fix without such a test does not pass.
[[verify]]
name = "reproduce"
# e.g. command = "python -m pytest -q tests/"
command = "{failing(spec_id, "the command that runs the tests")}"
prove = true

# Then the whole suite, so the fix breaks nothing else.
[[verify]]
name = "tests"
command = "{failing(spec_id, "the command that runs the whole test suite")}"
''',
        "A bug fix is one merge: `orchestra revert RUN --reason ...` undoes it with a revert commit.\n"
        "Write here what else undoing it needs (data the fixed code wrote, a cache to clear), or \"nothing\".",
    )


def _feature(spec_id: str) -> Template:
    """The template of a feature: its tests with the suite, and lint."""
    return Template(
        "a feature",
        "TODO: <who> can <do what>, so that <why>; done when <observable result>",
        "The outcome and how to tell it is done, not the steps: the agent plans the steps.",
        ("src/**", "tests/**", "docs/**"),
        "Where the feature lives, its tests and its documentation.",
        (),
        "Existing public interfaces (add, do not change), other features' modules, configuration\n"
        "defaults users rely on, migrations already shipped.",
        f'''# The feature's own tests, and the existing suite. With coverage, changed lines must be tested.
[[verify]]
name = "tests"
# e.g. command = "python -m coverage run -m pytest -q && python -m coverage json"
command = "{failing(spec_id, "the command that runs the test suite")}"
# coverage = "coverage.json"     # with the command above: the report it writes
# min_changed_coverage = 80      # percent of the lines the change adds or alters that tests run

[[verify]]
name = "lint"
# e.g. command = "ruff check ."
command = "{failing(spec_id, "your linter or type checker")}"
''',
        "`orchestra revert RUN --reason ...` undoes the merge. Say here what a revert leaves behind: a\n"
        "flag to switch off first, data or a schema the feature created, users who saw it.",
    )


def _refactor(spec_id: str) -> Template:
    """The template of a refactoring: the tests are denied, so the unchanged suite judges it."""
    return Template(
        "a refactoring",
        "TODO: restructure <what> so that <the property you want>, with no change in behaviour",
        "Name the structure you want and why. \"No change in behaviour\" is the contract: the tests prove it.",
        ("src/**",),
        "The code being restructured. Tests are left out on purpose: unchanged tests passing is the proof\n"
        "that behaviour did not change (allow tests/** only if the tests themselves are being restructured).",
        ("tests/**",),
        "The tests (denied below, so they stay the judge), public interfaces, serialized formats and file\n"
        "layouts other code or users read.",
        f'''# The unchanged suite must still pass; a benchmark keeps the restructuring from costing speed.
[[verify]]
name = "tests"
command = "{failing(spec_id, "the command that runs the whole test suite")}"

# [[verify]]
# name = "speed"
# command = "python bench.py"   # prints one number (seconds) on its last line; compared with the base's
# benchmark = true
# tolerance = 5                 # percent slower that still passes
''',
        "`orchestra revert RUN --reason ...` undoes the merge. Refactorings conflict with work started\n"
        "before them: note here which open branches or runs will need `orchestra update` after it.",
    )


def _docs(spec_id: str) -> Template:
    """The template of documentation: only docs paths, and a docs build that must pass."""
    return Template(
        "documentation",
        "TODO: document <what> for <which readers>, so they can <do what>",
        "Who reads it and what they should be able to do afterwards.",
        ("docs/**", "*.md"),
        "Documentation only: a docs run that touches code fails the boundary gate.",
        (),
        "Everything outside the documentation is already stable through allow; deny pages that are\n"
        "generated or owned by someone else (a changelog written at release, API docs built from code).",
        f'''# Documentation is verified too: the build without warnings, links, and examples that still run.
[[verify]]
name = "docs-build"
# e.g. command = "mkdocs build --strict"
command = "{failing(spec_id, "the command that builds the documentation")}"

# [[verify]]
# name = "examples"
# command = "python -m doctest -v docs/*.md"
''',
        "`orchestra revert RUN --reason ...` undoes the merge; published documentation may need a\n"
        "rebuild or a redeploy afterwards: say how here.",
    )


def _security(spec_id: str) -> Template:
    """The template of a security fix: a SARIF scanner gate, unrelated paths denied, always manual."""
    return Template(
        "a security fix",
        "TODO: close <the weakness> in <where> (CWE-<n>), so that <the attack> is no longer possible",
        "The weakness, where it is and the attack it allows. Keep exploit details out of public trackers.",
        ("src/**", "tests/**"),
        "Only the vulnerable module and its tests: a security change is reviewed line by line, so it stays\n"
        "small. Everything unrelated is denied below.",
        (".github/**", "docs/**", "*.lock", "Dockerfile"),
        "Unrelated paths are denied: CI workflows, documentation, lock files (a dependency bump is its own\n"
        "spec), build files. Add the authentication and crypto modules this fix must not touch.",
        f'''# A scanner gate: the SARIF report decides; findings in changed lines block the run (P1 and above).
[[verify]]
name = "scan"
# e.g. command = "semgrep scan --config auto --sarif --output scan.sarif"
command = "{failing(spec_id, "a scanner that writes scan.sarif")}"
sarif = "scan.sarif"

# A test that shows the attack failing: it must fail on the base (the weakness is real).
[[verify]]
name = "exploit-test"
command = "{failing(spec_id, "the command that runs the regression test of the attack")}"
prove = true
''',
        "`orchestra revert RUN --reason ...` undoes the merge, and re-opens the weakness: say here who\n"
        "must agree to that, and what (rotated keys, revoked tokens) stays done after a revert.",
        '# A security change is always signed off by a human, whatever autonomy was granted.\n'
        'max_autonomy = "manual"\n',
    )


TEMPLATES = {"bugfix": _bugfix, "feature": _feature, "refactor": _refactor, "docs": _docs, "security": _security}


def toml_list(values: tuple[str, ...]) -> str:
    """A one-line TOML array of strings."""
    return "[" + ", ".join(f'"{value}"' for value in values) + "]"


def comment(text: str) -> str:
    """text as TOML comment lines."""
    return "\n".join(f"# {line}" for line in text.splitlines())


def spec_text(spec_id: str, kind: str) -> str:
    """The spec file a template writes for spec_id."""
    t = TEMPLATES[kind](spec_id)
    return f'''# Spec {spec_id}: {t.title}. Its keys are those of an orchestra.toml [[specs]] table; its id is the
# file's name. Fill in each section, then start runs with `orchestra spawn {spec_id}` (or n in the fleet).
# Until its verify commands are replaced they fail, so no run of this spec can be accepted as ready.

# Intent: the outcome the agent works towards (it is the agent's task).
{comment(t.intent_help)}
intent = "{t.intent}"

# Boundaries: the paths an agent may change (allow) and may never change (deny), gitignore-style globs
# from the repository root. A run that changes anything else fails its boundary gate.
{comment(t.allow_help)}
allow = {toml_list(t.allow)}

# Stable paths: files this change must leave exactly as they are. deny is how they stay stable.
{comment(t.stable_help)}
# orchestra.toml and specs/ are denied so an agent cannot rewrite the spec it is judged by.
deny = {toml_list((*t.deny, *SCORE_PATHS))}

# Who works on it: agents = ["name", ...] (default: every agent that is not a reviewer);
# review = ["name"] for reviewers of this spec; env = ["VAR"] for variables its agents may see.
{t.extra}
# Verification: machine-checked conditions, run when the agent finishes and whenever its worktree changes.
{t.verify}
# Rollback: how to undo this once it is merged.
{comment(t.rollback)}
'''


def write_spec(score_path: Path, spec_id: str, kind: str) -> Path:
    """Write specs/<spec_id>.toml next to the score from the kind's template; refuse, writing nothing, a bad
    id or kind (BadUsage), a missing score, an id the score already has, or a file already there."""
    if kind not in TEMPLATES:
        raise BadUsage(f"unknown template {kind!r}: use one of {', '.join(TEMPLATES)}")
    if too_long("spec id", spec_id) or not NAME.fullmatch(spec_id):
        raise BadUsage(too_long("spec id", spec_id) or f"invalid spec id {spec_id!r}: use lower-case letters, "
                       "digits, '-' and '_', starting with a letter or digit")
    if not Path(score_path).is_file():
        raise OrchestraError(f"There is no orchestra.toml in {Path(score_path).parent}: `orchestra init` writes "
                             "one; spec files live next to it.")
    if spec_id in inline_spec_ids(score_path):
        raise OrchestraError(f"orchestra.toml already has a spec {spec_id!r} in its [[specs]]; nothing was written.")
    return create_new(Path(score_path).parent / SPEC_DIR / f"{spec_id}.toml", spec_text(spec_id, kind))


def inline_spec_ids(score_path: Path) -> set[str]:
    """The ids of the score's own [[specs]] tables (read as TOML; the rest is not validated here)."""
    data, _ = parse_toml(decode(score_path, read_bytes(score_path)), score_path)
    specs = data.get("specs", [])
    return {raw["id"] for raw in specs if isinstance(raw, dict) and isinstance(raw.get("id"), str)} \
        if isinstance(specs, list) else set()


def create_new(path: Path, text: str) -> Path:
    """Create path with text, never replacing a file that is there (nor leaving half of one)."""
    if path.parent.exists() and not path.parent.is_dir():
        raise OrchestraError(f"{path.parent} is a file, not a directory; nothing was written.")
    try:
        path.parent.mkdir(exist_ok=True)
        out = path.open("x", encoding="utf-8")
    except FileExistsError:
        raise OrchestraError(f"{path} already exists; it was left as it is.") from None
    except OSError as err:
        raise OrchestraError(f"Could not write {path}: {err.strerror or err}.") from None
    try:
        with out:
            out.write(text)
    except OSError as err:
        path.unlink(missing_ok=True)
        raise OrchestraError(f"Could not write {path}: {err.strerror or err}.") from None
    return path
