"""What orchestra tells and gives agents: CLI presets, prompts, the wire protocol and the built-in agent's tools."""
