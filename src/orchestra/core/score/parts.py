"""Validating the score's repeated parts: agents, specs and their verify checks."""

from __future__ import annotations

from typing import Any

from orchestra.core.base.globs import repository_glob_problem
from orchestra.core.score.locate import ARRAY, BOOL, NUMBER, STRING, STRINGS, KeyPath, Problems, closest
from orchestra.core.score.locate import ValueType, type_name
from orchestra.core.score.model import (AUTONOMY, BETTER, ENV_NAME, HOST_NAME, KINDS, NAME, NETWORK, PRESETS, ROLES,
                                        Agent, Check)
from orchestra.core.score.model import Part, Spec
from orchestra.core.score.names import check_name_problem, derived_check_name, too_long

AGENT_FIELDS = {"name": STRING, "kind": STRING, "command": STRING, "preset": STRING,
                 "model": STRING, "role": STRING, "timeout": NUMBER, "api_base": STRING,
                 "api_key_env": STRING, "max_turns": NUMBER, "max_tokens": NUMBER, "max_cost": NUMBER,
                 "request_timeout": NUMBER, "network": STRING, "env": STRINGS, "session": STRING,
                 "host": STRING}
# A spec's parts: [[specs.parts]] in orchestra.toml, [[parts]] in a spec file.
PART_TABLES: ValueType = ("array of tables ([[specs.parts]], or [[parts]] in a spec file)",
                          lambda v: isinstance(v, list))
SPEC_FIELDS = {"id": STRING, "intent": STRING, "allow": STRINGS, "deny": STRINGS,
               "verify": ARRAY, "agents": STRINGS, "env": STRINGS, "setup": STRINGS, "review": STRINGS,
               "max_autonomy": STRING, "workflow": STRING, "draft": BOOL, "parts": PART_TABLES}
PART_FIELDS = {"id": STRING, "intent": STRING, "allow": STRINGS, "deny": STRINGS, "agents": STRINGS, "verify": ARRAY}
CHECK_FIELDS = {"name": STRING, "command": STRING, "junit": STRING, "timeout": NUMBER, "sarif": STRING,
                "coverage": STRING, "min_coverage": NUMBER, "min_changed_coverage": NUMBER,
                "max_coverage_drop": NUMBER, "benchmark": BOOL, "tolerance": NUMBER, "better": STRING,
                "prove": BOOL}
# The cli presets that can review without a human at the keyboard, and answer in JSON.
REVIEW_PRESETS = ("codex", "claude", "gemini")
_PERCENT_KEYS = ("min_coverage", "min_changed_coverage", "max_coverage_drop", "tolerance")
_REPORT_KEYS = ("junit", "sarif", "coverage")
# Keys each kind must not have; a key's allowed kinds are derived from this for messages.
_LLM_ONLY = ("max_turns", "max_tokens", "max_cost", "request_timeout")
_FORBIDDEN = {"shell": ("preset", "model", "api_base", "api_key_env", *_LLM_ONLY),
              "cli": _LLM_ONLY, "llm": ("command", "preset", "session")}
# How a shell or cli agent's turn runs: unattended to its end, or as the CLI's own session in a pseudo-terminal
# the conductor attaches to (the llm agent has no terminal session of its own).
SESSIONS = ("oneshot", "interactive")


def globs(p: Problems, values: dict, at: KeyPath, key: str) -> None:
    """Report each glob of values[key] that is broken, absolute or leaves the repository."""
    for j, pattern in enumerate(values.get(key, ())):
        problem = None if "\0" in pattern else repository_glob_problem(pattern)  # NUL: reported already
        if problem:
            p.add((*at, key, j), f"glob {pattern!r} {problem}")


def env_names(p: Problems, values: dict, at: KeyPath) -> None:
    """Report each entry of values["env"] that does not name an environment variable."""
    for j, name in enumerate(values.get("env", ())):
        if not ENV_NAME.fullmatch(name):
            p.add((*at, "env", j), f"{name!r} is not an environment variable's name (e.g. \"AWS_PROFILE\"); "
                                   "list names, never values")


