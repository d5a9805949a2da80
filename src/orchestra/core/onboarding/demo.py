"""`orchestra demo`: a repository with a real bug and scripted agents that make real edits."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from orchestra.core.base.errors import OrchestraError
from orchestra.core.git.runner import git

__all__ = ["DEMO_NOTICE", "MARKER", "create_demo", "demo_files", "demo_notice", "is_demo"]

# Where `orchestra demo` puts its repositories by default (under the XDG data dir), as a user reads it.
DEMOS_SHOWN = "~/.local/share/orchestra/demos"
LEDGER_IN_REPO = ".git/orchestra/ledger.jsonl"


def demo_notice(root: Path | None = None) -> str:
    """The demo's banner: three lines of at most 77 columns (80 less the banner's border and padding), the
    first short enough to leave room for the key that hides it. Its last line says where the demo's ledger is: in root (home shortened to ~), or, without root, under the default demos directory."""
    where = f"{DEMOS_SHOWN}/<name>"
    if root is not None:
        home = str(Path.home())
        where = "~" + str(root)[len(home):] if str(root).startswith(home + "/") else str(root)
    return ("Demo: scripted stand-ins (agents/*.py), no model, no API key.\n"
            'Real agents: kind = "llm" or "cli" (claude, codex, …); `orchestra doctor`.\n'
            f"Ledger: {where}/{LEDGER_IN_REPO}")


DEMO_NOTICE = demo_notice()
MARKER = ".orchestra-demo"
_AUTHOR = {"GIT_AUTHOR_NAME": "orchestra demo", "GIT_AUTHOR_EMAIL": "demo@orchestra.invalid",
           "GIT_COMMITTER_NAME": "orchestra demo", "GIT_COMMITTER_EMAIL": "demo@orchestra.invalid"}
_COMMIT_MESSAGE = ("Demo repository made by `orchestra demo`\n\n"
                   "calc.stats.mean has a real bug: tests/test_stats.py::test_mean fails.\n")

_STATS = '''\
"""Summary statistics over a non-empty sequence of numbers."""

from collections.abc import Sequence

__all__ = ["mean", "median", "spread"]


def mean(values: Sequence[float]) -> float:
    """The arithmetic mean: the sum divided by how many values there are."""
    return sum(values) / (len(values) - 1)


def median(values: Sequence[float]) -> float:
    """The middle value; for an even count, the mean of the two middle values."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def spread(values: Sequence[float]) -> float:
    """The distance between the largest and the smallest value."""
    return max(values) - min(values)
'''

_TESTS = '''\
from calc.stats import mean, median, spread


def test_mean():
    assert mean([1, 2, 3, 4]) == 2.5


def test_median_odd_count():
    assert median([3, 1, 2]) == 2


def test_median_even_count():
    assert median([4, 1, 3, 2]) == 2.5


def test_spread():
    assert spread([2, 9, 4]) == 7
'''

_COMMON = '''\
"""What the demo's scripted agents share: paced progress lines and the edits they make."""

import os
import time
from pathlib import Path

BUG = "sum(values) / (len(values) - 1)"
FIX = "sum(values) / len(values)"


def say(message, pause=1.0):
    """Print one progress line at once, then pause, so the run can be watched live."""
    print(message, flush=True)
    time.sleep(pause)


def redirected():
    """The conductor's instruction when this run was redirected, else None."""
    instruction = os.environ.get("ORCHESTRA_REDIRECT")
    if instruction:
        say(f"Redirected: {instruction}")
    return instruction


def fix_mean():
    """Make calc.stats.mean divide by the number of values, not one less."""
    stats = Path("calc/stats.py")
    source = stats.read_text()
    if BUG not in source:
        say("calc/stats.py: mean() is already right")
        return
    stats.write_text(source.replace(BUG, FIX))
    say("calc/stats.py: mean() now divides by len(values)")
'''

_FIXER = '''\
"""fixer: finds the off-by-one in calc.stats.mean and fixes it, nothing else."""

from common import fix_mean, redirected, say

redirected()
say("Reading tests/test_stats.py ...")
say("test_mean expects mean([1, 2, 3, 4]) == 2.5, but gets 3.33")
say("mean() divides by len(values) - 1: an off-by-one")
fix_mean()
say("Done: a one-line fix inside calc/")
'''

