"""Alembic environment: runs on the engine handed over by persistence.migrate."""
from alembic import context

from persistence.base import Base
from persistence.database import create_database_engine
from persistence.migrate import import_models

import_models()
target_metadata = Base.metadata
config = context.config


def run_migrations_online() -> None:
    engine = config.attributes.get("engine") or create_database_engine()
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        context.run_migrations()


run_migrations_online()
