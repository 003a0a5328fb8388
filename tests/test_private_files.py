"""The SQLite database, its -wal/-shm files and the var folder are their owner's alone."""
from __future__ import annotations

import os
import stat

from sqlalchemy import text

from persistence import create_database_engine


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_sqlite_database_and_its_folder_are_private_whatever_the_umask(tmp_path):
    var = tmp_path / "var"
    previous = os.umask(0o022)
    try:
        engine = create_database_engine(f"sqlite:///{var / 'cbt.sqlite3'}")
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (x INTEGER)"))
            connection.execute(text("INSERT INTO t VALUES (1)"))
            files = sorted(p.name for p in var.iterdir())
            modes = {name: mode(var / name) for name in files}
        engine.dispose()
    finally:
        os.umask(previous)
    assert mode(var) == 0o700
    assert {"cbt.sqlite3", "cbt.sqlite3-wal", "cbt.sqlite3-shm"} <= set(files)
    assert modes == dict.fromkeys(files, 0o600)
