"""Plain dataclasses, enums and rules. Standard library only."""
