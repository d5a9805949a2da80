"""What a spec's drafter is asked: the rules of a spec, the conductor's words, the files of the target branch
and the build, test and CI files where verify commands are found."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from orchestra.core.agents.tools import INSTRUCTION_FILES
from orchestra.core.base.globs import matches_any
from orchestra.core.git.diffs import files_at
from orchestra.core.score.drafts import DRAFT_SCHEMA

# Where a repository says how it is built, tested, linted and checked in CI (and, for agents, how to work).
CONFIG_GLOBS = ("/pyproject.toml", "/setup.cfg", "/setup.py", "/tox.ini", "/noxfile.py", "/pytest.ini",
                "/Makefile", "/GNUmakefile", "/justfile", "/Taskfile.yml", "/package.json", "/deno.json",
                "/Cargo.toml", "/go.mod", "/pom.xml", "/build.gradle", "/build.gradle.kts", "/CMakeLists.txt",
                "/Gemfile", "/Rakefile", "/composer.json", "/mix.exs", "/.pre-commit-config.yaml",
                "/.github/workflows/*.yml", "/.github/workflows/*.yaml", "/.gitlab-ci.yml", "/.circleci/config.yml",
                "/azure-pipelines.yml", "/Jenkinsfile", "/CONTRIBUTING.md",
                *(f"/{name}" for name in INSTRUCTION_FILES))
MAX_LISTED = 1500        # paths of the target listed in the prompt; list_files finds the rest
MAX_CONFIG_FILE = 6000   # characters of one configuration file in the prompt (read_file reads the rest)
MAX_CONFIG = 40_000      # characters of all of them
MAX_READS = 24           # tool turns before the drafter must answer (llm.draft_job)


def system_prompt(agent: str) -> str:
    """The drafter's instructions: what a spec is, what each part of the answer must hold, the schema."""
    return "\n".join([
        f"You are {agent}, drafting a spec for orchestra, which runs AI coding agents on specs. A spec says what "
        "one change must achieve (intent), where it belongs (allow: the paths it may change; deny: paths it must "
        "not touch) and how to verify it (verify: shell commands run from the repository root that exit 0 when "
        "the change is right). A human conductor reads and edits your draft before anything runs.",
        f"You cannot change any file. Read the repository with list_files, read_file and search as much as you "
        f"need (at most {MAX_READS} turns of reading), then answer.",
        "- intent: the outcome the conductor asked for, in their terms, and how to tell it is done; not a plan.",
        "- allow: as narrow as the change allows: the modules where it belongs and their tests. Globs are "
        "gitignore-style from the repository root, e.g. src/auth/** or tests/test_auth.py.",
        "- deny: paths near the change that it must not touch (public interfaces, migrations, generated code, "
        "lock files), if any. stable: files that must stay exactly as they are (they are denied too).",
        "- verify: commands this repository already uses to test, lint or type-check, found in its build files, "
        "CI workflows, Makefile or package.json scripts: the tests closest to the change, and the whole suite. "
        "Each has a short name (letters, digits, '.', '-', '_') and found_in, the file you found it in. Never "
        "invent a tool the repository does not use; an empty list is better than a guess.",
        "- notes: one or two sentences on why these paths. rollback: what undoing the change would need besides "
        "reverting its merge. id: a short id, lower-case letters, digits and '-', e.g. fix-login-timeout.",
        "Answer with ONE JSON object and nothing else (no prose, no code fence), meeting this JSON schema:",
        json.dumps(DRAFT_SCHEMA, separators=(",", ":")),
    ])


def user_prompt(wanted: str, target: str, commit: str, paths: Sequence[str], configs: dict[str, str],
                taken: set[str]) -> str:
    """The conductor's words, the target's files and configuration, and the spec ids already taken."""
    listed = "\n".join(paths[:MAX_LISTED])
    more = f"\n… and {len(paths) - MAX_LISTED} more (list_files finds them)" if len(paths) > MAX_LISTED else ""
    shown = "\n\n".join(f"--- {path} ---\n{text.rstrip()}" for path, text in configs.items()) or "(none found)"
    ids = ", ".join(sorted(taken)) or "none"
    return (f"What the conductor wants:\n{wanted.strip()}\n\n"
            f"The repository, as its target branch {target} holds it (commit {commit[:12]}); {len(paths)} files:\n"
            f"{listed}{more}\n\nIts build, test, CI and contribution files:\n\n{shown}\n\n"
            f"Spec ids already taken (choose another): {ids}")


def config_texts(root: Path, commit: str, paths: Sequence[str]) -> dict[str, str]:
    """path → text of the target's build, test and CI files, each cut to MAX_CONFIG_FILE, MAX_CONFIG in all."""
    wanted = tuple(path for path in paths if matches_any(CONFIG_GLOBS, path))
    found = files_at(root, commit, wanted, limit=MAX_CONFIG_FILE) if wanted else {}
    texts, total = {}, 0
    for path in wanted:
        text = found.get(path)
        if text is None or total + len(text) > MAX_CONFIG:
            continue
        texts[path], total = text, total + len(text)
    return texts
