"""Who makes an agent's model: the litellm provider of a model string, and the vendor behind an agent.

The vendor is what cross-model review is independent of: a Claude model reviewing what a Claude model
wrote is a second opinion from the same maker, whichever gateway (anthropic, bedrock, vertex_ai) served it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_BARE_MODELS = ((("gpt-", "o1", "o3", "o4", "chatgpt-", "codex-"), "openai"), (("claude",), "anthropic"),
                (("gemini",), "gemini"))
# The makers behind the presets' own CLIs (aider and opencode drive whichever model they are given).
PRESET_VENDORS = {"claude": "anthropic", "codex": "openai", "gemini": "google"}
# litellm providers (and model families inside gateways) → the maker of the model.
_VENDORS = {"openai": "openai", "azure": "openai", "azure_ai": "openai", "text-completion-openai": "openai",
            "anthropic": "anthropic", "claude": "anthropic", "gemini": "google", "vertex_ai": "google",
            "google": "google", "palm": "google", "mistral": "mistral", "codestral": "mistral",
            "cohere": "cohere", "groq": None, "together_ai": None, "openrouter": None, "bedrock": None,
            "deepseek": "deepseek", "xai": "xai", "grok": "xai", "llama": "meta", "meta": "meta",
            "qwen": "alibaba", "dashscope": "alibaba", "gpt": "openai", "o1": "openai", "o3": "openai",
            "o4": "openai"}


def model_provider(model: str | None) -> str | None:
    """The provider of a litellm-style model name: its prefix, or a guess from a well-known bare name."""
    if not model:
        return None
    if "/" in model:
        return model.split("/", 1)[0].lower()
    for prefixes, provider in _BARE_MODELS:
        if model.lower().startswith(prefixes):
            return provider
    return None


def model_vendor(model: str | None) -> str | None:
    """The maker of a model: the family its name says (bedrock/anthropic.claude-…, openrouter/meta-llama/…,
    openai/claude-… through a proxy), else its provider's; None when nothing tells."""
    if not model:
        return None
    parts = [part for part in model.lower().replace(".", "/").replace(":", "/").split("/") if part]
    for part in reversed(parts):
        head = part.split("-", 1)[0]
        letters = re.match(r"[a-z]*", head).group(0)  # qwen2 → qwen, llama3 → llama
        for word in (part, head, letters):
            if word in _VENDORS and _VENDORS[word] is not None:
                return _VENDORS[word]
    provider = model_provider(model)
    return _VENDORS.get(provider or "", None) if provider else None


def agent_vendor(agent: Mapping[str, Any]) -> str | None:
    """The maker of the model behind an agent (a score Agent's fields as a mapping); None for a plain
    command, or a CLI whose model is not named."""
    kind = agent.get("kind")
    if kind == "llm":
        return model_vendor(agent.get("model"))
    if kind == "cli":
        model_maker = model_vendor(agent.get("model"))
        return model_maker or PRESET_VENDORS.get(agent.get("preset") or "")
    return None
