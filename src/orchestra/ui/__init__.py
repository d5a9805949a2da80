"""The Textual app: screens and widgets that render fleet state and call fleet use-cases."""
