"""Row locks for the services that change bookings, slots and sittings.

A service locks every row it is about to change, in a fixed order (by table, then by
id: a candidate, then a booking, then its slots), re-reads them and only then checks
its rule, so that two requests racing for the same rows queue instead of both acting
on what they read before the other wrote.

PostgreSQL: ``SELECT ... FOR UPDATE``, row by row. SQLite has one writer at a time: a
no-op UPDATE as the transaction's first write takes the database's write lock (as
``BEGIN IMMEDIATE`` would) before anything is read, so what is read after it is current
and stays so until the commit.
"""
from __future__ import annotations

from typing import Iterable, TypeVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session

T = TypeVar("T")


def locked(session: Session, model: type[T], ids: Iterable[int | None]) -> dict[int, T]:
    """The rows of ``model`` with these ids, locked for the rest of the transaction and read
    afresh (whatever the session held of them before); ids with no row are left out."""
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    query = select(model).where(model.id.in_(wanted)).order_by(model.id).execution_options(populate_existing=True)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=model)
    else:
        session.execute(update(model).where(model.id.in_(wanted)).values(id=model.id)
                        .execution_options(synchronize_session=False))
    return {row.id: row for row in session.scalars(query)}


def locked_one(session: Session, model: type[T], row_id: int | None) -> T | None:
    return locked(session, model, [row_id]).get(row_id) if row_id is not None else None


def lock_where(session: Session, model, *conditions) -> list[int]:
    """Lock every row of ``model`` meeting ``conditions`` (in id order); their ids."""
    query = select(model.id).where(*conditions).order_by(model.id)
    if session.get_bind().dialect.name == "postgresql":
        return list(session.scalars(query.with_for_update()))
    session.execute(update(model).where(*conditions).values(id=model.id).execution_options(synchronize_session=False))
    return list(session.scalars(query))
