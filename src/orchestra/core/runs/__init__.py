"""Runs: the record, the store on disk, the lifecycle (states and transitions) and the feed the UI follows."""
