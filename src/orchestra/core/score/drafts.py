"""A drafted spec: the drafting agent's answer read and checked, and the spec file made from it.

`orchestra spec draft "WHAT"` has an agent read the repository and answer with one JSON object meeting
DRAFT_SCHEMA. parse_draft reads it and checks it with the rules of any spec, so a malformed answer names
what is wrong and the agent can be asked again. draft_text renders it as a commented spec file holding
`draft = true`, which `orchestra spawn` refuses until the conductor has read the spec and removed the line;
check_draft_loads proves the whole score still loads with it before anything is written.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from orchestra.core.base.names import MAX_NAME
from orchestra.core.score.document import decode, read_bytes
from orchestra.core.score.locate import Problems
from orchestra.core.score.parts import spec_table
from orchestra.core.score.spec_files import SPEC_DIR, spec_file_of
from orchestra.core.score.templates import SCORE_PATHS

_PATHS = {"type": "array", "items": {"type": "string", "minLength": 1}}
DRAFT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "intent", "allow", "deny", "verify"],
    "properties": {
        "id": {"type": "string", "description": "a short spec id: lower-case letters, digits, '-', e.g. fix-login"},
        "intent": {"type": "string", "minLength": 1, "description": "the outcome, and how to tell it is done"},
        "allow": {**_PATHS, "minItems": 1, "description": "globs of the paths the change belongs in"},
        "deny": {**_PATHS, "description": "globs of paths it must not touch"},
        "stable": {**_PATHS, "description": "paths whose content must stay exactly as it is (they are denied)"},
        "verify": {"type": "array", "items": {
            "type": "object", "required": ["name", "command"],
            "properties": {"name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$"},
                           "command": {"type": "string", "minLength": 1},
                           "found_in": {"type": "string", "description": "the file the command comes from"}}}},
        "notes": {"type": "string", "description": "why these paths: where the change belongs"},
        "rollback": {"type": "string", "description": "what undoing the change once merged needs"},
    },
}
_FENCE = re.compile(r"^```[a-zA-Z]*\n(.*)\n```$", re.DOTALL)
_NOT_ID = re.compile(r"[^a-z0-9_-]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # not allowed in a TOML comment (line breaks split first)


class MalformedDraft(ValueError):
    """The drafting agent's answer cannot be used; the message says why (and is put back to it)."""


@dataclass(frozen=True)
class DraftCheck:
    """One verify command the agent found: its name, the command, and the file it comes from."""

    name: str
    command: str
    found_in: str = ""


