"""The only package that imports litellm: the llm host, its client, and the built-in agent's loop."""
