"""Reviewers in the score: roles, independence, [review] settings, and how each kind of reviewer is run."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestra.core.agents.presets import PresetError, review_invocation
from orchestra.core.base.providers import agent_vendor, model_vendor
from orchestra.core.score import ConfigError, parse_score

AUTHOR = '[[agents]]\nname = "author"\nkind = "llm"\nmodel = "openai/gpt-4o"\n'
SPEC = '[[specs]]\nid = "fix"\nintent = "Fix it"\n'


def problems(text: str) -> str:
    with pytest.raises(ConfigError) as error:
        parse_score(text, Path("orchestra.toml"))
    return str(error.value)


def reviewer(**fields: str) -> str:
    body = "".join(f'{key} = "{value}"\n' for key, value in fields.items())
    return f'[[agents]]\nname = "critic"\n{body}'


@pytest.mark.parametrize(("model", "vendor"), [
    ("gpt-4o", "openai"), ("openai/gpt-4o", "openai"), ("azure/my-deployment", "openai"),
    ("anthropic/claude-sonnet-4-5", "anthropic"), ("bedrock/anthropic.claude-3-5-sonnet", "anthropic"),
    ("openai/claude-sonnet-4-5", "anthropic"), ("gemini/gemini-2.5-pro", "google"),
    ("vertex_ai/gemini-2.5-pro", "google"), ("openrouter/meta-llama/llama-3.3-70b", "meta"),
    ("mistral/codestral-latest", "mistral"), ("ollama/qwen2.5-coder", "alibaba"), ("my-local-model", None)])
def test_the_maker_of_a_model_is_read_from_its_name(model: str, vendor: str | None) -> None:
    assert model_vendor(model) == vendor


def test_a_cli_presets_maker_is_its_vendor_unless_its_model_says_otherwise() -> None:
    assert agent_vendor({"kind": "cli", "preset": "codex"}) == "openai"
    assert agent_vendor({"kind": "cli", "preset": "claude"}) == "anthropic"
    assert agent_vendor({"kind": "cli", "preset": "aider", "model": "gemini/gemini-2.5-pro"}) == "google"
    assert agent_vendor({"kind": "shell", "command": "x"}) is None


def test_a_spec_pairing_an_author_with_a_same_maker_reviewer_is_refused() -> None:
    text = AUTHOR + reviewer(kind="cli", preset="codex", role="review") + SPEC + 'review = ["critic"]\n'
    assert "both use openai models" in problems(text) and "specs[0].review" in problems(text)


def test_independence_model_accepts_another_model_of_the_same_maker_and_none_accepts_anything() -> None:
    text = AUTHOR + reviewer(kind="llm", model="openai/o3", role="review") + SPEC + 'review = ["critic"]\n'
    parse_score('[review]\nindependence = "model"\n' + text, Path("orchestra.toml"))
    parse_score('[review]\nindependence = "none"\n' + text, Path("orchestra.toml"))
    same = text.replace("openai/o3", "openai/gpt-4o")
    assert "same model" in problems('[review]\nindependence = "model"\n' + same)


def test_reviewers_need_the_review_role_and_a_preset_that_can_review() -> None:
    assert 'has no role = "review"' in problems(AUTHOR + reviewer(kind="llm", model="anthropic/claude-x")
                                                + SPEC + 'review = ["critic"]\n')
    assert "cannot review without a human" in problems(AUTHOR + reviewer(kind="cli", preset="aider", role="review")
                                                       + SPEC)
    assert "invalid role 'reviewer'" in problems(AUTHOR + reviewer(kind="llm", model="x/y", role="reviewer") + SPEC)
    assert "unknown agent 'critc'" in problems(AUTHOR + SPEC + 'review = ["critc"]\n')


def test_review_settings_are_checked() -> None:
    text = AUTHOR + reviewer(kind="llm", model="anthropic/claude-x", role="review") + SPEC
    found = problems('[review]\nagents = ["critic"]\nblock_on = "P5"\nindependence = "vendor"\nbudget = 10\n'
                     'retries = 9\n' + text)
    for expected in ("invalid block_on 'P5'", "invalid independence 'vendor'", "at least 1000", "from 0 to 5"):
        assert expected in found


def test_reviewers_are_not_authors_by_default_and_an_explicit_reviewer_author_is_refused() -> None:
    text = AUTHOR + reviewer(kind="llm", model="anthropic/claude-x", role="review") + SPEC
    score = parse_score('[review]\nagents = ["critic"]\n' + text, Path("orchestra.toml"))
    assert [a.name for a in score.agents_for(score.specs[0])] == ["author"]
    assert [a.name for a in score.reviewers_for(score.specs[0])] == ["critic"]
    assert "it reviews, it does not write" in problems(text + 'agents = ["critic"]\n')


@pytest.mark.parametrize(("preset", "flags"), [
    ("claude", ["-p", "--permission-mode", "plan", "--output-format", "json"]),
    ("codex", ["exec", "--sandbox", "read-only"]),
    ("gemini", ["--approval-mode", "default", "--output-format", "json"])])
def test_cli_reviewers_run_in_their_own_read_only_modes(preset: str, flags: list[str]) -> None:
    invocation = review_invocation({"name": "critic", "kind": "cli", "preset": preset}, "review this", {})
    argv = list(invocation.argv)
    assert argv[0] == preset and all(flag in argv for flag in flags) and argv[-1] == "review this"
    assert "acceptEdits" not in argv and "workspace-write" not in argv and "auto_edit" not in argv


def test_a_preset_that_cannot_review_is_refused_when_run() -> None:
    with pytest.raises(PresetError):
        review_invocation({"name": "critic", "kind": "cli", "preset": "aider"}, "x", {})
