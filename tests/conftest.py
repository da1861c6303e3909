"""Suite-wide fixtures. Server fixtures (Postfix, Dovecot, PostgreSQL) live in
postroom.testing and are registered here as plugins so users' own tests can reuse them."""

pytest_plugins: list[str] = ["postroom.testing.pytest_plugin"]
