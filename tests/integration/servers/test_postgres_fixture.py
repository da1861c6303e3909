"""The postgres_url fixture hands out a database of its own (session-scoped: other tests may
have migrated it already, so this checks ownership, not emptiness)."""

from __future__ import annotations

from sqlalchemy import create_engine, text


def test_postgres_url_points_at_a_fresh_database(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            name = conn.execute(text("SELECT current_database()")).scalar_one()
    finally:
        engine.dispose()
    assert postgres_url.endswith(f"/{name}")
    assert name.startswith("postroom_test_")
    assert name != "test"
