"""Alembic environment: online on the connection handed over by :func:`common.sql.migrate.upgrade`,
or offline (``--sql``) for a dialect, to review the DDL a database will get."""

from __future__ import annotations

from alembic import context

from common.sql.schema import metadata

config = context.config

if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
