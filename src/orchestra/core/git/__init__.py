"""The one place that runs git: the runner, the repository, worktrees, merges, diffs and the actor."""
