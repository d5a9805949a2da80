"""A run's jail, from its record: what its agent and its gates are started in, and with what environment."""

from __future__ import annotations

import os
from pathlib import Path

from orchestra.core.agents.presets import KEY_NAMES
from orchestra.core.agents.prompts import task_with_role
from orchestra.core.git.repo import Repository
from orchestra.core.git.worktrees import admin_dir_of, agent_identity
from orchestra.core.jail import Jail, jail_environment, jail_for
from orchestra.core.runs.run import Run
from orchestra.core.supervise.imports import python_environment


# Provider keys orchestra knows of: a gate never gets one, whatever the spec declares.


def repository_of(state_dir: Path) -> Repository:
    common_dir = state_dir.parent
    return Repository(root=common_dir.parent, common_dir=common_dir)


def jail_of_run(state_dir: Path, run: Run) -> Jail:
    """The run's jail (JailRefused when its score requires a sandbox this machine cannot make)."""
    repo = repository_of(state_dir)
    worktree = Path(run.worktree)
    gitdir = Path(run.gitdir) if run.gitdir else admin_dir_of(repo, worktree) or repo.common_dir / "worktrees"
    return jail_for(run.id, worktree, gitdir, repo.common_dir, run.branch, repo.jails_dir / run.id,
                    run.agent_config, run.sandbox_config or {})


def run_variables(run: Run, redirect: str | None) -> dict[str, str]:
    """What orchestra tells a run's processes about it (ORCHESTRA_*)."""
    variables = {"ORCHESTRA_TASK": run.task, "ORCHESTRA_SPEC": run.spec or "", "ORCHESTRA_RUN": run.id,
                 "ORCHESTRA_WORKTREE": run.worktree}
    if redirect:
        variables["ORCHESTRA_REDIRECT"] = redirect
    if run.port:
        variables["ORCHESTRA_PORT"] = str(run.port)  # the first of ten ports the run has to itself
    return variables


def agent_environment(jail: Jail, run: Run, redirect: str | None) -> dict[str, str]:
    """The agent's environment: the jail's allowlist, the variables its agent and spec declare, and for a
    cli agent that calls its model itself, its api_key_env."""
    config = run.agent_config
    declared = run.declared_env()
    if config.get("kind") == "cli" and config.get("api_key_env"):
        declared.append(config["api_key_env"])
    # The user's git identity is not in the jail (their home is hidden): commits an agent makes are its own.
    told = {**agent_identity(run.agent), **run_variables(run, redirect), **role_variables(run)}
    return jail_environment(jail, os.environ, declared, told)


def role_variables(run: Run) -> dict[str, str]:
    """What an agent with a role is told of it: its name (ORCHESTRA_ROLE), and its task with the role's text."""
    role = run.agent_config.get("role")
    return {"ORCHESTRA_ROLE": role, "ORCHESTRA_TASK": task_with_role(run)} if isinstance(role, str) else {}


def gate_environment(jail: Jail, run: Run) -> dict[str, str]:
    """A gate's (and a setup command's) environment: the jail's allowlist and the spec's declared variables,
    never a provider key; the worktree first on PYTHONPATH, with the import check (supervise.imports)."""
    declared = [name for name in (run.spec_config or {}).get("env", ()) if name not in KEY_NAMES]
    env = jail_environment(jail, os.environ, declared, run_variables(run, None))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(python_environment(jail, env))
    return env
