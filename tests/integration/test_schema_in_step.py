"""The migrations build exactly the tables ``common/schema.py`` describes."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from common.db import Database
from common.schema import metadata


def test_the_migrated_database_matches_the_declared_schema(database_url: str) -> None:
    db = Database.from_url(database_url)
    try:
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = compare_metadata(context, metadata)
    finally:
        db.dispose()

    assert differences == []
