"""A reply's usage and cost when the provider reports no token counts (in the agent process, with litellm)."""

from __future__ import annotations

import pytest

from orchestra.llm import model as model_module
from orchestra.llm.model import Model, ModelSettings, Reply


def make_model() -> Model:
    return Model(ModelSettings(model="openai/gpt-4o-mini", api_base="http://127.0.0.1:9"), on_text=lambda _t: None,
                 on_note=lambda _n: None)


def test_tokens_the_provider_did_not_report_are_counted_and_priced() -> None:
    reply = Reply(content="a short answer")
    make_model()._fill_usage(reply, [{"role": "user", "content": "a question"}])
    assert reply.prompt_tokens > 0 and reply.completion_tokens > 0
    assert reply.cost is not None and reply.cost > 0


def test_tokens_that_cannot_be_counted_leave_the_cost_unknown_not_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    def cannot_count(**_kwargs):
        raise ValueError("no tokenizer for this model")

    monkeypatch.setattr(model_module.litellm, "token_counter", cannot_count)
    reply = Reply(content="a short answer")
    make_model()._fill_usage(reply, [{"role": "user", "content": "a question"}])
    assert reply.cost is None