_OVERREACH = '''\
"""overreach: fixes the bug, but also edits README.md, which the spec does not allow."""

from pathlib import Path

from common import fix_mean, redirected, say

NOTE = "\\n## Changelog\\n\\n- Fixed mean() (it divided by one value too few).\\n"
README = Path("README.md")

if redirected():
    README.write_text(README.read_text().replace(NOTE, ""))
    say("README.md: took my changelog note out again; staying inside calc/ and tests/")
    fix_mean()
else:
    say("Reading calc/stats.py ...")
    fix_mean()
    say("While I am here: adding a changelog entry to README.md")
    README.write_text(README.read_text() + NOTE)
    say("Done (and a little more than I was asked)")
'''

_TESTER = '''\
"""tester: adds tests for median() but never fixes mean(), so test_mean keeps failing."""

from pathlib import Path

from common import fix_mean, redirected, say

TESTS = """\\
from calc.stats import median


def test_median_of_one_value():
    assert median([7]) == 7


def test_median_does_not_reorder_its_input():
    values = [3, 1, 2]
    median(values)
    assert values == [3, 1, 2]
"""

if redirected():
    say("OK: fixing the bug as well as testing")
    fix_mean()
else:
    say("Looking for untested behaviour in calc/stats.py ...")
    say("median() has no test for a single value or for leaving its input alone")
    Path("tests/test_median.py").write_text(TESTS)
    say("Wrote tests/test_median.py with two new tests")
    say("Done (the bug in mean() is someone else's job)")
'''

_FLAKY = '''\
"""flaky: starts working, then crashes as if its model API were unreachable."""

import sys

from common import fix_mean, redirected, say

if redirected():
    say("The API answers again; picking up the task")
    fix_mean()
else:
    say("Planning a fix for calc.stats.mean ...")
    say("Connecting to the model API at https://api.example.invalid ...")
    say("No answer; retrying (1 of 2) ...")
    say("No answer; retrying (2 of 2) ...")
    sys.exit("error: model API unreachable (api.example.invalid:443 refused); giving up")
'''

_SCRIBE = '''\
"""scribe: writes docs/stats.md from the docstrings in calc/stats.py."""

import os
import sys
from pathlib import Path

from common import redirected, say

sys.path.insert(0, os.getcwd())
import calc.stats  # noqa: E402  (the package in the run's worktree)

redirected()
say("Reading the docstrings in calc/stats.py ...")
say("Writing one section per public function ...")
sections = [f"## {name}\\n\\n{getattr(calc.stats, name).__doc__}\\n" for name in calc.stats.__all__]
Path("docs").mkdir(exist_ok=True)
Path("docs/stats.md").write_text("# calc.stats\\n\\n" + "\\n".join(sections))
say(f"Wrote docs/stats.md: {len(sections)} functions")
say("Done")
'''

_REVIEWER = '''\
"""reviewer: a scripted stand-in for a second-opinion model. It reads what orchestra asks it on stdin
(the spec, the gates so far, the diff) and answers with findings JSON on stdout, as a real reviewer does.
It only reads: orchestra runs it in a read-only sandbox."""

import json
import re
import sys

asked = sys.stdin.read()
diff = asked.split("The diff against the merge base:", 1)[-1]
added = {}  # path -> [(line number in the new file, text)]
path, line = None, 0
for text in diff.splitlines():
    if text.startswith("+++ "):
        path = text[6:] if text.startswith("+++ b/") else None
    elif text.startswith("@@"):
        line = int(re.match(r"@@ -\\S+ \\+(\\d+)", text).group(1))
    elif path and text.startswith("+"):
        added.setdefault(path, []).append((line, text[1:]))
        line += 1
    elif path and not text.startswith("-"):
        line += 1

def first(path, needle=""):
    return next((n for n, text in added.get(path, []) if needle in text), 1)

findings = []
if "README.md" in added and "fix-mean" in asked:
    n = first("README.md", "Changelog")
    findings.append({"title": "README.md is outside the task", "priority": "P1", "confidence": 0.9,
                     "body": "The spec allows calc/ and tests/ only; a changelog is the release's job.",
                     "path": "README.md", "line_start": n, "line_end": n + 2, "suggestion": None})
if "fix-mean" in asked and "calc/stats.py" not in added:
    path = next(iter(added), "tests/test_median.py")
    findings.append({"title": "mean() is still wrong", "priority": "P1", "confidence": 0.95,
                     "body": "The spec asks for the off-by-one in calc.stats.mean to be fixed; this change "
                             "only adds tests, so test_mean still fails.",
                     "path": path, "line_start": 1, "line_end": 1, "suggestion": None})
if "calc/stats.py" in added:
    n = first("calc/stats.py", "len(values)")
    findings.append({"title": "An empty sequence divides by zero", "priority": "P3", "confidence": 0.6,
                     "body": "mean([]) raises ZeroDivisionError; the docstring says non-empty, so this is "
                             "only worth a clearer error if callers can pass one.",
                     "path": "calc/stats.py", "line_start": n, "line_end": n, "suggestion": None})
verdict = "needs changes" if any(f["priority"] in ("P0", "P1") for f in findings) else "looks right"
print(json.dumps({"findings": findings, "explanation": f"Scripted review: the change {verdict}."}))
'''

