"""The unit of work: how a service commits.

Every use case (book, move seat, approve an item, ...) is one service function
that takes the session, the actor and the reason, enforces its rule, writes its
audit record and ends in one ``with unit_of_work(session):`` block::

    def cancel(session, program, booking_id, *, actor, reason, now):
        with unit_of_work(session):
            booking = ...               # lock, check the rule
            booking.status = ...
            audit.record(session, actor=actor, action="cancel_booking", ...)
        return booking

The block commits when it ends normally and rolls back when anything is raised
(a refusal leaves nothing half-written). A service that calls another service
inside its own block joins that block: only the outermost commits, so the two
are one transaction. Views and CLI commands never commit: they call the service.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from sqlalchemy.orm import Session

_DEPTH = "unit_of_work_depth"


@contextmanager
def unit_of_work(session: Session) -> Iterator[Session]:
    """Run the block as one transaction of ``session``: commit at the end, roll back on error."""
    depth = session.info.get(_DEPTH, 0)
    session.info[_DEPTH] = depth + 1
    try:
        yield session
        if depth == 0:
            session.commit()
    except BaseException:
        if depth == 0:
            session.rollback()
        raise
    finally:
        session.info[_DEPTH] = depth


def in_unit_of_work(session: Session) -> bool:
    """Whether a service's block is open on ``session`` (a nested service then joins it)."""
    return session.info.get(_DEPTH, 0) > 0
