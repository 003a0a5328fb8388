"""Backups of the database and their restore: ``pg_dump``/``pg_restore`` for PostgreSQL (the
custom format, one consistent snapshot of a running database), SQLite's online backup API
(a consistent copy while the app writes).

A restore goes into an empty database only (a fresh ``createdb``, or a SQLite file that does
not exist yet), in one transaction on PostgreSQL: it never mixes a backup with live rows,
and a failed restore leaves the target empty. The keys that live outside the database are
not in a backup; ``cbt backup`` lists the ones its restore will need (delivery.cli.operations).
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy import Engine, inspect
from sqlalchemy.engine import make_url

from persistence.errors import Conflict, InvalidInput, Unavailable
from persistence.settings import load_settings

POSTGRES_MAGIC = b"PGDMP"
SQLITE_MAGIC = b"SQLite format 3\x00"


def kind_of_backup(path: Path) -> str:
    """``postgresql`` or ``sqlite``, from the file's first bytes."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError as error:
        raise InvalidInput(f"cannot read the backup {path}: {error.strerror}") from None
    if head.startswith(POSTGRES_MAGIC):
        return "postgresql"
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    raise InvalidInput(f"{path} is not a backup made by cbt backup (neither a pg_dump archive nor a SQLite file)")


def _libpq(engine: Engine) -> tuple[str, dict[str, str]]:
    """The database's URI for the PostgreSQL tools, and the environment that carries its password
    (never on their command line, where ``ps`` would show it)."""
    url = make_url(engine.url.render_as_string(hide_password=False))
    env = dict(load_settings().child_environment)  # the tools' own PG* settings (PGSSLMODE...) still apply
    if url.password:
        env["PGPASSWORD"] = url.password
    return url.set(drivername="postgresql", password=None).render_as_string(hide_password=False), env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise Unavailable(f"{name} is not installed here (Debian: apt-get install postgresql-client)")
    return found


def _sqlite_path(engine: Engine) -> Path:
    database = engine.url.database
    if not database or database == ":memory:":
        raise InvalidInput("an in-memory SQLite database has nothing to back up or restore into")
    return Path(database)


def backup(engine: Engine, path: Path) -> None:
    """Write a consistent snapshot of the database to ``path`` (replaced only once complete)."""
    partial = path.with_name(path.name + ".partial")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if engine.dialect.name == "postgresql":
            uri, env = _libpq(engine)
            done = subprocess.run([_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
                                   f"--file={partial}", f"--dbname={uri}"], env=env, capture_output=True, text=True)
            if done.returncode != 0:
                raise Unavailable("pg_dump failed: {reason}", reason=" ".join(done.stderr.split()))
        elif engine.dialect.name == "sqlite":
            _copy_sqlite(_sqlite_path(engine), partial)
        else:
            raise InvalidInput("no backup for {dialect} databases", dialect=engine.dialect.name)
        os.chmod(partial, 0o600)  # it holds everything the database holds
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _copy_sqlite(source_path: Path, target_path: Path) -> None:
    """SQLite's online backup: a consistent copy even while others write to the source."""
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True)
    target = sqlite3.connect(target_path)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


def is_empty(engine: Engine) -> bool:
    if engine.dialect.name == "sqlite":
        path = _sqlite_path(engine)
        if not path.exists() or path.stat().st_size == 0:
            return True
    return not inspect(engine).get_table_names()


def restore(engine: Engine, path: Path) -> None:
    """Restore the backup at ``path`` into the empty database of ``engine``."""
    kind = kind_of_backup(path)
    if kind != engine.dialect.name:
        raise InvalidInput("{path} is a {kind} backup; the target database is {dialect}", path=path, kind=kind,
                           dialect=engine.dialect.name)
    if not is_empty(engine):
        raise Conflict("the database at {url} already holds tables; restore into an empty database "
                       "(PostgreSQL: createdb a new one; SQLite: a file that does not exist yet)", url=engine.url)
    if kind == "postgresql":
        uri, env = _libpq(engine)
        done = subprocess.run([_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
                               "--single-transaction", f"--dbname={uri}", str(path)],
                              env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise Unavailable("pg_restore failed (nothing was restored): {reason}", reason=" ".join(done.stderr.split()))
        return
    engine.dispose()
    target_path = _sqlite_path(engine)
    target_path.parent.mkdir(parents=True, exist_ok=True)
    _copy_sqlite(path, target_path)
    os.chmod(target_path, 0o600)
