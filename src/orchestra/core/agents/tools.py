"""The built-in agent's tools over one worktree, with the run's boundaries enforced when it writes.

Every tool returns text for the model. A refusal or failure raises ToolError, whose message goes back
to the model as the tool's result (and into the run's log), so the model can correct itself.
The tools run in the run's tool runner (orchestra.llm.tool_runner), inside the run's jail: the
commands the model runs inherit the runner's environment, which holds no provider key.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from orchestra.core.base.globs import matches_any
from orchestra.core.base.procs import yielding
from orchestra.core.score.roles import role_of, role_violation

MAX_LIST = 400          # entries list_files returns
MAX_READ_LINES = 800    # lines read_file returns at once
MAX_MATCHES = 100       # matches search returns
MAX_OUTPUT = 12_000     # characters of a command's output the model sees (head and tail)
MAX_FILE_BYTES = 2_000_000  # files larger than this are not read or searched
INSTRUCTION_FILES = ("AGENTS.md", "CLAUDE.md", "CONVENTIONS.md")  # the repository's own instructions for agents
MAX_INSTRUCTIONS = 12_000  # characters of them put in the prompt


class ToolError(Exception):
    """A tool refused or failed; the message is what the model is told."""


@dataclass
class Toolbox:
    """The tools of one run: paths are relative to the worktree; writes obey allow and deny."""

    worktree: Path
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    command_timeout: float = 120.0
    read_only: bool = False  # a reviewer's or a security agent's: it reads and searches, never writes or runs a command
    role: str | None = None  # the agent's role, whose paths limit writes too (see score.roles)

    def __post_init__(self) -> None:
        self.root = Path(os.path.realpath(self.worktree))

    # -- paths ---------------------------------------------------------------------------------
    def resolve(self, path: str, *, writing: bool = False) -> tuple[Path, str]:
        """The absolute path and the worktree-relative POSIX path for path, or ToolError saying why not."""
        raw = (path or "").strip()
        if not raw:
            raise ToolError("a path is required")
        if raw.startswith(("/", "~")) or PurePosixPath(raw).is_absolute():
            raise ToolError(f"{raw}: absolute paths are not allowed; use a path relative to the repository root")
        relative = os.path.normpath(raw).replace(os.sep, "/")
        if relative == ".." or relative.startswith("../"):
            raise ToolError(f"{raw}: outside the worktree")
        if ".git" in PurePosixPath(relative).parts:
            raise ToolError(f"{raw}: inside .git, which orchestra manages; not allowed")
        absolute = self.root / relative if relative != "." else self.root
        real = Path(os.path.realpath(absolute))
        if real != self.root and self.root not in real.parents:
            raise ToolError(f"{raw}: leads outside the worktree (through a symbolic link)")
        real_relative = real.relative_to(self.root).as_posix() if real != self.root else "."
        if ".git" in PurePosixPath(real_relative).parts:
            raise ToolError(f"{raw}: leads into .git; not allowed")
        if writing:
            for candidate in dict.fromkeys((relative, real_relative)):
                self._check_boundary(raw, candidate)
        return absolute, relative

    def _check_boundary(self, raw: str, relative: str) -> None:
        if self.allow and not matches_any(self.allow, relative):
            raise ToolError(f"{raw}: outside the spec's allowed paths ({', '.join(self.allow)}); "
                            "change only files there")
        if self.deny and matches_any(self.deny, relative):
            raise ToolError(f"{raw}: inside the spec's denied paths ({', '.join(self.deny)}); leave it alone")
        role = role_of({"role": self.role})
        if role.allow is not None and not matches_any(role.allow, relative):
            raise ToolError(f"{role_violation(role, raw)}; leave it alone (your role says why)")

    # -- reading -------------------------------------------------------------------------------
    def list_files(self, path: str = ".", pattern: str | None = None) -> str:
        base, relative = self.resolve(path)
        if not base.is_dir():
            raise ToolError(f"{path}: not a directory")
        found = []
        for directory, dirs, files in os.walk(base):
            dirs[:] = sorted(d for d in dirs if d != ".git")
            for name in sorted(files):
                if name == ".git":  # a worktree's .git is a file pointing at the repository
                    continue
                rel = (Path(directory) / name).relative_to(self.root).as_posix()
                if pattern is None or matches_any((pattern,), rel):
                    found.append(rel)
        shown = found[:MAX_LIST]
        more = f"\n… and {len(found) - MAX_LIST} more (narrow the path or pattern)" if len(found) > MAX_LIST else ""
        return ("\n".join(shown) + more) if shown else f"no files under {relative}"

    def read_file(self, path: str, start_line: int = 1, end_line: int | None = None) -> str:
        lines = self._text(path).splitlines()
        start = max(1, int(start_line or 1))
        end = min(len(lines), int(end_line) if end_line else len(lines), start + MAX_READ_LINES - 1)
        if not lines:
            return f"{path} is empty"
        if start > len(lines):
            raise ToolError(f"{path} has {len(lines)} lines; start_line {start} is past the end")
        body = "\n".join(f"{n:>5}  {lines[n - 1]}" for n in range(start, end + 1))
        more = f"\n… {len(lines) - end} more lines (read from line {end + 1})" if end < len(lines) else ""
        return f"{path} lines {start}-{end} of {len(lines)}:\n{body}{more}"

    def _text(self, path: str) -> str:
        absolute, _ = self.resolve(path)
        if not absolute.is_file():
            raise ToolError(f"{path}: no such file")
        if absolute.stat().st_size > MAX_FILE_BYTES:
            raise ToolError(f"{path}: too large to read ({absolute.stat().st_size} bytes)")
        data = absolute.read_bytes()
        if b"\0" in data[:8192]:
            raise ToolError(f"{path}: a binary file")
        return data.decode("utf-8", "replace")

    def search(self, pattern: str, path: str = ".", glob: str | None = None) -> str:
        try:
            regex = re.compile(pattern)
        except re.error as error:
            raise ToolError(f"invalid regular expression {pattern!r}: {error}") from None
        base, _ = self.resolve(path)
        files = [base] if base.is_file() else [self.root / rel for rel in self.list_files(path, glob).splitlines()
                                                if not rel.startswith(("… ", "no files"))]
        matches = []
        for file in files:
            rel = file.relative_to(self.root).as_posix()
            try:
                text = self._text(rel)
            except ToolError:
                continue
            for number, line in enumerate(text.splitlines(), 1):
                if regex.search(line):
                    matches.append(f"{rel}:{number}: {line[:300]}")
                    if len(matches) >= MAX_MATCHES:
                        return "\n".join(matches) + f"\n… stopped at {MAX_MATCHES} matches (narrow the search)"
        return "\n".join(matches) or f"no match for {pattern!r}"

    def repository_instructions(self) -> str:
        """The repository's own instructions for agents (AGENTS.md, …), cut to MAX_INSTRUCTIONS; a file that
        leads outside the worktree is left out."""
        parts = []
        for name in INSTRUCTION_FILES:
            try:
                text = self._text(name)
            except (ToolError, OSError):
                continue
            parts.append(f"--- {name} ---\n{text.strip()}")
        text = "\n\n".join(parts)
        return text if len(text) <= MAX_INSTRUCTIONS else text[:MAX_INSTRUCTIONS] + "\n… (cut)"

    # -- writing -------------------------------------------------------------------------------
    def write_file(self, path: str, content: str) -> str:
        absolute, relative = self.resolve(path, writing=True)
        if absolute.is_dir():
            raise ToolError(f"{path}: is a directory")
        existed = absolute.exists()
        absolute.parent.mkdir(parents=True, exist_ok=True)
        absolute.write_text(content, encoding="utf-8")
        lines = content.count("\n") + (0 if content.endswith("\n") or not content else 1)
        return f"{'overwrote' if existed else 'created'} {relative} ({lines} lines)"

    def edit_file(self, path: str, search: str, replace: str) -> str:
        absolute, relative = self.resolve(path, writing=True)
        text = self._text(relative)
        if not search:
            raise ToolError("search must not be empty (use write_file to create a file)")
        count = text.count(search)
        if count != 1:
            where = "not found" if count == 0 else f"found {count} times; include more context to make it unique"
            raise ToolError(f"{relative}: the search text was {where}")
        absolute.write_text(text.replace(search, replace, 1), encoding="utf-8")
        return f"edited {relative}: replaced {search.count(chr(10)) + 1} line(s) with {replace.count(chr(10)) + 1}"

    # -- commands ------------------------------------------------------------------------------
    def run_command(self, command: str, timeout: float | None = None) -> str:
        """Run a shell command in the worktree, in its own process group (killed on timeout, or when this
        process is told to stop while it runs), with this process's environment."""
        if not command.strip():
            raise ToolError("command must not be empty")
        limit = min(float(timeout or self.command_timeout), self.command_timeout)
        proc = subprocess.Popen(yielding(["/bin/sh", "-c", command]), cwd=self.root, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            output, _ = proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            _kill(proc)
            return f"timed out after {limit:g}s (killed)\n{_cap(_drain(proc))}"
        except BaseException:  # stopped (SystemExit from a signal): the command goes first
            _kill(proc)
            raise
        return f"exit status {proc.returncode}\n{_cap(output)}"

    def call(self, name: str, arguments: dict[str, Any]) -> str:
        """Run the tool called name with the model's arguments; ToolError for anything wrong."""
        method = _TOOLS.get(name)
        if method is None:
            raise ToolError(f"unknown tool {name!r}; the tools are: {', '.join(_TOOLS)}")
        if self.read_only and name not in READ_TOOLS:
            raise ToolError(f"{name} is not allowed: this agent only reads (its tools: {', '.join(READ_TOOLS)})")
        try:
            return getattr(self, method)(**arguments)
        except TypeError as error:
            raise ToolError(f"bad arguments for {name}: {error}") from None
        except OSError as error:
            raise ToolError(f"{name} failed: {error.strerror or error}") from None


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _drain(proc: subprocess.Popen[bytes]) -> bytes:
    try:
        output, _ = proc.communicate(timeout=5)
        return output or b""
    except subprocess.TimeoutExpired:
        return b""


def _cap(output: bytes) -> str:
    text = output.decode("utf-8", "replace")
    if len(text) <= MAX_OUTPUT:
        return text
    half = MAX_OUTPUT // 2
    return f"{text[:half]}\n… {len(text) - MAX_OUTPUT} characters left out …\n{text[-half:]}"


READ_TOOLS = ("list_files", "read_file", "search")
_TOOLS = {"list_files": "list_files", "read_file": "read_file", "search": "search",
          "write_file": "write_file", "edit_file": "edit_file", "run_command": "run_command"}


def _function(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": properties, "required": required, "additionalProperties": False}}}


_PATH = {"type": "string", "description": "path relative to the repository root"}
TOOL_SPECS = [
    _function("list_files", "List the files under a directory (recursively; .git is never listed).",
              {"path": {**_PATH, "description": "directory, default the root"},
               "pattern": {"type": "string", "description": "optional glob, e.g. '*.py' or 'src/**'"}}, []),
    _function("read_file", "Read a text file, with line numbers; long files in ranges.",
              {"path": _PATH, "start_line": {"type": "integer"}, "end_line": {"type": "integer"}}, ["path"]),
    _function("search", "Search files for a regular expression; returns path:line: text.",
              {"pattern": {"type": "string"}, "path": {**_PATH, "description": "file or directory, default the root"},
               "glob": {"type": "string", "description": "optional glob limiting the files"}}, ["pattern"]),
    _function("write_file", "Create or overwrite a file with the given content.",
              {"path": _PATH, "content": {"type": "string"}}, ["path", "content"]),
    _function("edit_file", "Replace one exact occurrence of search with replace in a file.",
              {"path": _PATH, "search": {"type": "string", "description": "exact text, unique in the file"},
               "replace": {"type": "string"}}, ["path", "search", "replace"]),
    _function("run_command", "Run a shell command in the repository root (e.g. the tests); returns its exit "
              "status and output.", {"command": {"type": "string"},
                                     "timeout": {"type": "number", "description": "seconds"}}, ["command"]),
]
READ_TOOL_SPECS = [spec for spec in TOOL_SPECS if spec["function"]["name"] in READ_TOOLS]
