"""An infra agent's own gates (see score.roles): what it changed, validated with the tool its kind needs.

`terraform`: `terraform init -backend=false` and `terraform validate` in each directory whose .tf files
changed, in the run's jail like any check, with terraform's data directory outside the worktree (nothing
is left in the candidate). Without terraform on the gates' PATH the gate says so: not validated is never
a pass. `infra-syntax`: each YAML and JSON file changed under infrastructure paths, read from the
candidate's tree (never through the worktree) and parsed; YAML needs PyYAML, and without it those files
are said not to be validated.
"""

from __future__ import annotations

import json
import shlex
import shutil
import time
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

from orchestra.core.git.diffs import files_at
from orchestra.core.runs.run import Gate
from orchestra.core.score.roles import is_infra_data

MAX_DATA_BYTES = 4 * 1024 * 1024  # a YAML or JSON file is parsed up to this size
TERRAFORM_TIMEOUT = 600.0
NOT_INSTALLED = "terraform not installed: not validated"


def terraform_dirs(changed_paths: list[str], worktree: Path) -> list[str]:
    """The directories (relative, "." for the root) holding changed .tf files that are still there."""
    dirs = dict.fromkeys(str(PurePosixPath(p).parent) for p in changed_paths if p.endswith(".tf"))
    return [d for d in dirs if (worktree / d).is_dir()]


def terraform_command(dirs: list[str]) -> str:
    """The shell command validating each directory: init's output only when it fails, each with a data
    directory of its own in a temporary directory that is removed."""
    steps = [f'echo "== {d}"; export TF_DATA_DIR="$tf/{n}"; '
             f'if out=$(terraform -chdir={d} init -backend=false -input=false -no-color -lockfile=readonly 2>&1); '
             f'then terraform -chdir={d} validate -no-color || status=1; else echo "$out"; status=1; fi'
             for n, d in enumerate(map(shlex.quote, dirs))]
    return ('tf=$(mktemp -d) && trap \'rm -rf "$tf"\' EXIT && export TF_IN_AUTOMATION=1 && status=0; '
            + "; ".join(steps) + "; exit $status")


def terraform_missing(path_variable: str | None, name: str, tree: str) -> Gate | None:
    """The gate saying terraform is not installed, when it is not on path_variable; None when it is."""
    if shutil.which("terraform", path=path_variable) is not None:
        return None
    return Gate(name=name, kind="command", status="error", tree=tree, started=time.time(), finished=time.time(),
                summary=NOT_INSTALLED)


def nothing_left(name: str, tree: str, what: str) -> Gate:
    """The gate of a validation with nothing to validate (the files it was for were removed)."""
    return Gate(name=name, kind="command", status="passed", tree=tree, started=time.time(), finished=time.time(),
                summary=f"nothing to validate: {what}")


def syntax_gate(name: str, git_dir: Path, tree: str, changed_paths: list[str]) -> Gate:
    """The gate parsing each YAML and JSON file changed under infrastructure paths (blocking: runs git)."""
    started = time.time()
    paths = tuple(p for p in changed_paths if is_infra_data(p))
    texts = files_at(git_dir, tree, paths, limit=MAX_DATA_BYTES) if paths else {}
    broken, unchecked = [], []
    for path, text in texts.items():
        problem = data_problem(path, text)
        if problem == _NO_YAML:
            unchecked.append(path)
        elif problem:
            broken.append(f"{path}: {problem}")
    gate = Gate(name=name, kind="command", tree=tree, started=started, finished=time.time(), failures=broken)
    checked = len(texts) - len(unchecked)
    if broken:
        gate.status, gate.summary = "failed", f"{len(broken)} of {len(texts)} file(s) do not parse"
    elif unchecked:
        gate.status = "error"
        gate.summary = f"PyYAML not installed: {len(unchecked)} YAML file(s) not validated ({checked} parsed)"
    else:
        gate.status, gate.summary = "passed", f"{checked} file(s) parse" if texts else "nothing to validate"
    return gate


_NO_YAML = "no yaml"


def data_problem(path: str, text: str) -> str | None:
    """Why text (the file at path) does not parse as its suffix says, or None when it does."""
    if path.endswith(".json"):
        try:
            json.loads(text)
        except ValueError as error:
            return str(error)[:200]
        return None
    try:
        import yaml
    except ImportError:
        return _NO_YAML
    try:
        for _ in yaml.load_all(text, Loader=_tag_tolerant_loader(yaml)):
            pass
    except yaml.YAMLError as error:
        return " ".join(str(error).split())[:200]
    return None


@lru_cache(maxsize=1)
def _tag_tolerant_loader(yaml: Any) -> type:
    """A safe loader that reads any local tag (CloudFormation's !Ref, Ansible's !vault) as no value."""
    loader = type("TagTolerantLoader", (yaml.SafeLoader,), {})
    loader.add_multi_constructor("!", lambda loader_, suffix, node: None)
    return loader
