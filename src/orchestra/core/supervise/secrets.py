"""Which values a run's supervisor keeps out of every file it writes, as one redactor."""

from __future__ import annotations

import os
from collections.abc import Mapping

from orchestra.core.base.redact import Redactor, is_credential_name, looks_secret, secret_values
from orchestra.core.runs.run import Run
from orchestra.core.agents.presets import KEY_NAMES


def secret_names(run: Run, environ: Mapping[str, str]) -> set[str]:
    """Provider keys orchestra knows of, the agent's api_key_env, the run's declared variables named like
    secrets, and every credential-named variable in orchestra's environment (GITHUB_TOKEN, AWS_…)."""
    config = run.agent_config
    names = {*KEY_NAMES, *(name for name in run.declared_env() if looks_secret(name))}
    if config.get("api_key_env"):
        names.add(config["api_key_env"])
    return names | {name for name in environ if is_credential_name(name)}


def run_redactor(run: Run, environ: Mapping[str, str] = os.environ) -> Redactor:
    """The redactor for everything written about run: each secret's value, marked with its name."""
    return Redactor(secret_values(environ, secret_names(run, environ)))
