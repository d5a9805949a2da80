"""User-facing errors: each carries a message that says what happened and what to do."""

from __future__ import annotations


class OrchestraError(Exception):
    """An error the user can act on; its text is shown as is, never as a traceback.

    exit_status is what the command line exits with (1: it failed; 2: bad usage or input; 3: refused
    by policy); heading, when set, is printed on a line of its own above the text."""

    exit_status = 1
    heading: str | None = None


class GitError(OrchestraError):
    """A git command failed."""

    def __init__(self, args: tuple[str, ...], returncode: int, stderr: str) -> None:
        self.git_args = args
        self.returncode = returncode
        self.stderr = stderr.strip()
        super().__init__(f"git {' '.join(args)} failed ({returncode}): {self.stderr}")


class NotARepository(OrchestraError):
    """The directory is not inside a git repository."""


class RunNotFound(OrchestraError):
    """No run has the given id."""


class ActionRefused(OrchestraError):
    """A decision could not be carried out; nothing was changed."""


class BadUsage(OrchestraError):
    """A command was given something it cannot use (exit 2); nothing was changed."""

    exit_status = 2