def commands(p: Problems, values: dict, at: KeyPath, key: str) -> None:
    """Report each blank command of values[key]."""
    for j, command in enumerate(values.get(key, ())):
        if not command.strip():
            p.add((*at, key, j), "command must not be empty")


def non_empty(p: Problems, values: dict, at: KeyPath, key: str) -> None:
    """Report values[key] when it is a blank string."""
    if isinstance(values.get(key), str) and not values[key].strip():
        p.add((*at, key), "must not be empty")


def identifier(p: Problems, at: KeyPath, value: str, what: str, seen: dict[str, int] | None) -> None:
    """Check an agent name / spec id: length and pattern (it goes into branch names), uniqueness among seen
    (None: checked by the caller, as for spec files)."""
    long = too_long(what, value)
    if long:
        p.add(at, long)
    elif not NAME.fullmatch(value):
        p.add(at, f"invalid {what} {value!r}: use lower-case letters, digits, '-' and '_', "
                  "starting with a letter or digit")
    if seen is None:
        return
    if value in seen:
        p.add(at, f"duplicate {what} {value!r} (first defined at {at[0]}[{seen[value]}])")
    else:
        seen[value] = at[1]  # type: ignore[assignment]


def agent(p: Problems, i: int, raw: dict, seen: dict[str, int]) -> Agent | None:
    """Validate agents[i]; its name joins seen even when the rest is broken."""
    at: KeyPath = ("agents", i)
    v = p.fields(raw, at, AGENT_FIELDS, ("name", "kind"))
    if "name" in v:
        identifier(p, (*at, "name"), v["name"], "agent name", seen)
    kind = v.get("kind")
    if kind is not None and kind not in KINDS:
        p.add((*at, "kind"), f"invalid kind {kind!r}: expected one of {', '.join(KINDS)}",
              closest(kind, KINDS))
        kind = None
    if kind is not None:
        _kind_rules(p, at, kind, v)
    for key in ("command", "model"):
        non_empty(p, v, at, key)
    positive(p, v, at, "timeout")
    positive(p, v, at, "request_timeout")
    for key in ("max_turns", "max_tokens"):
        if key in v and not (isinstance(v[key], int) and v[key] > 0):
            p.add((*at, key), f"must be a positive whole number, got {v[key]}")
    if "max_cost" in v and not v["max_cost"] > 0:
        p.add((*at, "max_cost"), f"must be a positive amount of US dollars, got {v['max_cost']}")
    env = v.get("api_key_env")
    if env is not None and not ENV_NAME.fullmatch(env):
        p.add((*at, "api_key_env"), "must name an environment variable (e.g. OPENAI_API_KEY), "
                                    "not hold the key itself")
    if "network" in v and v["network"] not in NETWORK:
        p.add((*at, "network"), f"invalid network {v['network']!r}: expected \"on\" or \"off\"",
              closest(v["network"], NETWORK))
    env_names(p, v, at)
    _session_rules(p, at, v)
    host = v.get("host")
    if host is not None and not HOST_NAME.fullmatch(host):
        p.add((*at, "host"), f"host {host!r} is not a host's name: lower-case letters, digits, '-' and '_' (the hosts "
                             "themselves are in your settings file, [[hosts]])")
    role = v.get("role")
    if role is not None and role not in ROLES:
        p.add((*at, "role"), f"invalid role {role!r}: expected one of {', '.join(ROLES)}", closest(role, ROLES))
    if role == "review" and kind == "cli" and v.get("preset") not in (*REVIEW_PRESETS, None):
        p.add((*at, "preset"), f"preset {v['preset']!r} cannot review without a human at the keyboard: a reviewer "
                               f"is an llm agent, a shell command, or one of the presets {', '.join(REVIEW_PRESETS)}")
    if "name" not in v or kind is None:
        return None
    numbers = {key: float(v[key]) for key in ("timeout", "request_timeout", "max_cost") if key in v}
    return Agent(**{**v, **numbers, "env": tuple(v.get("env", ()))})


