"""Agent processes: code that runs in an agent's own process (litellm is imported only here)."""
