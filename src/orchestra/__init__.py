"""orchestra: a terminal fleet commander for AI coding agents."""

__version__ = "0.1.0"
