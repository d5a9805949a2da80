"""The use-cases the UI and the CLI both call: spawn, decide, stop, and recovery of interrupted decisions."""

from orchestra.core.fleet.fleet import Fleet

__all__ = ["Fleet"]
