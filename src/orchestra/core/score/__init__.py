"""The score: `orchestra.toml` read into frozen dataclasses; every error names file, line and key."""

from orchestra.core.score.load import (DEFAULT_DISPOSABLE, KINDS, PRESETS, STARTER_TOML, Agent, Check, ConfigError,
                                       ConfigProblem, Score, Spec, load_score, parse_score)

__all__ = ["DEFAULT_DISPOSABLE", "KINDS", "PRESETS", "STARTER_TOML", "Agent", "Check", "ConfigError",
           "ConfigProblem", "Score", "Spec", "load_score", "parse_score"]