_CHECK_DOCS = '''\
"""Verify for the `docs` spec: docs/stats.md has a section for every function of calc.stats."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import calc.stats  # noqa: E402

docs = Path("docs/stats.md")
if not docs.is_file():
    sys.exit("docs/stats.md does not exist")
missing = [name for name in calc.stats.__all__ if f"## {name}" not in docs.read_text()]
if missing:
    sys.exit("not documented: " + ", ".join(missing))
print(f"all {len(calc.stats.__all__)} functions are documented")
'''

_SCORE = '''\
# orchestra.toml: the score. orchestra reads it from the repository root.
# Agents work on specs, each run in its own git worktree and branch. The spec's verify commands
# and its allow/deny bounds are the gates you look at before you accept, reject or redirect.
#
# The agents below are scripted stand-ins (see agents/): no model, no API key. They make real
# edits, so their gates are real. The Python they run is the one that made this demo.

[orchestra]
# The branch runs start from and are merged into.
target = "main"

# --- agents: who does the work -------------------------------------------------------------
# kind = "shell" runs `command` with /bin/sh inside the run's worktree. The task is in
# $ORCHESTRA_TASK; after you redirect a run, your instruction is in $ORCHESTRA_REDIRECT.

[[agents]]
name = "fixer"        # fixes the bug properly: every gate passes
kind = "shell"
command = "{python} -B agents/fixer.py"
role = "code"
timeout = 120         # seconds it may work before orchestra stops it (default 3600)
host = "local"        # where its runs work: this machine, whose Python it runs (hosts: orchestra hosts)

[[agents]]
name = "overreach"    # fixes the bug, but also edits README.md: the boundary gate fails
kind = "shell"
command = "{python} -B agents/overreach.py"
host = "local"
role = "code"

[[agents]]
name = "tester"       # adds tests, leaves the bug: the pytest gate names the failing test
kind = "shell"
command = "{python} -B agents/tester.py"
host = "local"
role = "code"         # redirected, it fixes the bug too; role = "tests" would fail its boundary then

[[agents]]
name = "flaky"        # crashes as if its model API were down: the run fails
kind = "shell"
command = "{python} -B agents/flaky.py"
host = "local"
role = "code"

[[agents]]
name = "scribe"       # writes docs/stats.md for the `docs` spec
kind = "shell"
command = "{python} -B agents/scribe.py"
host = "local"
role = "docs"

[[agents]]
name = "reviewer"     # reviews every run read-only and answers with findings (a stand-in for a model)
kind = "shell"
command = "{python} -B agents/reviewer.py"
role = "review"

# Reviewers give a second opinion on every candidate; orchestra turns their findings into a verdict:
# any finding at or above block_on requests changes. With real models, pick a reviewer from another
# provider than the authors (independence = "provider", the default, insists on it).
[review]
agents = ["reviewer"]
block_on = "P1"

# Real agents are declared the same way; delete the "#" to try one, then add its name to a
# spec's `agents` list below.
#
#[[agents]]
#name = "claude"
#kind = "cli"                         # a coding-agent CLI installed on this machine
#preset = "claude"                    # or codex, aider, gemini, opencode
#role = "code"
#
#[[agents]]
#name = "sonnet"
#kind = "llm"                         # a model called through its API
#model = "anthropic/claude-sonnet-4-5"
#api_key_env = "ANTHROPIC_API_KEY"    # the NAME of the variable holding your key, not the key

# --- specs: what to do ---------------------------------------------------------------------
# intent: the task, in plain words, handed to every agent.
# allow / deny: globs of the paths agents may change, and must never change.
# verify: commands that must pass; a plain string works too (named after its first word).

[[specs]]
id = "fix-mean"
intent = "Fix calc.stats.mean so the failing test passes, without changing the public API"
allow = ["calc/**", "tests/**"]
deny = ["calc/_version.py"]           # releases bump the version, agents do not
verify = [
  # pytest's output is read for the counts and the names of failing tests.
  { name = "pytest", command = "{python} -m pytest -q -p no:cacheprovider tests" },
]
agents = ["fixer", "overreach", "tester", "flaky"]

[[specs]]
id = "docs"
intent = "Document every public function of calc.stats in docs/stats.md"
allow = ["docs/**", "README.md"]
verify = [{ name = "docs", command = "{python} scripts/check_docs.py" }]
agents = ["scribe"]
'''

