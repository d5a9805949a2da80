"""The domain: score, worktrees, agents, gates, ledger and fleet. Never imports Textual, Rich or litellm."""
