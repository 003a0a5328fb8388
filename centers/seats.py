"""Seat PCs: enrolled once by a proctor of their centre, the only PCs a candidate logs in at.

A proctor enrols a PC as one seat of their centre, either at the PC itself (the proctor's
page "Enrol this PC as a seat": the answer sets the PC's seat cookie) or from the shell
(``cbt seats enrol``: a one-time link, opened once in the PC's browser). Either way the PC
ends up holding a random credential, in a cookie signed with the application's secret key;
:class:`~centers.models.SeatEnrolment` holds its hash, so a revocation (``cbt seats revoke``)
ends it at once, whatever the cookie's signature says.

One PC per seat and one seat per PC: enrolling a seat that has a PC revokes that PC's
enrolment, and a PC enrolled again (it was moved to another seat or centre) gives up its
old enrolment. Every enrolment, claim and revocation is recorded in the audit trail.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session, joinedload

from centers import bookings
from centers.accounts import Actor
from centers.models import Centre, Seat, SeatEnrolment
from persistence.errors import Conflict, InvalidInput, NotFound, Refused
from persistence.unit_of_work import unit_of_work

# A one-time enrolment link must be opened within this time.
LINK_VALID_FOR = dt.timedelta(hours=24)
REASON_LENGTH = 500


@dataclass(frozen=True)
class EnrolledSeat:
    """The seat a PC is enrolled as."""

    enrolment_id: int
    centre_id: int
    centre_name: str
    seat_id: int
    seat_label: str


def credential_hash(secret: str) -> str:
    """What the database keeps of a PC's credential or a link's code."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _reason(reason: str) -> str:
    reason = reason.strip()
    if len(reason) > REASON_LENGTH:
        raise InvalidInput("Say why in at most {length} characters.", length=REASON_LENGTH, field="reason")
    return reason


def _seat(session: Session, seat_id: int, actor: Actor) -> Seat:
    seat = session.get(Seat, seat_id, options=[joinedload(Seat.centre)])
    if seat is None:
        raise NotFound("There is no such seat.")
    if actor.role != "proctor":
        raise Refused("Only a proctor of the seat's centre can enrol its PCs.")
    bookings.check_centre(actor, seat.centre_id, f"seat:{seat.id}")
    if not seat.active:
        raise Conflict("Seat {seat} is out of service; put it back in service first.", seat=seat.label)
    return seat


def seat_by_label(session: Session, centre_code: str, seat_label: str) -> Seat:
    """The seat ``seat_label`` of the centre ``centre_code`` (for the command line)."""
    seat = session.scalar(select(Seat).join(Seat.centre)
                          .where(Centre.code == centre_code.strip(), Seat.label == seat_label.strip()))
    if seat is None:
        raise NotFound("Centre {centre} has no seat {seat}.", centre=centre_code, seat=seat_label)
    return seat


def _revoke_where(session: Session, now: dt.datetime, by: str, *conditions) -> int:
    return session.execute(update(SeatEnrolment).where(SeatEnrolment.revoked_at.is_(None), *conditions)
                           .values(revoked_at=now, revoked_by=by[:64])
                           .execution_options(synchronize_session=False)).rowcount


def _bind(session: Session, enrolment: SeatEnrolment, now: dt.datetime, by: str, replacing: str | None) -> tuple[
        str, int]:
    """Give ``enrolment`` a fresh credential; revoke the seat's other PC and this PC's old enrolment."""
    token = secrets.token_urlsafe(32)
    replaced = _revoke_where(session, now, by, SeatEnrolment.seat_id == enrolment.seat_id,
                             SeatEnrolment.token_hash.is_not(None), SeatEnrolment.id != enrolment.id)
    if replacing:
        replaced += _revoke_where(session, now, by, SeatEnrolment.token_hash == credential_hash(replacing))
    enrolment.token_hash = credential_hash(token)
    enrolment.claimed_at = now
    enrolment.link_hash = None
    enrolment.link_expires_at = None
    session.flush()
    return token, replaced


def enrol_this_pc(session: Session, seat_id: int, *, actor: Actor, reason: str, now: dt.datetime,
                  replacing: str | None = None) -> tuple[str, EnrolledSeat]:
    """A proctor, at the PC, enrols it as one seat of their centre: the PC's new credential (for its
    cookie) and the seat. ``replacing``: the credential the PC held before, now revoked. One unit of work."""
    def change():
        seat = _seat(session, seat_id, actor)
        said = _reason(reason)
        enrolment = SeatEnrolment(centre_id=seat.centre_id, seat_id=seat.id, enrolled_by=actor.name, created_at=now)
        session.add(enrolment)
        session.flush()
        token, replaced = _bind(session, enrolment, now, actor.name, replacing)
        actor.record(session, "seat.enrol", f"seat:{seat.id}", now=now, centre_id=seat.centre_id, reason=said,
                     details={"seat": seat.label, "centre": seat.centre.code, "enrolment": enrolment.id,
                              "how": "at the PC", "revoked": replaced})
        return token, _enrolled(enrolment, seat)

    return bookings.guarded(session, actor, "seat.enrol", now, change)


