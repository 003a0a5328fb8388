"""Applying the Alembic migrations from code (the CLI, the tests, ``make run``)."""
from __future__ import annotations

import importlib
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

# The modules that define tables. The migration environment imports them by
# name so that autogenerate sees every table; this package imports none of them.
MODEL_MODULES = (
    "persistence.audit",
    "itembank.models",
    "itembank.assembly_models",
    "centers.models",
    "delivery.models",
    "scoring.models",
    "delivery.throttle",
)


def import_models() -> None:
    for name in MODEL_MODULES:
        importlib.import_module(name)


def alembic_config(engine: Engine | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if engine is not None:
        config.attributes["engine"] = engine
    return config


def upgrade_database(engine: Engine, revision: str = "head") -> None:
    """Bring the schema of ``engine``'s database up to ``revision``."""
    command.upgrade(alembic_config(engine), revision)


class SchemaError(RuntimeError):
    """The database cannot be used by this version of the code."""


def check_schema(engine: Engine) -> None:
    """Refuse to start on a database that is unreachable or not migrated to head."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy.exc import InterfaceError, OperationalError

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except (OperationalError, InterfaceError) as error:
        # One line, for a service log: the driver's message spans several.
        reason = "; ".join(line.strip() for line in str(error.orig).splitlines() if line.strip())
        check = ("that the file can be opened and written here" if engine.dialect.name == "sqlite"
                 else "that the database server is running and reachable from here")
        raise SchemaError(f"cannot reach the database at {engine.url.render_as_string(hide_password=True)} "
                          f"({reason}); check {check}, and that CBT_DATABASE_URL names it") from None
    if current != head:
        raise SchemaError(
            f"the database schema is at revision {current or 'none'} but this code needs {head}: "
            "run `cbt db upgrade`"
        )
