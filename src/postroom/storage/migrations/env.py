"""Alembic environment: runs against the engine handed over in config.attributes."""

from alembic import context

from postroom.storage.tables import metadata

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,  # ALTER TABLE on SQLite goes through batch copy-and-move
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