def _session_rules(p: Problems, at: KeyPath, v: dict[str, Any]) -> None:
    """session is one of SESSIONS; a reviewer answers unattended, so it cannot be interactive."""
    session = v.get("session")
    if session is not None and session not in SESSIONS:
        p.add((*at, "session"), f"invalid session {session!r}: expected \"oneshot\" (one unattended turn) or "
                                "\"interactive\" (the CLI's own session, which you attach to)",
              closest(session, SESSIONS))
    elif session == "interactive" and v.get("role") == "review":
        p.add((*at, "session"), "a reviewer answers without a human at the keyboard: its session must be \"oneshot\"")


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


def positive(p: Problems, v: dict[str, Any], at: KeyPath, key: str) -> None:
    """Report a number that is not greater than zero."""
    if key in v and not v[key] > 0:
        p.add((*at, key), f"must be a positive number of seconds, got {v[key]}")


def spec(p: Problems, i: int, raw: dict, agents: dict[str, int],
          seen: dict[str, int]) -> Spec | None:
    """Validate specs[i] against the known agent names."""
    return spec_table(p, ("specs", i), raw, agents, seen)


def spec_table(p: Problems, at: KeyPath, raw: dict, agents: dict[str, int], seen: dict[str, int] | None,
               required: tuple[str, ...] = ("id", "intent")) -> Spec | None:
    """Validate one spec's table at `at` (() for a spec file's top level) against the known agent names."""
    v = p.fields(raw, at, SPEC_FIELDS, required)
    if "id" in v:
        identifier(p, (*at, "id"), v["id"], "spec id", seen)
    non_empty(p, v, at, "intent")
    known_agents(p, v, at, "agents", agents)
    known_agents(p, v, at, "review", agents)
    parts = spec_parts(p, at, v["parts"], agents) if "parts" in v else ()
    globs(p, v, at, "allow")
    globs(p, v, at, "deny")
    checks = verify_checks(p, v.get("verify", []), (*at, "verify"))
    env_names(p, v, at)
    commands(p, v, at, "setup")
    if "max_autonomy" in v and v["max_autonomy"] not in AUTONOMY:
        p.add((*at, "max_autonomy"), f"invalid max_autonomy {v['max_autonomy']!r}: expected one of "
              f"{', '.join(AUTONOMY)} (it can only lower what a human grants)", closest(v["max_autonomy"], AUTONOMY))
    if "id" not in v or "intent" not in v:
        return None
    return Spec(id=v["id"], intent=v["intent"], allow=tuple(v.get("allow", ())),
                deny=tuple(v.get("deny", ())), verify=checks, agents=tuple(v.get("agents", ())),
                env=tuple(v.get("env", ())), setup=tuple(v.get("setup", ())), review=tuple(v.get("review", ())),
                max_autonomy=v.get("max_autonomy", "auto"), workflow=v.get("workflow"), draft=v.get("draft", False),
                parts=parts)


def known_agents(p: Problems, values: dict, at: KeyPath, key: str, agents: dict[str, int]) -> None:
    """Report each name of values[key] that is not an agent of the score."""
    for j, name in enumerate(values.get(key, ())):
        if name not in agents:
            p.add((*at, key, j), f"unknown agent {name!r}", closest(name, agents))