@dataclass(frozen=True)
class Draft:
    """A spec as the agent proposes it, checked; its id is only a wish until free_id makes it one."""

    id: str
    intent: str
    allow: tuple[str, ...]
    deny: tuple[str, ...]
    verify: tuple[DraftCheck, ...]
    stable: tuple[str, ...] = ()
    notes: str = ""
    rollback: str = ""

    @property
    def denied(self) -> tuple[str, ...]:
        """What the spec denies: the agent's deny, its stable paths, and the score with every spec file."""
        return tuple(dict.fromkeys((*self.deny, *self.stable, *SCORE_PATHS)))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def parse_draft(text: str) -> Draft:
    """The draft in an answer; MalformedDraft saying what is wrong with it."""
    from jsonschema import Draft202012Validator

    data = json_object(text)
    errors = sorted(Draft202012Validator(DRAFT_SCHEMA).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "(top)"
        raise MalformedDraft(f"the answer does not meet the schema at {where}: {errors[0].message[:300]}")
    draft = draft_of(data)
    problems = spec_problems(draft)
    if problems:
        raise MalformedDraft("as a spec it would not load: " + "; ".join(problems))
    return draft


def draft_of(data: dict[str, Any]) -> Draft:
    """The Draft in JSON meeting DRAFT_SCHEMA (an answer, or Draft.to_json())."""
    return Draft(id=data["id"], intent=data["intent"].strip(), allow=tuple(data["allow"]), deny=tuple(data["deny"]),
                 verify=tuple(DraftCheck(v["name"], v["command"].strip(), v.get("found_in") or "")
                              for v in data["verify"]),
                 stable=tuple(data.get("stable") or ()), notes=data.get("notes") or "",
                 rollback=data.get("rollback") or "")


def json_object(text: str) -> dict[str, Any]:
    """The one JSON object of an answer, tolerating a code fence or prose around it."""
    stripped = text.strip()
    fenced = _FENCE.match(stripped)
    candidate = fenced.group(1) if fenced else stripped
    try:
        data = json.loads(candidate)
    except ValueError:
        start, end = stripped.find("{"), stripped.rfind("}")
        try:
            data = json.loads(stripped[start:end + 1]) if 0 <= start < end else None
        except ValueError as error:
            raise MalformedDraft(f"the answer is not valid JSON ({error.msg} at character {error.pos})") from None
    if not isinstance(data, dict):
        raise MalformedDraft("the answer holds no JSON object")
    return data


def spec_problems(draft: Draft) -> list[str]:
    """What the spec validation finds wrong with the draft as a spec file (its id set aside: free_id makes one)."""
    path = Path(SPEC_DIR) / "drafted.toml"
    file = spec_file_of(path, draft_text(draft, "drafted", "", "", "").encode())
    if file.error is not None:
        return [problem.message for problem in file.error.problems]
    problems = Problems(path, file.text, file.index)
    spec_table(problems, (), {"id": "drafted", **(file.tables or {})}, {}, None, required=("intent",))
    return [f"{problem.key}: {problem.message}" if problem.key else problem.message
            for problem in problems.collected()]


def free_id(wanted: str, taken: set[str]) -> tuple[str, str | None]:
    """A valid spec id no spec has, close to wanted; and what was changed and why (None when nothing was)."""
    cleaned = _NOT_ID.sub("-", wanted.strip().lower()).strip("-_")[:MAX_NAME - 4].strip("-_") or "drafted-spec"
    spec_id, number = cleaned, 1
    while spec_id in taken:
        number += 1
        spec_id = f"{cleaned}-{number}"
    reasons = [f"the proposed id {wanted!r} is not a valid spec id"] if cleaned != wanted else []
    reasons += [f"a spec {cleaned!r} already exists"] if spec_id != cleaned else []
    return spec_id, (f"{' and '.join(reasons)}: the draft's id is {spec_id!r}" if reasons else None)


def draft_text(draft: Draft, spec_id: str, agent: str, model: str, wanted: str) -> str:
    """The commented spec file of a draft, marked `draft = true`."""
    return "\n".join([_header(spec_id, agent, model, wanted), _body(draft), _verify(draft), _rollback(draft)])


def _header(spec_id: str, agent: str, model: str, wanted: str) -> str:
    return f'''# Spec {spec_id}: drafted by {agent} ({model}) from:
{_comment(wanted)}
# Read and edit it before use: nothing runs until you do. Its keys are those of an orchestra.toml
# [[specs]] table; its id is the file's name.

# This spec is a draft: `orchestra spawn {spec_id}` (and n in the fleet) refuse it while this line is here.
# Delete it once the intent, boundaries and verify commands below say what you want.
draft = true
'''


def _body(draft: Draft) -> str:
    notes = f"\n# Why these paths, as the drafter saw it:\n{_comment(draft.notes)}" if draft.notes.strip() else ""
    stable = "".join(f"\n{_comment(path)}" for path in draft.stable) or "\n#   (the drafter named none)"
    return f'''# Intent: the outcome the agent works towards (it is the agent's task).
intent = {toml_string(draft.intent)}

# Boundaries: the paths an agent may change (allow) and may never change (deny), gitignore-style globs
# from the repository root. A run that changes anything else fails its boundary gate.{notes}
allow = {toml_strings(draft.allow)}

# Stable paths: files this change must leave exactly as they are; deny is how they stay stable. The
# drafter's stable paths (already in deny):{stable}
# orchestra.toml and specs/ are denied so an agent cannot rewrite the spec it is judged by.
deny = {toml_strings(draft.denied)}

# Who works on it: agents = ["name", ...] (default: every agent that is not a reviewer);
# review = ["name"] for reviewers of this spec; env = ["VAR"] for variables its agents may see.
'''


def _verify(draft: Draft) -> str:
    head = ("# Verification: machine-checked conditions, run when the agent finishes and whenever its worktree\n"
            "# changes. The drafter found these in the repository: check that each runs here before you rely on it.")
    if not draft.verify:
        return head + "\n# It found none: add [[verify]] tables (name, command), or the spec verifies nothing.\n"
    tables = [f"[[verify]]\n{_found_in(check)}name = {toml_string(check.name)}\n"
              f"command = {toml_string(check.command)}\n" for check in draft.verify]
    return head + "\n" + "\n".join(tables)


def _found_in(check: DraftCheck) -> str:
    where = " ".join(check.found_in.split())
    return f"{_comment(f'found in {where}')}\n" if where else ""


def _rollback(draft: Draft) -> str:
    text = draft.rollback.strip() or "The drafter said nothing; `orchestra revert RUN --reason ...` undoes the merge."
    return f"# Rollback: how to undo this once it is merged.\n{_comment(text)}\n"


def _comment(text: str) -> str:
    """Text (anyone's: the conductor's words, the model's) as comment lines indented two spaces; what a TOML
    comment cannot hold is left out."""
    lines = (_CONTROL.sub("", line).rstrip() for line in (text.strip() or "(nothing)").splitlines())
    return "\n".join(f"#   {line}" if line else "#" for line in lines)


def toml_string(value: str) -> str:
    """A TOML basic string of value (JSON's escapes are TOML's; DEL, which TOML forbids raw, escaped too)."""
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_strings(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(toml_string(value) for value in values) + "]"


def check_draft_loads(score_path: Path, spec_id: str, text: str) -> None:
    """Raise the score's ConfigError when the score would not load with text as specs/<spec_id>.toml."""
    from orchestra.core.score.load import parse_score
    from orchestra.core.score.spec_files import read_spec_files
    path = Path(score_path).parent / SPEC_DIR / f"{spec_id}.toml"
    files = sorted([*read_spec_files(score_path), spec_file_of(path, text.encode())], key=lambda f: f.path.name)
    parse_score(decode(score_path, read_bytes(score_path)), score_path, files)

