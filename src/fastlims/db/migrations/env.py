"""Alembic environment: runs against the URL that ``fastlims.db.migrate`` puts in the config.

The tables of every capability come from the composition root (``bootstrap.metadata()``): only
the entry layer may import every capability, so ``fastlims.db`` itself knows none of them.
"""

from __future__ import annotations

from alembic import context

from fastlims.bootstrap import metadata as all_tables
from fastlims.db.engine import make_engine

config = context.config
metadata = all_tables()


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url must be set by fastlims.db.migrate"
    engine = make_engine(url)
    with engine.connect() as connection:
        # Batch mode lets ALTERs work on SQLite (copy-and-move) and is a no-op on PostgreSQL.
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
