"""The score: the parsed, validated `orchestra.toml` at a repository root and the spec files next to it
(`specs/*.toml`), as frozen dataclasses.

Validation collects every problem of every file (unknown keys, wrong types, bad references, ...) before
raising a single ConfigError, so a user fixes broken files in one pass; no partial Score is ever returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from orchestra.core.score.document import decode, parse_toml, read_bytes
from orchestra.core.score.locate import BOOL, NUMBER, STRING, STRINGS, ConfigError, ConfigProblem, KeyPath, Problems
from orchestra.core.score.locate import ValueType, closest, type_name
from orchestra.core.score.model import (DEFAULT_DISPOSABLE, INDEPENDENCE, KINDS, PRESETS, SANDBOX_MODES, Agent,
                                        ApprovalRule, Check, ReviewPolicy, Score, Spec)
from orchestra.core.score.model import PROMOTE_AFTER, UPDATE_MODES
from orchestra.core.base.findings import PRIORITIES
from orchestra.core.base.providers import agent_vendor
from orchestra.core.score.parts import agent, commands, globs, non_empty, spec
from orchestra.core.score.spec_files import SpecDocument, SpecFile, read_problems, read_spec_files
from orchestra.core.score.spec_files import validate_spec_files
from orchestra.core.score.starter import STARTER_TOML
from orchestra.core.score.workflows import BUILT_IN, spec_workflow, workflows

__all__ = [
    "DEFAULT_DISPOSABLE", "KINDS", "PRESETS", "STARTER_TOML", "Agent", "Check", "ConfigError",
    "ConfigProblem", "Score", "Spec", "load_score", "parse_score",
]

def load_score(path: Path) -> Score:
    """Read and validate the score at path and the spec files next to it (specs/*.toml); ConfigError for a
    missing/unreadable file too."""
    data = read_bytes(path, "file not found (`orchestra init` writes a starter)")
    return parse_score(decode(path, data), path, read_spec_files(path))


def parse_score(text: str, path: Path, spec_files: Sequence[SpecFile] = ()) -> Score:
    """Parse and validate score text and the spec files read for it; path is only used for messages and
    Score.path. Every problem of every file is raised together, the score's first, then each file's."""
    unread = read_problems(list(spec_files))
    try:
        data, index = parse_toml(text, path)
    except ConfigError as error:
        raise ConfigError(path, problems=[*error.problems, *unread]) from None
    problems = Problems(path, text, index)
    score, documents = _build(problems, data, path, list(spec_files))
    found = [*problems.collected(), *unread, *(p for d in documents for p in d.problems.collected())]
    if found:
        raise ConfigError(path, problems=sorted(found, key=lambda p: _file_order(p, path, spec_files)))
    return score


def _file_order(problem: ConfigProblem, path: Path, spec_files: Sequence[SpecFile]) -> int:
    """Where problem's file comes in the report: the score first, then the spec files in their order."""
    files = [Path(path), *(file.path for file in spec_files)]
    return files.index(problem.file) if problem.file in files else len(files)


_TOP = ("orchestra", "ui", "keymap", "sandbox", "review", "autonomy", "approvals", "workflows", "agents", "specs")


def _table(p: Problems, data: dict, key: str, fields: dict[str, ValueType]) -> dict[str, Any]:
    """The checked contents of an optional top-level table; {} when absent or broken."""
    raw = data.get(key, {})
    if not isinstance(raw, dict):
        p.add((key,), f"expected table, got {type_name(raw)}")
        return {}
    return p.fields(raw, (key,), fields)


def _tables(p: Problems, data: dict, key: str) -> list[tuple[int, dict]]:
    """(index, table) for each entry of an optional top-level array of tables."""
    raw = data.get(key, [])
    if not isinstance(raw, list):
        p.add((key,), f"expected array of tables ([[{key}]]), got {type_name(raw)}")
        return []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            p.add((key, i), f"expected table, got {type_name(item)}")
    return [(i, item) for i, item in enumerate(raw) if isinstance(item, dict)]


def _build(p: Problems, data: dict, path: Path, spec_files: list[SpecFile]) -> tuple[Score, list[SpecDocument]]:
    """Validate parsed TOML and the spec files into a Score; meaningful only when no problem was found."""
    for key, value in data.items():
        if key not in _TOP:
            what = "table" if isinstance(value, dict | list) else "key"
            p.add((key,), f"unknown {what} {key!r}", closest(key, _TOP))
    for at in _paths_with_nul(data):
        p.add(at, "contains a NUL character (\\u0000)")
    orchestra = _table(p, data, "orchestra", {"target": STRING, "disposable": STRINGS, "sandbox": STRING,
                                              "setup": STRINGS, "update": STRING})
    non_empty(p, orchestra, ("orchestra",), "target")
    globs(p, orchestra, ("orchestra",), "disposable")
    commands(p, orchestra, ("orchestra",), "setup")
    if "sandbox" in orchestra and orchestra["sandbox"] not in SANDBOX_MODES:
        p.add(("orchestra", "sandbox"), f"invalid sandbox {orchestra['sandbox']!r}: expected one of "
              f"{', '.join(SANDBOX_MODES)}", closest(orchestra["sandbox"], SANDBOX_MODES))
    if "update" in orchestra and orchestra["update"] not in UPDATE_MODES:
        p.add(("orchestra", "update"), f"invalid update {orchestra['update']!r}: expected one of "
              f"{', '.join(UPDATE_MODES)}", closest(orchestra["update"], UPDATE_MODES))
    sandbox = _table(p, data, "sandbox", {"read": STRINGS})
    _read_paths(p, sandbox)
    ui = _table(p, data, "ui", {"theme": STRING})
    keymap = _keymap(p, data.get("keymap", {}))
    seen: dict[str, int] = {}
    agents = [agent(p, i, raw, seen) for i, raw in _tables(p, data, "agents")]
    seen_specs: dict[str, int] = {}
    specs = [spec(p, i, raw, seen, seen_specs) for i, raw in _tables(p, data, "specs")]
    documents = validate_spec_files(spec_files, seen, _inline_places(p, data))
    for document in documents:
        for at in _paths_with_nul(document.raw):
            document.problems.add(at, "contains a NUL character (\\u0000)")
    review = _review_policy(p, data, seen)
    autonomy = _table(p, data, "autonomy", {"promote_after": NUMBER})
    promote_after = autonomy.get("promote_after", PROMOTE_AFTER)
    if promote_after != int(promote_after) or not 1 <= promote_after <= 100:
        p.add(("autonomy", "promote_after"), f"must be a whole number from 1 to 100, got {promote_after}")
    _reviewers(p, [a for a in agents if a], [s for s in specs if s], review, data, documents)
    approvals = [_approval_rule(p, i, raw) for i, raw in _tables(p, data, "approvals")]
    flows = workflows(p, data.get("workflows"), set(seen))
    for i, raw in _tables_quiet(data, "specs"):
        spec_workflow(p, ("specs", i), raw.get("workflow"), flows)
    for document in documents:
        spec_workflow(document.problems, (), document.raw.get("workflow"), flows)
    specs += [document.spec for document in documents]
    return Score(
        path=path, target=orchestra.get("target"), theme=ui.get("theme"),
        agents=tuple(a for a in agents if a), specs=tuple(s for s in specs if s),
        keymap=MappingProxyType(dict(keymap)),
        disposable=tuple(orchestra.get("disposable", DEFAULT_DISPOSABLE)),
        sandbox=orchestra.get("sandbox", "auto"), sandbox_read=tuple(sandbox.get("read", ())),
        setup=tuple(orchestra.get("setup", ())), review=review, update=orchestra.get("update", "rebase"),
        promote_after=int(promote_after) if promote_after == int(promote_after) else PROMOTE_AFTER,
        approvals=tuple(rule for rule in approvals if rule),
        workflows=MappingProxyType({name: flow for name, flow in flows.items() if name not in BUILT_IN}),
    ), documents


def _inline_places(p: Problems, data: dict) -> dict[str, str]:
    """Where each of orchestra.toml's [[specs]] ids is defined (`orchestra.toml:12`), for duplicates in files."""
    places: dict[str, str] = {}
    for i, raw in _tables_quiet(data, "specs"):
        if isinstance(raw.get("id"), str):
            line = p.index.find(("specs", i, "id")) if p.index else None
            places.setdefault(raw["id"], f"{Path(p.path).name}:{line}" if line else f"{Path(p.path).name} specs[{i}]")
    return places


def _approval_rule(p: Problems, i: int, raw: dict) -> ApprovalRule | None:
    """One [[approvals]] table: paths (required globs), require (1 to 20), approvers, codeowners."""
    at = ("approvals", i)
    rule = p.fields(raw, at, {"paths": STRINGS, "require": NUMBER, "approvers": STRINGS, "codeowners": BOOL},
                    required=("paths",))
    globs(p, rule, at, "paths")
    if "paths" in rule and not rule["paths"]:
        p.add((*at, "paths"), "is empty: name the files this rule covers (e.g. [\"migrations/**\"])")
    require = rule.get("require", 1)
    if require != int(require) or not 1 <= require <= 20:
        p.add((*at, "require"), f"must be a whole number from 1 to 20 (distinct human approvals), got {require}")
        return None
    if rule.get("approvers") and rule.get("codeowners"):
        p.add((*at, "codeowners"), "set approvers or codeowners = true, not both")
    for j, who in enumerate(rule.get("approvers", ())):
        if not who.strip():
            p.add((*at, "approvers", j), "is empty: name a person (\"Ada Lovelace\" or \"ada@example.com\")")
    if not rule.get("paths"):
        return None
    return ApprovalRule(paths=tuple(rule["paths"]), require=int(require), approvers=tuple(rule.get("approvers", ())),
                        codeowners=bool(rule.get("codeowners", False)))


def _review_policy(p: Problems, data: dict, agents: dict[str, int]) -> ReviewPolicy:
    """[review]: agents (reviewers of every spec that names none), block_on, independence, budget, retries."""
    raw = _table(p, data, "review", {"agents": STRINGS, "block_on": STRING, "independence": STRING,
                                     "budget": NUMBER, "retries": NUMBER})
    for j, name in enumerate(raw.get("agents", ())):
        if name not in agents:
            p.add(("review", "agents", j), f"unknown agent {name!r}", closest(name, agents))
    if "block_on" in raw and raw["block_on"] not in PRIORITIES:
        p.add(("review", "block_on"), f"invalid block_on {raw['block_on']!r}: expected one of "
              f"{', '.join(PRIORITIES)} (findings at or above it request changes)", closest(raw["block_on"], PRIORITIES))
    if "independence" in raw and raw["independence"] not in INDEPENDENCE:
        p.add(("review", "independence"), f"invalid independence {raw['independence']!r}: expected one of "
              f"{', '.join(INDEPENDENCE)}", closest(raw["independence"], INDEPENDENCE))
    if "budget" in raw and not (isinstance(raw["budget"], int) and raw["budget"] >= 1000):
        p.add(("review", "budget"), f"must be a whole number of tokens, at least 1000, got {raw['budget']}")
    if "retries" in raw and not (isinstance(raw["retries"], int) and 0 <= raw["retries"] <= 5):
        p.add(("review", "retries"), f"must be a whole number from 0 to 5, got {raw['retries']}")
    values = {key: raw[key] for key in ("block_on", "independence", "budget", "retries") if key in raw}
    return ReviewPolicy(agents=tuple(raw.get("agents", ())), **values)


def _reviewers(p: Problems, agents: list[Agent], specs: list[Spec], review: ReviewPolicy, data: dict,
               documents: list[SpecDocument]) -> None:
    """Reviewers have role "review" and are independent of the authors they review, as [review] asks."""
    by_name = {a.name: a for a in agents}
    for j, name in enumerate(review.agents):
        _reviewer_role(p, ("review", "agents", j), by_name, name)
    tables = [(p, ("specs", i), raw, next((s for s in specs if s.id == raw.get("id")), None))
              for i, raw in _tables_quiet(data, "specs")]
    tables += [(document.problems, (), document.raw, document.spec) for document in documents]
    for where, at, raw, spec_ in tables:
        for j, name in enumerate(raw.get("review") or ()):
            if isinstance(name, str):
                _reviewer_role(where, (*at, "review", j), by_name, name)
        if spec_ is not None:
            _independence(p, where, at, spec_, agents, by_name, review)


def _reviewer_role(p: Problems, at: KeyPath, by_name: dict[str, Agent], name: str) -> None:
    """Report a reviewer named at `at` that is an agent without role "review"."""
    if name in by_name and by_name[name].role != "review":
        p.add(at, f"agent {name!r} reviews but has no role = \"review\" (a reviewer only reads; give it the role)")


def _independence(score: Problems, where: Problems, at: KeyPath, spec_: Spec, agents: list[Agent],
                  by_name: dict[str, Agent], review: ReviewPolicy) -> None:
    """The spec's authors write and its reviewers are independent of them; a problem with [review] agents
    is reported in the score, one with the spec's own reviewers where the spec is (where, at)."""
    authors = [by_name[n] for n in spec_.agents if n in by_name] if spec_.agents else \
        [a for a in agents if a.role != "review"]
    part_authors = dict.fromkeys(n for part in spec_.parts for n in part.agents if n in by_name)  # parts write too
    authors += [by_name[n] for n in part_authors if by_name[n] not in authors]
    reviewers = [by_name[n] for n in (spec_.review or review.agents) if n in by_name]
    target, key = (where, (*at, "review")) if spec_.review else (score, ("review", "agents"))
    label = f"spec {spec_.id!r}" + (f" ({spec_.source})" if spec_.source and not spec_.review else "")
    for author in authors:
        if author.role == "review":
            where.add((*at, "agents"), f"agent {author.name!r} has role \"review\": it reviews, it does not write")
        for reviewer in reviewers:
            problem = independence_problem(author, reviewer, review.independence)
            if problem:
                target.add(key, f"{label}: {problem}")


def independence_problem(author: Agent, reviewer: Agent, independence: str) -> str | None:
    """Why reviewer may not review author's work under [review] independence, or None."""
    if independence == "none":
        return None
    if author.name == reviewer.name:
        return f"agent {author.name!r} would review its own work"
    maker, critic = agent_vendor(author.__dict__), agent_vendor(reviewer.__dict__)
    if independence == "provider" and maker is not None and maker == critic:
        return (f"reviewer {reviewer.name!r} and author {author.name!r} both use {maker} models; [review] "
                "independence = \"provider\" asks for a second opinion from another maker (pick a reviewer of "
                "another provider, or set independence = \"model\" or \"none\")")
    if independence == "model" and author.model and author.model == reviewer.model:
        return (f"reviewer {reviewer.name!r} and author {author.name!r} use the same model {author.model!r}; "
                "[review] independence = \"model\" asks for another model")
    return None


def _tables_quiet(data: dict, key: str) -> list[tuple[int, dict]]:
    raw = data.get(key, [])
    return [(i, item) for i, item in enumerate(raw) if isinstance(item, dict)] if isinstance(raw, list) else []


def _read_paths(p: Problems, sandbox: dict) -> None:
    """[sandbox] read: absolute paths or ~/..., without '..' (what agents may read besides the system)."""
    for j, path in enumerate(sandbox.get("read", ())):
        if not (path.startswith("/") or path.startswith("~/")) or ".." in path.split("/"):
            p.add(("sandbox", "read", j), f"{path!r}: give an absolute path or one under ~/, without '..'")


def _paths_with_nul(data: dict) -> list[KeyPath]:
    """Key paths of every key or string value holding a NUL character (walked without recursion)."""
    found: list[KeyPath] = []
    stack: list[tuple[KeyPath, Any]] = [((), data)]
    while stack:
        at, value = stack.pop()
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, item in items:
            if isinstance(key, str) and "\0" in key or isinstance(item, str) and "\0" in item:
                found.append((*at, key))
            elif isinstance(item, dict | list):
                stack.append(((*at, key), item))
    return found


def _keymap(p: Problems, raw: Any) -> dict[str, str]:
    """Binding id -> keys string; the ids are the UI's business, so any id is accepted here."""
    if not isinstance(raw, dict):
        p.add(("keymap",), f"expected table, got {type_name(raw)}")
        return {}
    good = p.fields(raw, ("keymap",), {binding: STRING for binding in raw})
    for binding in good:
        non_empty(p, good, ("keymap",), binding)
    return good


