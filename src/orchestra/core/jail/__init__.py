"""Jails: the one place that decides how a run's processes start (sandbox, environment, private places).

Agents, their gates and their setup commands are all started through `command_in(jail, argv)` with
`jail_environment(jail, ...)`; `jail_for(...)` builds a run's jail from its record.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from orchestra.core.base.errors import OrchestraError
from orchestra.core.base.procs import yielding
from orchestra.core.jail.environment import jail_environment
from orchestra.core.jail.jail import Jail, home_dir
from orchestra.core.jail.sandbox import SandboxStatus, ensure_paths, helper_paths, probe, wrap

__all__ = ["Jail", "JailRefused", "SandboxStatus", "command_in", "jail_environment", "jail_for", "probe"]

# What each CLI preset keeps under the home directory for its login and configuration.
PRESET_HOME = {
    "claude": ("~/.claude", "~/.claude.json"),
    "codex": ("~/.codex",),
    "gemini": ("~/.gemini",),
    "opencode": ("~/.config/opencode", "~/.local/share/opencode"),
    "aider": ("~/.aider",),
}


class JailRefused(OrchestraError):
    """The score requires a sandbox and this machine cannot make one; the message says why and what to do."""


def jail_for(run_id: str, worktree: Path, gitdir: Path, common_dir: Path, branch: str, private: Path,
             agent: Mapping[str, Any], settings: Mapping[str, Any]) -> Jail:
    """The jail of a run: agent is its agent's config (network, kind, preset), settings its sandbox
    settings from the score ({"mode", "read"}). JailRefused when the mode is required and cannot be met."""
    mode = settings.get("mode") or "auto"
    status = probe() if mode != "off" else SandboxStatus(False, "the score turns the sandbox off")
    if mode == "required" and not status.works:
        raise JailRefused(f"The score requires a sandbox ([orchestra] sandbox = \"required\"), but {status.reason}. "
                          "Install bubblewrap, or set sandbox = \"auto\" to run agents unsandboxed (visibly).")
    home = home_dir()
    read = [_expand(path, home) for path in settings.get("read", ())]
    write = [_expand(path, home) for path in PRESET_HOME.get(agent.get("preset") or "", ())]
    hidden = (home, Path("/tmp"))  # what the sandbox replaces with empty directories
    read += _path_dirs_under(hidden) + [path for path in helper_paths() if any(_under(path, h) for h in hidden)]
    network = agent.get("network") == "on" if agent.get("network") else agent.get("kind") != "llm"
    return Jail(run_id=run_id, worktree=worktree, gitdir=gitdir, common_dir=common_dir, branch=branch,
                private=private, user_home=home, network=network, read=tuple(read), write=tuple(write),
                sandboxed=status.works, reason="" if status.works else status.reason)


def command_in(jail: Jail, argv: list[str], session: Sequence[str] = ()) -> list[str]:
    """argv as the run's process starts it: inside bubblewrap when the jail is sandboxed, and below the
    conductor's UI in priority (procs.yielding: the session it leads is niced). session is a command that
    starts argv in a session of its own (a controlling terminal's): the niceness is set inside it.

    Prepares the run's private places (and links the home's declared paths) the first time."""
    prepare(jail)
    inner = [*session, *yielding(argv)]
    if not jail.sandboxed:
        return inner
    bwrap = probe().bwrap
    assert bwrap is not None
    return wrap(bwrap, jail, inner)


def prepare(jail: Jail) -> None:
    """Create the run's private places; link the declared and preset paths under the home into its home."""
    ensure_paths(jail)
    for path in (*jail.read, *jail.write):
        if _under(path, jail.user_home) and os.path.lexists(path):
            link = jail.home / path.relative_to(jail.user_home)
            if not os.path.lexists(link):
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(path)


def _expand(path: str, home: Path) -> Path:
    return home / path[2:] if path.startswith("~/") else Path(path)


def _under(path: Path, home: Path) -> bool:
    return path == home or home in path.parents


def _path_dirs_under(hidden: tuple[Path, ...]) -> list[Path]:
    """PATH's directories the sandbox would hide (CLIs are often installed under the home), and where the
    programs linked from them really are: kept readable."""
    dirs: list[Path] = []
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        path = Path(entry) if entry and os.path.isabs(entry) else None
        if path is None or not path.is_dir() or not any(_under(path.resolve(), h) for h in hidden):
            continue
        dirs += [path, path.resolve()]
        for program in path.iterdir():
            target = program.resolve().parent
            if program.is_symlink() and any(_under(target, h) for h in hidden):
                dirs.append(target)
    return list(dict.fromkeys(dirs))
