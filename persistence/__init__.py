"""Persistence plumbing shared by every domain package.

The declarative base, the column types the domain models share, the database
engine and session factory chosen by ``CBT_DATABASE_URL``, and the Alembic
migrations. Nothing here imports a domain package: the migration environment
finds the model modules by the names listed in :data:`MODEL_MODULES`.
"""
from persistence.base import Base, UTCDateTime, utcnow
from persistence.database import (
    create_database_engine,
    database_url,
    session_factory,
)
from persistence.migrate import MODEL_MODULES, upgrade_database

__all__ = [
    "Base",
    "UTCDateTime",
    "utcnow",
    "create_database_engine",
    "database_url",
    "session_factory",
    "MODEL_MODULES",
    "upgrade_database",
]
