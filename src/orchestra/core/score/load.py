"""The score: the parsed, validated `orchestra.toml` at a repository root, as frozen dataclasses.

Validation collects every problem (unknown keys, wrong types, bad references, ...) before raising
a single ConfigError, so a user fixes a broken file in one pass; no partial Score is ever returned.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from orchestra.core.base.canonical import content_hash
from orchestra.core.base.globs import repository_glob_problem
from orchestra.core.score.locate import ARRAY, NUMBER, STRING, STRINGS, ConfigError, ConfigProblem
from orchestra.core.score.locate import KeyPath, LineIndex, Problems, ValueType, closest, nesting_error
from orchestra.core.score.locate import syntax_error, type_name
from orchestra.core.score.names import check_name_problem, derived_check_name, too_long
from orchestra.core.score.starter import STARTER_TOML

__all__ = [
    "DEFAULT_DISPOSABLE", "KINDS", "PRESETS", "STARTER_TOML", "Agent", "Check", "ConfigError",
    "ConfigProblem", "Score", "Spec", "load_score", "parse_score",
]

KINDS = ("shell", "cli", "llm")
PRESETS = ("claude", "codex", "aider", "gemini", "opencode")
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
# Ignored files that may be deleted with a run's worktree: dependency and build caches, aider's history.
DEFAULT_DISPOSABLE = (
    "node_modules/", ".venv/", "venv/", "__pycache__/", "*.pyc", ".pytest_cache/", ".mypy_cache/",
    ".ruff_cache/", ".tox/", ".nox/", ".gradle/", ".next/", ".cache/", "*.egg-info/", ".coverage",
    ".DS_Store", ".aider*",
)


@dataclass(frozen=True)
class Check:
    """One verify command; `junit` is a report path the command writes, relative to the worktree."""

    name: str
    command: str
    junit: str | None = None
    timeout: float = 600.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of all fields."""
        return {"name": self.name, "command": self.command, "junit": self.junit,
                "timeout": self.timeout}


@dataclass(frozen=True)
class Agent:
    """One agent of the fleet; `timeout` is the seconds it may work before it is stopped."""

    name: str
    kind: str
    command: str | None = None
    preset: str | None = None
    model: str | None = None
    role: str | None = None
    timeout: float = 3600.0
    api_base: str | None = None
    api_key_env: str | None = None
    # llm agents: the budget that ends a run (None: no limit but the timeout) and one request's timeout.
    max_turns: int = 50
    max_tokens: int | None = None
    max_cost: float | None = None
    request_timeout: float = 120.0


@dataclass(frozen=True)
class Spec:
    """One piece of work: what to do, which paths may change, how to verify it, who does it."""

    id: str
    intent: str
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    verify: tuple[Check, ...] = ()
    agents: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of all fields, checks as dicts and tuples as lists."""
        return {
            "id": self.id, "intent": self.intent, "allow": list(self.allow),
            "deny": list(self.deny), "verify": [check.to_dict() for check in self.verify],
            "agents": list(self.agents),
        }

    def content_hash(self) -> str:
        """sha256 hex of the canonical JSON of to_dict() (sorted keys, compact separators)."""
        return content_hash(self.to_dict())


@dataclass(frozen=True)
class Score:
    """A whole orchestra.toml; `target` None means the caller should use the current branch.

    `disposable` holds globs of ignored files that may be deleted along with a run's worktree.
    """

    path: Path | None = None
    target: str | None = None
    agents: tuple[Agent, ...] = ()
    specs: tuple[Spec, ...] = ()
    keymap: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    theme: str | None = None
    disposable: tuple[str, ...] = DEFAULT_DISPOSABLE

    def agent(self, name: str) -> Agent:
        """The agent called name; KeyError if there is none."""
        for agent in self.agents:
            if agent.name == name:
                return agent
        raise KeyError(name)

    def spec(self, spec_id: str) -> Spec:
        """The spec with this id; KeyError if there is none."""
        for spec in self.specs:
            if spec.id == spec_id:
                return spec
        raise KeyError(spec_id)

    def agents_for(self, spec: Spec) -> tuple[Agent, ...]:
        """The agents spec names, in its order, or every agent when it names none."""
        return tuple(self.agent(name) for name in spec.agents) if spec.agents else self.agents


def load_score(path: Path) -> Score:
    """Read and validate the score at path; ConfigError for a missing/unreadable file too."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # tolerate a BOM
    except FileNotFoundError:
        raise ConfigError(path, "file not found (`orchestra init` writes a starter)") from None
    except IsADirectoryError:
        raise ConfigError(path, "is a directory, not a file") from None
    except UnicodeDecodeError as err:
        raise ConfigError(path, f"not valid UTF-8 text ({err.reason})") from None
    except OSError as err:
        raise ConfigError(path, f"cannot read file: {err.strerror or err}") from None
    return parse_score(text, path)


