"""The migrations build exactly the schema the models describe, on both databases."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app.extensions import db


def not_full_text_search(obj, name, type_, reflected, compare_to) -> bool:
    """Full-text search objects differ per database (SQLite FTS5 tables, a PostgreSQL tsvector
    column and its index); migrations create them on purpose, outside the models."""
    name = name or ""
    return not ("_fts" in name or name == "search_vector" or name.endswith("_search"))


def test_models_and_migrations_agree(app):
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": False, "include_object": not_full_text_search}
        )
        differences = compare_metadata(context, db.metadata)
    assert differences == [], f"models and migrations differ: {differences}"