def spec_parts(p: Problems, at: KeyPath, items: list, agents: dict[str, int]) -> tuple[Part, ...]:
    """Validate a spec's parts: each a table, its id a name unique within the spec."""
    header = "[[parts]]" if at == () else "[[specs.parts]]"
    if not items:
        p.add((*at, "parts"), f"is empty: give each part as a {header} table, or leave parts out")
    seen: dict[str, int] = {}
    found = []
    for k, item in enumerate(items):
        if not isinstance(item, dict):
            p.add((*at, "parts", k), f"expected table ({header}), got {type_name(item)}")
            continue
        part = spec_part(p, (*at, "parts", k), item, agents, seen)
        if part is not None:
            found.append(part)
    return tuple(found)


def spec_part(p: Problems, at: KeyPath, raw: dict, agents: dict[str, int], seen: dict[str, int]) -> Part | None:
    """Validate one part's table (id, intent, allow, deny, agents, verify); its id joins seen."""
    v = p.fields(raw, at, PART_FIELDS, ("id", "intent"))
    if "id" in v:
        identifier(p, (*at, "id"), v["id"], "part id", None)
        if v["id"] in seen:
            p.add((*at, "id"), f"duplicate part id {v['id']!r} (first defined at parts[{seen[v['id']]}])")
        seen.setdefault(v["id"], int(at[-1]))
    non_empty(p, v, at, "intent")
    known_agents(p, v, at, "agents", agents)
    globs(p, v, at, "allow")
    globs(p, v, at, "deny")
    checks = verify_checks(p, v.get("verify", []), (*at, "verify"))
    if "id" not in v or "intent" not in v:
        return None
    return Part(id=v["id"], intent=v["intent"], allow=tuple(v.get("allow", ())), deny=tuple(v.get("deny", ())),
                agents=tuple(v.get("agents", ())), verify=checks)


def verify_checks(p: Problems, items: list, at: KeyPath) -> tuple[Check, ...]:
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
        v = p.fields(item, (*at, j), CHECK_FIELDS, ("command",))
        non_empty(p, v, (*at, j), "command")
        non_empty(p, v, (*at, j), "name")
        positive(p, v, (*at, j), "timeout")
        _evidence_rules(p, v, (*at, j))
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


def _evidence_rules(p: Problems, v: dict[str, Any], at: KeyPath) -> None:
    """A check's report paths, percentages and comparisons make sense together."""
    for key in _REPORT_KEYS:
        non_empty(p, v, at, key)
        if v.get(key, "").startswith("/") or ".." in v.get(key, "").split("/"):
            p.add((*at, key), f"{v[key]!r}: give a path inside the worktree, relative to its root")
    for key in _PERCENT_KEYS:
        if key in v and not 0 <= v[key] <= 100:
            p.add((*at, key), f"must be a percentage from 0 to 100, got {v[key]}")
    for key in ("min_coverage", "min_changed_coverage", "max_coverage_drop"):
        if key in v and "coverage" not in v:
            p.add((*at, key), f"{key!r} needs 'coverage': the path of the coverage report the command writes")
    if "better" in v and v["better"] not in BETTER:
        p.add((*at, "better"), f"invalid better {v['better']!r}: expected \"lower\" or \"higher\"",
              closest(v["better"], BETTER))
    for key in ("tolerance", "better"):
        if key in v and not v.get("benchmark"):
            p.add((*at, key), f"{key!r} is for benchmark checks: add benchmark = true")
    if v.get("benchmark") and v.get("prove"):
        p.add((*at, "prove"), "a benchmark proves nothing by failing on the base: use prove on a test check")


def _named_check(v: dict[str, Any], taken: dict[str, int]) -> Check:
    """Build a Check, deriving and reserving a unique name when none was given."""
    name = v.get("name")
    if name is None:
        name = derived_check_name(v["command"], taken)
        taken[name] = -1
    extras = {key: v[key] for key in ("sarif", "coverage", "benchmark", "better", "prove") if key in v}
    extras.update({key: float(v[key]) for key in _PERCENT_KEYS if key in v})
    return Check(name=name, command=v["command"], junit=v.get("junit"),
                 timeout=float(v.get("timeout", 600.0)), **extras)
