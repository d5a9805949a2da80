"""The commented starter orchestra.toml that `orchestra init` writes."""

STARTER_TOML = '''\
# orchestra.toml: the score. Agents work on specs in sandboxed worktrees; verify gates the result.
# Lines starting with "#[" or "#name" etc. are ready-made examples: delete the "#" to use them.

[orchestra]
# target: the branch runs start from and merge into; leave out to use the branch checked out now.
target = "main"
# disposable: globs (as in .gitignore) of ignored files that may be deleted along with a run's
#          worktree. Leave out for the default: dependency, test and build caches (node_modules/,
#          .venv/, venv/, __pycache__/, *.pyc, .pytest_cache/, .mypy_cache/, .ruff_cache/, .hypothesis/,
#          .tox/, .nox/, .gradle/, .next/, .cache/, *.egg-info/, .coverage, .DS_Store) and aider's
#          history (.aider*).
#disposable = ["node_modules/", ".venv/", "__pycache__/", "*.pyc", "target/"]
# setup:   commands run in every new worktree before its agent, in the run's sandbox (with network).
#          You are asked to allow them the first time and whenever they change (`orchestra spawn
#          --trust` headless). Ignored files such as .env come from your checkout when a committed
#          .worktreeinclude (gitignore syntax) names them. $ORCHESTRA_PORT is the first of ten ports
#          the run has to itself. A spec may add its own `setup = [...]`, run after these.
#          E.g. a virtualenv of the run's own, so tests import the worktree's code, not your checkout's:
#setup = ["python3 -m venv .venv", ".venv/bin/pip install -q -e '.[test]'"]

[ui]
# theme: colour theme of the terminal UI.
theme = "orchestra-dark"

[keymap]
# Rebind keys: "binding id" = "comma-separated keys".
#"run.accept" = "y"

# --- agents: who does the work ------------------------------------------------------------
# name     required, unique; lower-case letters, digits, "-" and "_" (it goes into branch names)
# kind     required: "shell" (runs command), "cli" (a coding-agent CLI), "llm" (a model via an API)
# command  shell: required. cli: optional custom command line, "{prompt}" is replaced by the task
# preset   cli only: claude, codex, aider, gemini or opencode
# model    llm: required, a litellm model string ("openai/gpt-4o", "ollama/qwen2.5-coder");
#          cli: optional, passed to the CLI's model option
# api_base, api_key_env   cli/llm only: endpoint URL (e.g. a local model server) and the NAME of
#          the environment variable holding the key (the key itself never goes in this file)
# max_turns, max_tokens, max_cost, request_timeout   llm only: the budget of one working session
#          (default 50 turns, no token or cost limit) and the seconds one model request may take
# role     optional: code, tests, docs, security, infra, plan, or review (a reviewer: it only reads,
#          and answers with findings; see [review])
# timeout  optional: seconds an agent may work before it is stopped (default 3600)

[[agents]]
name = "scribe"
kind = "shell"
# The task text is in $ORCHESTRA_TASK; the command runs inside the agent's worktree.
command = "echo \\"$ORCHESTRA_TASK\\" >> NOTES.md"
role = "docs"
timeout = 60

#[[agents]]
#name = "claude"
#kind = "cli"
#preset = "claude"
#role = "code"

#[[agents]]
#name = "sonnet"
#kind = "llm"
#model = "anthropic/claude-sonnet-4-5"
#api_key_env = "ANTHROPIC_API_KEY"
#timeout = 1800

# A reviewer from another provider than the authors: a second opinion on every candidate. Its findings
# (P0 highest … P3 a nit) are shown in the diff; orchestra's verdict: changes requested at block_on or above.
#[[agents]]
#name = "critic"
#kind = "llm"
#role = "review"
#model = "openai/gpt-4.1"
#api_key_env = "OPENAI_API_KEY"
#
#[review]
#agents = ["critic"]          # review every spec (or a spec's own review = ["critic"])
#block_on = "P1"
#independence = "provider"    # or "model", or "none" (then its approval does not make a run ready)

# --- specs: what to do ---------------------------------------------------------------------
# id       required, unique; same rules as agent names
# intent   required: the task, in plain words, handed to every agent
# allow    globs of paths the agents may change (empty: anything not denied)
# deny     globs of paths they must never change
# verify   commands that must pass: a string (named after the tool it runs) or a table
#          { name = "...", command = "...", junit = "report.xml", timeout = 600 }; a table may also
#          read a report: sarif = "lint.sarif" (findings in changed lines), coverage = "coverage.json"
#          with min_coverage / min_changed_coverage / max_coverage_drop, benchmark = true (compared
#          with the merge base, tolerance in percent), prove = true (new tests must fail on the base)
# agents   agent names to run, in order (empty: every agent)

[[specs]]
id = "notes"
intent = "Append a one-line summary of this repository to NOTES.md"
allow = ["NOTES.md"]
deny = ["orchestra.toml"]
verify = ["test -s NOTES.md", { name = "has-text", command = "grep -q . NOTES.md", timeout = 30 }]
agents = ["scribe"]
'''
