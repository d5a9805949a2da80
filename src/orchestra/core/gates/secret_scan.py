"""The secret scan of every candidate's diff: detect-secrets on the lines the change adds, nothing else.

Only added lines are read (since the merge base), so a secret the target already holds is not the
candidate's doing and does not block it. detect-secrets runs as a library with its default plugins (but the public-IP one) and
heuristic filters; its online verification is never switched on (it happens only when the
`is_ignored_due_to_verification_policies` filter is configured, and that filter is removed here), so
the scan never reaches the network. A line that carries `pragma: allowlist secret` in a comment is not
reported (nor the line after an added `pragma: allowlist nextline secret` line). A keyword hit whose value
is a variable's name (`api_key_env = "OPENAI_API_KEY"`) or one plain word is not reported either.

Each hit is a P0 finding naming the secret's type and place, never its value: neither the finding nor
the gate holds any text of the line. Only the first MAX_LINE characters of a line are scanned, so a
minified bundle costs milliseconds, not minutes (a secret further along such a line is not seen).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from orchestra.core.base.findings import Finding
from orchestra.core.git.added import AddedLines, added_text
from orchestra.core.runs.run import SECRETS_GATE, Gate

MAX_LINE = 4096  # characters of one line that are scanned
_ADVICE = ("Remove it from the change (and rotate it if it is real). If it is not a secret, add a "
           "`pragma: allowlist secret` comment to the line.")
# detect-secrets keeps its settings in one global: one scan at a time in a process.
_LOCK = threading.Lock()
_NO_FILE_CHECK = "detect_secrets.filters.common.is_invalid_file"  # it would look for the path on disk
_ONLINE = "detect_secrets.filters.common.is_ignored_due_to_verification_policies"
# A public IP address is not a credential: as a P0 it would block every change to a hosts file or a test.
_NOT_SECRETS = ("IPPublicDetector",)


def scan_gate(git_dir: Path, since: str, tree: str) -> Gate:
    """The secrets gate of the change since..tree (blocking: runs git and the scanner)."""
    started = time.time()
    added = added_text(git_dir, since, tree)
    findings = [finding.to_json() for finding in scan_added(added)]
    gate = Gate(name=SECRETS_GATE, kind="secrets", tree=tree, started=started, findings=findings,
                status="failed" if findings else "passed", summary=_summary(len(findings)))
    gate.details = {"scanner": "detect-secrets", "files": len(added),
                    "lines": sum(len(lines) for lines in added.values()),
                    "lines_cut": sum(len(text) > MAX_LINE for lines in added.values() for _, text in lines)}
    gate.finished = time.time()
    return gate


def _summary(count: int) -> str:
    if not count:
        return "no secrets found"
    return f"{count} possible secret{'s' if count != 1 else ''}"


def load_scanner() -> None:
    """Load the scanner's modules now (they are loaded at the first scan otherwise: ~0.15 s, requests and urllib3
    with them), for processes that fork from this one (supervise.launch)."""
    import detect_secrets.core.scan  # noqa: F401
    import detect_secrets.settings  # noqa: F401
    import detect_secrets.util.code_snippet  # noqa: F401
    import detect_secrets.util.inject  # noqa: F401


def scan_added(added: AddedLines) -> list[Finding]:
    """A P0 finding per (path, line, secret type) detect-secrets reports in the added lines."""
    from detect_secrets.settings import default_settings

    found: dict[tuple[str, int, str], Finding] = {}
    with _LOCK, default_settings() as settings:
        settings.disable_filters(_NO_FILE_CHECK, _ONLINE)
        settings.disable_plugins(*_NOT_SECRETS)
        for path, lines in added.items():
            for line, kind in _hits(path, lines):
                found.setdefault((path, line, kind), _finding(path, line, kind))
    return list(found.values())


def _finding(path: str, line: int, kind: str) -> Finding:
    return Finding(title=f"Possible secret: {kind}", priority="P0", source="secrets", rule=kind, path=path,
                   line_start=line, line_end=line,
                   body=f"detect-secrets sees what looks like a {kind} in a line this change adds. {_ADVICE}")


def _hits(path: str, lines: list[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    """(line, secret type) of each secret in one file's added lines (in the settings in force)."""
    from detect_secrets.settings import get_plugins
    from detect_secrets.util.code_snippet import CodeSnippet

    if _filtered(("filename",), filename=path):
        return  # e.g. a lock file, an image
    plugins = get_plugins()
    previous: tuple[int, str] = (0, "")
    for number, raw in lines:
        text = raw[:MAX_LINE].rstrip()
        # The line before, when the change adds it too: what a "nextline" pragma is read from.
        before = previous[1] if previous[0] == number - 1 else ""
        previous = (number, text)
        context = CodeSnippet([before, text], number - 2, 1)
        found = [(plugin, secret) for plugin in plugins
                 for secret in plugin.analyze_line(filename=path, line=text, line_number=number, context=context)]
        # The line's own filters (the pragma, `x = get_secret()`) only for a line with a hit: they cost more
        # than the plugins, and decide the same.
        if not found or _filtered(("line",), filename=path, line=text, context=context):
            continue
        for plugin, secret in found:
            facts = {"filename": path, "secret": secret.secret_value, "plugin": plugin, "line": text}
            if _names_no_secret(str(secret.type), secret.secret_value or ""):
                continue
            if not _filtered(("secret",), **facts) and not _filtered(("context",), **facts, context=context):
                yield number, str(secret.type)


# What a keyword hit's value is when it names a secret instead of holding one: an environment variable's
# name (api_key_env = "OPENAI_API_KEY"), or one plain word (SECRETS_GATE = "secrets").
_VARIABLE_NAME = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")
_PLAIN_WORD = re.compile(r"[a-z]+(?:[-_][a-z]+)*")


def _names_no_secret(kind: str, value: str) -> bool:
    """Whether the keyword plugin's hit is a variable's name or a plain word: a P0 that blocks a run must be
    worth it, and these are the keyword plugin's usual false alarms in code that handles keys."""
    return kind == "Secret Keyword" and bool(_VARIABLE_NAME.fullmatch(value) or _PLAIN_WORD.fullmatch(value))


def _filtered(parameters: tuple[str, ...], **facts: Any) -> bool:
    """Whether a detect-secrets filter taking these parameters rules the thing out (as its scanner does)."""
    from detect_secrets.core.scan import get_filters_with_parameter
    from detect_secrets.util.inject import call_function_with_arguments

    for check in get_filters_with_parameter(*parameters):
        try:
            if call_function_with_arguments(check, **facts):
                return True
        except TypeError:  # a filter that needs more than these facts
            continue
    return False