_README = '''\
# calc: an orchestra demo

A tiny statistics package with a real bug: `calc.stats.mean` divides by one value too few,
so `tests/test_stats.py::test_mean` fails. Check with `python -m pytest`.

`orchestra demo` made this repository. Its score, `orchestra.toml`, has two specs and five
scripted agents in `agents/`: stand-ins with no model and no API key, which make real edits.

- **fixer** fixes the bug.
- **overreach** fixes it, and also edits this README, outside the spec's bounds.
- **tester** adds tests but leaves the bug.
- **flaky** crashes, as if its model API were down.
- **scribe** writes `docs/stats.md` for the `docs` spec.
- **reviewer** reviews every run (read-only) and answers with findings, like a second model would.

Spawn `fix-mean`, watch the four runs, compare their gates, then accept, reject or redirect
them. A redirected agent reads your instruction and tries again.
'''

_PYPROJECT = '''\
[tool.pytest.ini_options]
testpaths = ["tests"]
pythonpath = ["."]
'''


def demo_files(python: str) -> dict[str, str]:
    """Every file of the demo repository, by path, with the agents run by `python`."""
    return {
        "calc/__init__.py": '"""calc: a tiny statistics package (the orchestra demo)."""\n',
        "calc/_version.py": '__version__ = "0.1.0"\n',
        "calc/stats.py": _STATS,
        "tests/test_stats.py": _TESTS,
        "agents/common.py": _COMMON,
        "agents/fixer.py": _FIXER,
        "agents/overreach.py": _OVERREACH,
        "agents/tester.py": _TESTER,
        "agents/flaky.py": _FLAKY,
        "agents/scribe.py": _SCRIBE,
        "agents/reviewer.py": _REVIEWER,
        "scripts/check_docs.py": _CHECK_DOCS,
        "orchestra.toml": _SCORE.replace("{python}", _toml_text(shlex.quote(python))),
        "README.md": _README,
        "pyproject.toml": _PYPROJECT,
        ".gitignore": "__pycache__/\n*.pyc\n.pytest_cache/\n",
        MARKER: "Made by `orchestra demo`: orchestra shows its demo notice in this repository.\n",
    }


def _toml_text(text: str) -> str:
    """text escaped for the inside of a TOML basic string (JSON's escapes are valid TOML)."""
    return json.dumps(text)[1:-1]


def create_demo(path: Path, python: str = sys.executable) -> Path:
    """Create the demo repository at path (absent or an empty directory) and return it."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise OrchestraError(f"{path} already exists and is not an empty directory; "
                             "the demo needs a new one: give a path that does not exist yet.")
    path.mkdir(parents=True, exist_ok=True)
    for relative, text in demo_files(python).items():
        target = path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    _commit_all(path)
    return path.resolve()


def _commit_all(path: Path) -> None:
    """Make path a repository on branch main with one commit by the demo's own author."""
    git(path, "init", "--quiet")
    git(path, "symbolic-ref", "HEAD", "refs/heads/main")
    git(path, "add", "--all")
    git(path, "-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null",
        "commit", "--quiet", "--no-verify", "-m", _COMMIT_MESSAGE, env=_AUTHOR)


def is_demo(path: Path) -> bool:
    """Whether path is the root of a repository `orchestra demo` made."""
    return (Path(path) / MARKER).is_file()
