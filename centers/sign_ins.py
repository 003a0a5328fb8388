"""Signed-in browsers of staff and registered candidates, held on the server.

The session cookie carries a random token; :class:`~centers.models.SignIn` holds its
hash. Every request looks its row up (one primary-key read, joined to the account), so
signing out, a password change or a closed account ends every copy of the cookie at
once, whatever the cookie's own signature says. A sign-in also ends when unused for
the idle timeout or when the absolute timeout has passed since it began.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from centers.models import Candidate, SignIn, StaffAccount
from persistence.settings import Settings
from persistence.unit_of_work import unit_of_work

# ``seen_at`` moves on at most this often: an idle timeout of minutes needs no write per request.
TOUCH_EVERY = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class Timeouts:
    idle: dt.timedelta
    absolute: dt.timedelta

    @classmethod
    def of(cls, settings: Settings) -> Timeouts:
        return cls(dt.timedelta(minutes=settings.session_idle_minutes), dt.timedelta(hours=settings.session_hours))

    def expired(self, created_at: dt.datetime, seen_at: dt.datetime, now: dt.datetime) -> bool:
        return now - seen_at >= self.idle or now - created_at >= self.absolute


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_sign_in(session: Session, now: dt.datetime, *, staff_id: int | None = None,
                 candidate_id: int | None = None) -> str:
    """A new sign-in of the account, in the caller's unit of work; returns the cookie's token."""
    token = secrets.token_urlsafe(32)
    session.add(SignIn(id=_hash(token), staff_id=staff_id, candidate_id=candidate_id, created_at=now, seen_at=now))
    session.flush()
    return token


def _current(session: Session, model, column, token: str | None, now: dt.datetime, timeouts: Timeouts):
    if not token:
        return None
    row = session.execute(select(model, SignIn.created_at, SignIn.seen_at).join(SignIn, column == model.id)
                          .where(SignIn.id == _hash(token))).first()
    if row is None:
        return None
    account, created_at, seen_at = row
    if timeouts.expired(created_at, seen_at, now):
        close(session, token)
        return None
    if now - seen_at >= TOUCH_EVERY:
        with unit_of_work(session):
            session.execute(update(SignIn).where(SignIn.id == _hash(token)).values(seen_at=now))
    return account


def staff_signed_in(session: Session, token: str | None, now: dt.datetime, timeouts: Timeouts) -> StaffAccount | None:
    """The active staff account this token signs in, if the sign-in is still open."""
    account = _current(session, StaffAccount, SignIn.staff_id, token, now, timeouts)
    return account if account is not None and account.active else None


def applicant_signed_in(session: Session, token: str | None, now: dt.datetime,
                        timeouts: Timeouts) -> Candidate | None:
    """The registered candidate this token signs in, if the sign-in is still open."""
    return _current(session, Candidate, SignIn.candidate_id, token, now, timeouts)


def close(session: Session, token: str | None) -> None:
    """End one sign-in (signing out): every copy of its cookie stops working."""
    if token:
        with unit_of_work(session):
            session.execute(delete(SignIn).where(SignIn.id == _hash(token)))


def close_all(session: Session, *, staff_id: int | None = None, candidate_id: int | None = None) -> int:
    """End every sign-in of an account (a password change, a closed account), in the caller's unit of work."""
    column, value = (SignIn.staff_id, staff_id) if staff_id is not None else (SignIn.candidate_id, candidate_id)
    return session.execute(delete(SignIn).where(column == value)).rowcount


def prune(session: Session, now: dt.datetime, timeouts: Timeouts) -> int:
    """Delete the sign-ins that have timed out (run it daily); returns how many."""
    with unit_of_work(session):
        return session.execute(delete(SignIn).where(or_(SignIn.seen_at <= now - timeouts.idle,
                                                        SignIn.created_at <= now - timeouts.absolute))).rowcount
