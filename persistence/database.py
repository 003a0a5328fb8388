"""The database engine and sessions, chosen by ``CBT_DATABASE_URL``."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from persistence.files import private_file
from persistence.settings import load_settings


def database_url() -> str:
    """The configured database URL: ``CBT_DATABASE_URL`` or a SQLite file in the var folder."""
    return load_settings().database_url


def create_database_engine(url: str | None = None, **options) -> Engine:
    """An engine for ``url`` with the settings the product relies on.

    SQLite gets foreign keys enforced, WAL journalling and a busy timeout, so
    that a development server and a CLI command can share the file. PostgreSQL
    URLs given as ``postgresql://`` use psycopg 3.
    """
    url = url or database_url()
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            # Made 0600 before SQLite opens it: SQLite gives its -wal and -shm files the same mode.
            private_file(Path(path))
        engine = create_engine(url, **options)
        event.listen(engine, "connect", _configure_sqlite)
        return engine
    # No ping before each checkout (a round trip on every request, the answer saves
    # included): a connection the server dropped fails its request with a retryable
    # 503 and SQLAlchemy (or delivery.answers) then replaces the whole pool.
    options.setdefault("pool_pre_ping", False)
    options.setdefault("pool_size", 10)
    options.setdefault("max_overflow", 20)
    return create_engine(url, **options)


def _configure_sqlite(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA journal_mode = WAL")
    # FULL: an acknowledged answer must survive a power cut, in WAL mode too.
    cursor.execute("PRAGMA synchronous = FULL")
    cursor.execute("PRAGMA busy_timeout = 10000")
    cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
