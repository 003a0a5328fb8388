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
    "itembank.models",
    "centers.models",
    "delivery.models",
    "scoring.models",
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
