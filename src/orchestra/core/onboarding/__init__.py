"""First contact: `orchestra doctor` and `orchestra demo`."""