def parse_score(text: str, path: Path) -> Score:
    """Parse and validate score text; path is only used for messages and Score.path."""
    index = LineIndex(text)
    if index.too_deep:  # refused before tomllib, whose parser recurses
        raise nesting_error(path, index)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise syntax_error(path, text, err) from None
    except RecursionError:  # nesting the line index could not read
        raise nesting_error(path, None) from None
    problems = Problems(path, text, index)
    score = _build(problems, data, path)
    problems.raise_if_any()
    return score


_TOP = ("orchestra", "ui", "keymap", "agents", "specs")
_AGENT_FIELDS = {"name": STRING, "kind": STRING, "command": STRING, "preset": STRING,
                 "model": STRING, "role": STRING, "timeout": NUMBER, "api_base": STRING,
                 "api_key_env": STRING, "max_turns": NUMBER, "max_tokens": NUMBER, "max_cost": NUMBER,
                 "request_timeout": NUMBER}
_SPEC_FIELDS = {"id": STRING, "intent": STRING, "allow": STRINGS, "deny": STRINGS,
                "verify": ARRAY, "agents": STRINGS}
_CHECK_FIELDS = {"name": STRING, "command": STRING, "junit": STRING, "timeout": NUMBER}
# Keys each kind must not have; a key's allowed kinds are derived from this for messages.
_LLM_ONLY = ("max_turns", "max_tokens", "max_cost", "request_timeout")
_FORBIDDEN = {"shell": ("preset", "model", "api_base", "api_key_env", *_LLM_ONLY),
              "cli": _LLM_ONLY, "llm": ("command", "preset")}


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


def _build(p: Problems, data: dict, path: Path) -> Score:
    """Validate parsed TOML into a Score; meaningful only when p stays empty."""
    for key, value in data.items():
        if key not in _TOP:
            what = "table" if isinstance(value, dict | list) else "key"
            p.add((key,), f"unknown {what} {key!r}", closest(key, _TOP))
    for at in _paths_with_nul(data):
        p.add(at, "contains a NUL character (\\u0000)")
    orchestra = _table(p, data, "orchestra", {"target": STRING, "disposable": STRINGS})
    _non_empty(p, orchestra, ("orchestra",), "target")
    _globs(p, orchestra, ("orchestra",), "disposable")
    ui = _table(p, data, "ui", {"theme": STRING})
    keymap = _keymap(p, data.get("keymap", {}))
    seen: dict[str, int] = {}
    agents = [_agent(p, i, raw, seen) for i, raw in _tables(p, data, "agents")]
    seen_specs: dict[str, int] = {}
    specs = [_spec(p, i, raw, seen, seen_specs) for i, raw in _tables(p, data, "specs")]
    return Score(
        path=path, target=orchestra.get("target"), theme=ui.get("theme"),
        agents=tuple(a for a in agents if a), specs=tuple(s for s in specs if s),
        keymap=MappingProxyType(dict(keymap)),
        disposable=tuple(orchestra.get("disposable", DEFAULT_DISPOSABLE)),
    )


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