def issue_enrolment_link(session: Session, seat_id: int, *, actor: Actor, reason: str,
                         now: dt.datetime) -> tuple[str, EnrolledSeat]:
    """A one-time code that enrols the browser that opens its link as this seat (within
    :data:`LINK_VALID_FOR`); the seat's current PC keeps its enrolment until then. One unit of work."""
    def change():
        seat = _seat(session, seat_id, actor)
        said = _reason(reason)
        code = secrets.token_urlsafe(24)
        enrolment = SeatEnrolment(centre_id=seat.centre_id, seat_id=seat.id, enrolled_by=actor.name, created_at=now,
                                  link_hash=credential_hash(code), link_expires_at=now + LINK_VALID_FOR)
        session.add(enrolment)
        session.flush()
        actor.record(session, "seat.enrol", f"seat:{seat.id}", now=now, centre_id=seat.centre_id, reason=said,
                     details={"seat": seat.label, "centre": seat.centre.code, "enrolment": enrolment.id,
                              "how": "one-time link", "expires": enrolment.link_expires_at.isoformat()})
        return code, _enrolled(enrolment, seat)

    return bookings.guarded(session, actor, "seat.enrol", now, change)


def pending_link(session: Session, code: str, now: dt.datetime) -> EnrolledSeat:
    """The seat a one-time enrolment link would enrol (to show before it is claimed)."""
    enrolment = _pending(session, code, now)
    return _enrolled(enrolment, enrolment.seat)


def _pending(session: Session, code: str, now: dt.datetime, *, lock: bool = False) -> SeatEnrolment:
    query = (select(SeatEnrolment).options(joinedload(SeatEnrolment.seat).joinedload(Seat.centre))
             .where(SeatEnrolment.link_hash == credential_hash(code), SeatEnrolment.revoked_at.is_(None)))
    if lock and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=SeatEnrolment)
    enrolment = session.scalar(query) if code else None
    if enrolment is None or enrolment.link_expires_at is None or enrolment.link_expires_at <= now:
        raise NotFound("This enrolment link is unknown, used or expired; ask the proctor for a new one.")
    return enrolment


def claim_enrolment_link(session: Session, code: str, *, now: dt.datetime,
                         replacing: str | None = None) -> tuple[str, EnrolledSeat]:
    """The browser that opened a one-time enrolment link becomes the seat's PC: its credential and
    the seat. The link then stops working. One unit of work."""
    with unit_of_work(session):
        if session.get_bind().dialect.name == "sqlite":
            # The write lock first: two browsers claiming one link queue, and the second finds it used.
            session.execute(update(SeatEnrolment).where(SeatEnrolment.link_hash == credential_hash(code))
                            .values(id=SeatEnrolment.id).execution_options(synchronize_session=False))
        enrolment = _pending(session, code, now, lock=True)
        seat = enrolment.seat
        token, replaced = _bind(session, enrolment, now, enrolment.enrolled_by, replacing)
        Actor(f"seat-pc:{enrolment.id}", "seat").record(
            session, "seat.enrol_claimed", f"seat:{seat.id}", now=now, centre_id=seat.centre_id,
            details={"seat": seat.label, "centre": seat.centre.code, "enrolment": enrolment.id,
                     "enrolled_by": enrolment.enrolled_by, "revoked": replaced})
        return token, _enrolled(enrolment, seat)


def revoke(session: Session, seat_id: int, *, actor: Actor, reason: str, now: dt.datetime) -> int:
    """End every enrolment of the seat (its PC and any unused link): the PC can no longer be used
    for a login until enrolled again. How many were ended. One unit of work."""
    def change():
        seat = session.get(Seat, seat_id, options=[joinedload(Seat.centre)])
        if seat is None:
            raise NotFound("There is no such seat.")
        bookings.check_centre(actor, seat.centre_id, f"seat:{seat.id}")
        said = _reason(reason)
        if not said:
            raise InvalidInput("Say why the seat's enrolment ends (the reason is kept in the audit trail).",
                               field="reason")
        ended = _revoke_where(session, now, actor.name, SeatEnrolment.seat_id == seat.id)
        actor.record(session, "seat.revoke", f"seat:{seat.id}", now=now, centre_id=seat.centre_id, reason=said,
                     details={"seat": seat.label, "centre": seat.centre.code, "revoked": ended})
        return ended

    return bookings.guarded(session, actor, "seat.revoke", now, change)


def enrolled_seat(session: Session, token: str | None) -> EnrolledSeat | None:
    """The seat a PC's credential enrols it as, if the enrolment holds (one indexed read)."""
    if not token:
        return None
    row = session.execute(
        select(SeatEnrolment.id, SeatEnrolment.centre_id, Centre.name, SeatEnrolment.seat_id, Seat.label)
        .join(Seat, Seat.id == SeatEnrolment.seat_id).join(Centre, Centre.id == SeatEnrolment.centre_id)
        .where(SeatEnrolment.token_hash == credential_hash(token), SeatEnrolment.revoked_at.is_(None))).first()
    return EnrolledSeat(*row) if row else None


def enrolments(session: Session, centre_id: int) -> list[SeatEnrolment]:
    """The centre's enrolments in force (a PC, or a link not yet used), by seat."""
    return list(session.scalars(
        select(SeatEnrolment).options(joinedload(SeatEnrolment.seat))
        .join(Seat, Seat.id == SeatEnrolment.seat_id)
        .where(SeatEnrolment.centre_id == centre_id, SeatEnrolment.revoked_at.is_(None))
        .order_by(Seat.label, SeatEnrolment.id)))


def _enrolled(enrolment: SeatEnrolment, seat: Seat) -> EnrolledSeat:
    return EnrolledSeat(enrolment.id, seat.centre_id, seat.centre.name, seat.id, seat.label)
