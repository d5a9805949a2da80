"""Verification: command gates and their reports, the boundary gate, and the verifier that keeps them fresh."""