def _globs(p: Problems, values: dict, at: KeyPath, key: str) -> None:
    """Report each glob of values[key] that is broken, absolute or leaves the repository."""
    for j, pattern in enumerate(values.get(key, ())):
        problem = None if "\0" in pattern else repository_glob_problem(pattern)  # NUL: reported already
        if problem:
            p.add((*at, key, j), f"glob {pattern!r} {problem}")


def _keymap(p: Problems, raw: Any) -> dict[str, str]:
    """Binding id -> keys string; the ids are the UI's business, so any id is accepted here."""
    if not isinstance(raw, dict):
        p.add(("keymap",), f"expected table, got {type_name(raw)}")
        return {}
    good = p.fields(raw, ("keymap",), {binding: STRING for binding in raw})
    for binding in good:
        _non_empty(p, good, ("keymap",), binding)
    return good


def _non_empty(p: Problems, values: dict, at: KeyPath, key: str) -> None:
    """Report values[key] when it is a blank string."""
    if isinstance(values.get(key), str) and not values[key].strip():
        p.add((*at, key), "must not be empty")


def _identifier(p: Problems, at: KeyPath, value: str, what: str, seen: dict[str, int]) -> None:
    """Check an agent name / spec id: length and pattern (it goes into branch names), uniqueness."""
    long = too_long(what, value)
    if long:
        p.add(at, long)
    elif not _NAME.fullmatch(value):
        p.add(at, f"invalid {what} {value!r}: use lower-case letters, digits, '-' and '_', "
                  "starting with a letter or digit")
    if value in seen:
        p.add(at, f"duplicate {what} {value!r} (first defined at {at[0]}[{seen[value]}])")
    else:
        seen[value] = at[1]  # type: ignore[assignment]


def _agent(p: Problems, i: int, raw: dict, seen: dict[str, int]) -> Agent | None:
    """Validate agents[i]; its name joins seen even when the rest is broken."""
    at: KeyPath = ("agents", i)
    v = p.fields(raw, at, _AGENT_FIELDS, ("name", "kind"))
    if "name" in v:
        _identifier(p, (*at, "name"), v["name"], "agent name", seen)
    kind = v.get("kind")
    if kind is not None and kind not in KINDS:
        p.add((*at, "kind"), f"invalid kind {kind!r}: expected one of {', '.join(KINDS)}",
              closest(kind, KINDS))
        kind = None
    if kind is not None:
        _kind_rules(p, at, kind, v)
    for key in ("command", "model"):
        _non_empty(p, v, at, key)
    _positive(p, v, at, "timeout")
    _positive(p, v, at, "request_timeout")
    for key in ("max_turns", "max_tokens"):
        if key in v and not (isinstance(v[key], int) and v[key] > 0):
            p.add((*at, key), f"must be a positive whole number, got {v[key]}")
    if "max_cost" in v and not v["max_cost"] > 0:
        p.add((*at, "max_cost"), f"must be a positive amount of US dollars, got {v['max_cost']}")
    env = v.get("api_key_env")
    if env is not None and not _ENV_NAME.fullmatch(env):
        p.add((*at, "api_key_env"), "must name an environment variable (e.g. OPENAI_API_KEY), "
                                    "not hold the key itself")
    if "name" not in v or kind is None:
        return None
    numbers = {key: float(v[key]) for key in ("timeout", "request_timeout", "max_cost") if key in v}
    return Agent(**{**v, **numbers})


