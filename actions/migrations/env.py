"""Alembic environment: run on the connection the store hands over (never a URL of its own)."""

from __future__ import annotations

from alembic import context

from actions.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copying a table
)
with context.begin_transaction():
    context.run_migrations()
