"""SQLite alters most of a table by rebuilding it (Alembic's batch mode: a new table, the rows
copied, the old one dropped). With foreign keys on, dropping a table that others refer to
fails, so a migration that rebuilds such a table does it with them off, then checks that no
reference was broken and switches them on again. Elsewhere this does nothing."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _foreign_keys(on: bool) -> None:
    # Only outside a transaction, so the driver's is committed first (SQLite's DDL is not
    # transactional for Alembic anyway).
    driver = op.get_bind().connection.driver_connection
    if driver.in_transaction:
        driver.commit()
    driver.execute(f"PRAGMA foreign_keys = {'ON' if on else 'OFF'}")


@contextmanager
def table_rebuilds() -> Iterator[None]:
    if not _sqlite():
        yield
        return
    _foreign_keys(False)
    try:
        yield
        broken = op.get_bind().execute(sa.text("PRAGMA foreign_key_check")).fetchall()
        if broken:
            raise RuntimeError(f"foreign keys broken by the table rebuild: {broken[:5]}")
    finally:
        _foreign_keys(True)
