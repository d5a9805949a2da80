"""The detached per-run supervisor, the agent's process group, its output and its activity."""