def _kind_rules(p: Problems, at: KeyPath, kind: str, v: dict[str, Any]) -> None:
    """Which keys a shell, cli or llm agent needs and must not have."""
    for key in _FORBIDDEN[kind]:
        if key in v:
            allowed = " and ".join(k for k in KINDS if key not in _FORBIDDEN[k])
            article = "an" if kind == "llm" else "a"
            p.add((*at, key), f"{key!r} is not allowed for {article} {kind} agent "
                              f"(only {allowed} agents)")
    if kind == "shell" and "command" not in v:
        p.missing((*at, "command"), "missing required key 'command' (a shell agent runs it)")
    if kind == "llm" and "model" not in v:
        p.missing((*at, "model"), "missing required key 'model' (e.g. \"openai/gpt-4o\")")
    if kind == "cli" and "preset" not in v and "command" not in v:
        p.missing(at, f"a cli agent needs 'preset' ({', '.join(PRESETS)}) or 'command'",
                  (*at, "preset"), (*at, "command"))
    preset = v.get("preset")
    if kind == "cli" and preset is not None and preset not in PRESETS:
        p.add((*at, "preset"), f"invalid preset {preset!r}: expected one of {', '.join(PRESETS)}",
              closest(preset, PRESETS))


def _positive(p: Problems, v: dict[str, Any], at: KeyPath, key: str) -> None:
    """Report a number that is not greater than zero."""
    if key in v and not v[key] > 0:
        p.add((*at, key), f"must be a positive number of seconds, got {v[key]}")


def _spec(p: Problems, i: int, raw: dict, agents: dict[str, int],
          seen: dict[str, int]) -> Spec | None:
    """Validate specs[i] against the known agent names."""
    at: KeyPath = ("specs", i)
    v = p.fields(raw, at, _SPEC_FIELDS, ("id", "intent"))
    if "id" in v:
        _identifier(p, (*at, "id"), v["id"], "spec id", seen)
    _non_empty(p, v, at, "intent")
    for j, name in enumerate(v.get("agents", [])):
        if name not in agents:
            p.add((*at, "agents", j), f"unknown agent {name!r}", closest(name, agents))
    _globs(p, v, at, "allow")
    _globs(p, v, at, "deny")
    checks = _checks(p, v.get("verify", []), (*at, "verify"))
    if "id" not in v or "intent" not in v:
        return None
    return Spec(id=v["id"], intent=v["intent"], allow=tuple(v.get("allow", ())),
                deny=tuple(v.get("deny", ())), verify=checks, agents=tuple(v.get("agents", ())))


def _checks(p: Problems, items: list, at: KeyPath) -> tuple[Check, ...]:
    """Validate verify items; a bare string is named after its program, made unique with -2, -3."""
    drafts: list[dict[str, Any]] = []
    named: dict[str, int] = {}
    for j, item in enumerate(items):
        if isinstance(item, str) and not item.strip():
            p.add((*at, j), "command must not be empty")
            continue
        if isinstance(item, str):
            item = {"command": item}
        elif not isinstance(item, dict):
            p.add((*at, j), f"expected command string or table, got {type_name(item)}")
            continue
        v = p.fields(item, (*at, j), _CHECK_FIELDS, ("command",))
        _non_empty(p, v, (*at, j), "command")
        _non_empty(p, v, (*at, j), "name")
        _positive(p, v, (*at, j), "timeout")
        problem = check_name_problem(v["name"]) if v.get("name", "").strip() else None
        if problem:
            p.add((*at, j, "name"), problem)
        elif v.get("name") in named:
            first = f"{at[-1]}[{named[v['name']]}]"
            p.add((*at, j, "name"), f"duplicate check name {v['name']!r} (first at {first})")
        elif "name" in v:
            named[v["name"]] = j
        if v.get("command", "").strip():
            drafts.append(v)
    return tuple(_named_check(v, named) for v in drafts)


def _named_check(v: dict[str, Any], taken: dict[str, int]) -> Check:
    """Build a Check, deriving and reserving a unique name when none was given."""
    name = v.get("name")
    if name is None:
        name = derived_check_name(v["command"], taken)
        taken[name] = -1
    return Check(name=name, command=v["command"], junit=v.get("junit"),
                 timeout=float(v.get("timeout", 600.0)))
