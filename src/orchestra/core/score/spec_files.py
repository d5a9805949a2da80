"""Specs in files of their own: `specs/*.toml` next to orchestra.toml, one spec per file.

A spec file's top-level keys are those of a `[[specs]]` table; its `id` may be left out and is then the
file's name without `.toml`; an id that differs from it is an error, so a spec is found by its file name.
The files are read in sorted name order after orchestra.toml's own specs; names that do not end in `.toml`,
and names starting with a dot (editors' lock and backup files), are ignored. Each file is validated with the
rules of an inline spec, its problems located in it, and an id defined twice is reported with both places.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

from orchestra.core.score.document import decode, parse_toml, read_bytes
from orchestra.core.score.locate import ConfigError, ConfigProblem, LineIndex, Problems
from orchestra.core.score.model import NAME, Spec
from orchestra.core.score.names import too_long
from orchestra.core.score.parts import spec_table

SPEC_DIR = "specs"


@dataclass(frozen=True)
class SpecFile:
    """One spec file as read: its path, its name relative to the score's directory, its bytes' sha256 and
    its parsed tables, or the error that kept it from being read or parsed."""

    path: Path
    source: str
    sha256: str = ""
    tables: dict | None = None
    text: str = ""
    index: LineIndex | None = None
    error: ConfigError | None = None


@dataclass
class SpecDocument:
    """A spec file being validated: where its problems go, its raw table and (when valid) its spec."""

    file: SpecFile
    problems: Problems
    raw: dict
    spec: Spec | None = None


def spec_file_paths(score_path: Path) -> list[Path]:
    """The spec files next to the score, in sorted name order; [] when there is no specs directory."""
    folder = Path(score_path).parent / SPEC_DIR
    try:
        names = sorted(entry.name for entry in folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as err:
        raise ConfigError(folder, f"cannot read directory: {err.strerror or err}") from None
    return [folder / name for name in names if name.endswith(".toml") and not name.startswith(".")]


def read_spec_files(score_path: Path) -> list[SpecFile]:
    """Every spec file next to the score, read and parsed (or with its error)."""
    return [read_spec_file(path) for path in spec_file_paths(score_path)]


def read_spec_file(path: Path) -> SpecFile:
    """One spec file, read and parsed; its error instead when it is unreadable, not UTF-8 or not TOML."""
    try:
        data = read_bytes(path)
    except ConfigError as error:
        return SpecFile(path, f"{SPEC_DIR}/{path.name}", error=error)
    return spec_file_of(path, data)


def spec_file_of(path: Path, data: bytes) -> SpecFile:
    """The spec file path would be with these bytes, parsed (or with its error); it need not exist yet."""
    source = f"{SPEC_DIR}/{path.name}"
    try:
        text = decode(path, data)
        tables, index = parse_toml(text, path)
    except ConfigError as error:
        return SpecFile(path, source, error=error)
    return SpecFile(path, source, hashlib.sha256(data).hexdigest(), tables, text, index)


def read_problems(files: list[SpecFile]) -> list[ConfigProblem]:
    """The problems of the spec files that could not be read or parsed."""
    return [problem for file in files if file.error for problem in file.error.problems]


def validate_spec_files(files: list[SpecFile], agents: dict[str, int],
                        places: dict[str, str]) -> list[SpecDocument]:
    """Validate each readable spec file against the agents; places maps the ids defined so far to where
    (it gains each file's id), so a duplicate names both places."""
    documents = []
    for file in files:
        if file.tables is None:
            continue
        document = SpecDocument(file, Problems(file.path, file.text, file.index), file.tables)
        document.spec = _file_spec(document, agents, places)
        documents.append(document)
    return documents


def _file_spec(document: SpecDocument, agents: dict[str, int], places: dict[str, str]) -> Spec | None:
    """The spec of one file, its id defaulting to the file's name; None when it is broken."""
    p, raw, file = document.problems, document.raw, document.file
    stem = file.path.name[: -len(".toml")]
    if "specs" in raw:
        p.add(("specs",), "a spec file holds one spec: write its keys (id, intent, ...) at the top level, "
                          "without [[specs]]")
        return None
    if isinstance(raw.get("id"), str) and raw["id"] != stem:
        p.add(("id",), f"id {raw['id']!r} does not match the file's name {stem + '.toml'!r}: leave id out (the "
                       f"file's name is the id), or rename the file to {raw['id'] + '.toml'!r}")
    if "id" not in raw and (too_long("spec id", stem) or not NAME.fullmatch(stem)):
        p.add((), f"the file's name {stem!r} is not a valid spec id (lower-case letters, digits, '-' and '_', "
                  "starting with a letter or digit): rename the file, e.g. fix-login.toml")
        return None
    spec = spec_table(p, (), {"id": stem, **raw}, agents, None, required=("intent",))
    if spec is None:
        return None
    if spec.id in places:
        p.add(("id",) if "id" in raw else (), f"duplicate spec id {spec.id!r}: also defined at {places[spec.id]}")
        return None
    line = document.problems.index.find(("id",)) if "id" in raw and document.problems.index else None
    places[spec.id] = f"{file.source}:{line}" if line else file.source
    return replace(spec, source=file.source, source_sha256=file.sha256)
