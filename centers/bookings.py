"""Bookings: taking a place under the program's rules, moving, cancelling, checking in, no-shows.

Every change of a booking is one service that takes the session, the actor and the
reason, and runs as one unit of work: it locks what it touches in a fixed order (the
candidate, then the booking, then the slots by id; :mod:`centers.locks`), reads them
afresh, checks the rules (:func:`allowance`, the transitions of
:data:`~centers.models.BOOKING`), moves the places, writes the audit record and
commits. Two requests racing for the same booking or candidate therefore queue, and
the second sees what the first did.

A place is taken with one guarded UPDATE of the slot's counter (``booked = booked + 1
WHERE booked < capacity``), so bookings of one slot by different candidates need not
lock each other out for long, and the slot's check constraint refuses overbooking
whatever happens. A partial unique index keeps one booking not yet taken up per
candidate and program, another one active booking per seat per slot. Seats are given
at check-in (or directly by staff). ``cbt bookings check`` compares every slot's counter
with its bookings (:func:`slot_drift`).
"""
from __future__ import annotations

import calendar as _calendar
import datetime as dt
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.util import identity_key

from centers.accounts import SYSTEM, Actor
from centers.calendar import booking_window, local_today
from centers.locks import locked, locked_one
from centers.models import (
    ACTIVE_BOOKING,
    BOOKING,
    SEAT_FEATURES,
    Booking,
    BookingStatus,
    Candidate,
    Seat,
    Slot,
    SlotStatus,
)
from persistence import typed_input
from persistence.errors import Conflict, InvalidInput, NotFound, Refused
from persistence.settings import DEFAULT_PROGRAM
from persistence.unit_of_work import unit_of_work

if TYPE_CHECKING:
    from itembank.program import ExamProgram

T = TypeVar("T")

# No 0/O or 1/I/L: the code is read off a paper slip and typed in.
ADMISSION_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
MIN_TIME_MULTIPLIER, MAX_TIME_MULTIPLIER = 1.0, 3.0
REASON_LENGTH = 500


def new_admission_code() -> str:
    return "-".join("".join(secrets.choice(ADMISSION_ALPHABET) for _ in range(4)) for _ in range(3))


def normalise_admission_code(text: str) -> str:
    """The code as printed (ABCD-2345-6789), from what was typed: full-width letters and digits,
    any dashes or spaces, lower case (:func:`persistence.typed_input.plain_code`)."""
    compact = "".join(ch for ch in typed_input.plain_code(text).upper() if ch.isascii() and ch.isalnum())
    return "-".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later, or the month's last day when it has no such day."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return day.replace(year=year, month=month, day=min(day.day, _calendar.monthrange(year, month)[1]))


def _check_seat_need(seat_need: str | None) -> None:
    if seat_need is not None and seat_need not in SEAT_FEATURES:
        raise InvalidInput("Unknown seat placement {seat_need}; choose one of {choices}.", field="seat_need",
                           seat_need=repr(seat_need), choices=", ".join(SEAT_FEATURES))


def _check_multiplier(time_multiplier: float) -> None:
    if not MIN_TIME_MULTIPLIER <= time_multiplier <= MAX_TIME_MULTIPLIER:
        raise InvalidInput("The time multiplier must be between {lowest} and {highest}.", field="time_multiplier",
                           lowest=MIN_TIME_MULTIPLIER, highest=MAX_TIME_MULTIPLIER)


# ---- places in a slot ----------------------------------------------------------

def _claim_place(session: Session, slot_id: int) -> None:
    """Take one place in the slot, or refuse: one statement, safe under concurrency."""
    taken = session.execute(
        update(Slot).where(Slot.id == slot_id, Slot.status == SlotStatus.OPEN, Slot.booked < Slot.capacity)
        .values(booked=Slot.booked + 1).execution_options(synchronize_session=False)
    ).rowcount
    if taken != 1:
        slot = session.get(Slot, slot_id, populate_existing=True)
        if slot is None:
            raise NotFound("There is no such slot.")
        if slot.status != SlotStatus.OPEN:
            raise Conflict("This slot is closed; please choose another.")
        raise Conflict("This slot has just been fully booked; please choose another.")
    _refresh(session, slot_id)


def _release_place(session: Session, slot_id: int) -> None:
    """Give back the place a booking held (the caller holds the booking's lock: it is given back once)."""
    session.execute(update(Slot).where(Slot.id == slot_id, Slot.booked > 0).values(booked=Slot.booked - 1)
                    .execution_options(synchronize_session=False))
    _refresh(session, slot_id)


def _refresh(session: Session, slot_id: int) -> None:
    """Let a loaded slot read its counter again after the UPDATE that bypassed the ORM."""
    slot = session.identity_map.get(identity_key(Slot, slot_id))
    if slot is not None:
        session.expire(slot, ["booked", "status"])


def book(session: Session, candidate: Candidate, slot: Slot, *, seat_id: int | None = None,
         time_multiplier: float = 1.0, large_text: bool = False, seat_need: str | None = None,
         program_code: str = DEFAULT_PROGRAM, language: str | None = None) -> Booking:
    """Give the candidate a place in the slot, in the caller's unit of work (staff, demo data and
    tests: no calendar rules). The place is counted against the slot's capacity like any other.

    ``language`` is the one the candidate reads ("ja", "en"), recorded for the sitting; None
    when staff book: the sitting is then shown in the program's default language."""
    _check_seat_need(seat_need)
    _check_multiplier(time_multiplier)
    if slot.id is None:
        session.add(slot)
        session.flush()
    _claim_place(session, slot.id)
    booking = Booking(
        candidate=candidate, slot=slot, seat_id=seat_id, admission_code=new_admission_code(),
        program_code=program_code, time_multiplier=time_multiplier, large_text=large_text, seat_need=seat_need,
        first_date=slot.date, changes=0, language=language,
    )
    session.add(booking)
    try:
        session.flush()
    except IntegrityError as error:
        if not _violates(error, "uq_bookings_candidate_program", "bookings.candidate_id"):
            raise
        # The partial unique index: another booking of this candidate was made since we looked.
        raise Conflict("You already have a booking; move it instead of booking again.") from None
    return booking


def _violates(error: IntegrityError, index: str, sqlite_columns: str) -> bool:
    """Whether ``error`` is a violation of this unique index (PostgreSQL names it, SQLite its columns)."""
    text = str(error.orig)
    return index in text or sqlite_columns in text


# ---- what a booking allows ---------------------------------------------------------

@dataclass(frozen=True)
class Allowance:
    """What the candidate may do with a booking now, by the program's rules: the booking
    pages show it and the services enforce it."""

    can_move: bool
    can_cancel: bool
    moves_left: int  # moves the count rule still allows (a move off a closed slot does not count)
    deadline: dt.date  # the last day to move or cancel (unless waived)
    waived: bool  # its slot was closed: it may move or cancel free of the deadline and count rules
    refusal: Conflict | None  # why it cannot be changed (or moved), when it cannot: the refusal raised

    def refuse_move(self) -> None:
        if not self.can_move:
            raise self.refusal or Conflict("This booking cannot be moved.")

    def refuse_cancel(self) -> None:
        if not self.can_cancel:
            raise self.refusal or Conflict("This booking cannot be cancelled.")


def allowance(program: ExamProgram, booking: Booking, now: dt.datetime) -> Allowance:
    rules = program.booking
    deadline = change_deadline(program, booking.slot.date)
    moves_left = max(0, rules.max_changes - booking.changes)
    if not BOOKING.allows(booking.status, "move"):
        refusal = Conflict(_UNCHANGEABLE[BookingStatus(booking.status)])
        return Allowance(False, False, moves_left, deadline, False, refusal)
    if booking.slot.status == SlotStatus.CLOSED:
        return Allowance(True, True, moves_left, deadline, True, None)
    if local_today(program, now) > deadline:
        refusal = Conflict("Bookings can be moved or cancelled until {days} days before the sitting; the last "
                           "day for this one was {deadline}.", days=rules.change_until_days_before, deadline=deadline)
        return Allowance(False, False, moves_left, deadline, False, refusal)
    if moves_left == 0:
        refusal = Conflict("This booking has been moved {changes} times, the most allowed; it can still be "
                           "cancelled.", changes=booking.changes)
        return Allowance(False, True, 0, deadline, False, refusal)
    return Allowance(True, True, moves_left, deadline, False, None)


# Why a booking that is no longer "booked" cannot be changed, by its status.
_UNCHANGEABLE = {
    BookingStatus.CHECKED_IN: "A booking that is checked in cannot be changed.",
    BookingStatus.CANCELLED: "A booking that is cancelled cannot be changed.",
    BookingStatus.NO_SHOW: "A booking recorded as a no-show cannot be changed.",
    BookingStatus.BOOKED: "This booking cannot be changed.",
}


def change_deadline(program: ExamProgram, day: dt.date) -> dt.date:
    """The last day a booking for ``day`` can be moved or cancelled."""
    return day - dt.timedelta(days=program.booking.change_until_days_before)


def inside_change_deadline(program: ExamProgram, day: dt.date, now: dt.datetime) -> bool:
    """Whether a booking made now for ``day`` could no longer be moved or cancelled: the booking
    pages warn before such a booking is made (:func:`allowance` is the rule for one made)."""
    return local_today(program, now) > change_deadline(program, day)


def default_language(program: ExamProgram) -> str:
    """The language a booking made by staff records: the program's default (Japanese unless it says)."""
    return getattr(program, "default_language", None) or "ja"


# ---- finding and locking bookings -------------------------------------------------

class ForeignCentre(Refused):
    """A proctor reached for a booking or slot of another centre."""

    def __init__(self, subject: str, centre_id: int | None):
        super().__init__("This is another centre's; a proctor acts on their own centre only.")
        self.subject = subject
        self.centre_id = centre_id


def refuse_foreign(session: Session, actor: Actor, action: str, refused: ForeignCentre, now: dt.datetime):
    """Record an attempt on another centre in the audit trail (that centre's), then refuse it."""
    with unit_of_work(session):
        actor.record(session, f"refused_{action}", refused.subject, now=now, centre_id=refused.centre_id,
                     reason="not the proctor's centre", details={"proctor_centre_id": actor.centre_id})
    raise Refused(refused.template) from None


def guarded(session: Session, actor: Actor, action: str, now: dt.datetime, change: Callable[[], T]) -> T:
    """Run ``change`` as one unit of work; an attempt on another centre's rows is undone,
    recorded and refused."""
    try:
        with unit_of_work(session):
            return change()
    except ForeignCentre as refused:
        refuse_foreign(session, actor, action, refused, now)


def check_centre(actor: Actor, centre_id: int, subject: str) -> None:
    """A proctor acts on their own centre only (other staff roles: operations, system, are not bound)."""
    if actor.role == "proctor" and (actor.centre_id is None or centre_id != actor.centre_id):
        raise ForeignCentre(subject, centre_id)


def _no_such_booking(actor: Actor) -> None:
    if actor.role == "candidate":
        raise NotFound("You have no such booking.")
    raise NotFound("There is no such booking.")


def _owned(booking: Booking | None, actor: Actor) -> Booking:
    if booking is None or (actor.role == "candidate" and booking.candidate_id != actor.candidate_id):
        _no_such_booking(actor)
    check_centre(actor, booking.slot.centre_id, f"booking:{booking.id}")
    return booking


def booking_for(session: Session, booking_id: int, actor: Actor) -> Booking:
    """The booking as ``actor`` may see it (a candidate's own; a proctor's centre's), unlocked:
    for pages. Another centre's raises :class:`ForeignCentre`."""
    booking = session.get(Booking, booking_id, options=[joinedload(Booking.slot).joinedload(Slot.centre),
                                                          joinedload(Booking.candidate)])
    return _owned(booking, actor)


def viewed_booking(session: Session, booking_id: int, actor: Actor, now: dt.datetime,
                   action: str = "view_booking") -> Booking:
    """:func:`booking_for`, with a reach for another centre's booking (to see it, or for
    ``action``) recorded and refused."""
    return guarded(session, actor, action, now, lambda: booking_for(session, booking_id, actor))


def locked_booking(session: Session, booking_id: int, actor: Actor, *, slot_ids: tuple[int, ...] = ()) -> Booking:
    """Lock the booking, then its slot and ``slot_ids`` (by id), and check the actor may act on it."""
    booking = locked_one(session, Booking, booking_id)
    if booking is None:
        _no_such_booking(actor)
    locked(session, Slot, [booking.slot_id, *slot_ids])
    return _owned(booking, actor)


def _slot_for_booking(session: Session, slot_id: int) -> Slot:
    slot = session.get(Slot, slot_id, options=[joinedload(Slot.centre)])
    if slot is None:
        raise NotFound("There is no such slot.")
    return slot


def _check_bookable(program: ExamProgram, slot: Slot, now: dt.datetime) -> None:
    first, last = booking_window(program, now)
    if slot.kind not in {t.kind for t in program.booking.slots}:
        raise InvalidInput("This slot is not open for booking.", field="slot_id")
    if slot.date < first:
        raise InvalidInput("Bookings for {day} have closed; the earliest date is {first}.", field="slot_id",
                           day=slot.date, first=first)
    if slot.date > last:
        raise InvalidInput("The calendar is open until {last}.", field="slot_id", last=last)


def upcoming_booking(session: Session, candidate_id: int, program: ExamProgram, now: dt.datetime) -> Booking | None:
    """The candidate's active booking for today or later, if any (one at a time)."""
    return session.scalar(
        select(Booking).join(Booking.slot)
        .where(Booking.candidate_id == candidate_id, Booking.program_code == program.code,
               Booking.status.in_(ACTIVE_BOOKING), Slot.date >= local_today(program, now))
        .order_by(Slot.starts_at).limit(1)
    )


def bookings_of(session: Session, candidate_id: int) -> list[Booking]:
    """Every booking of the candidate, the latest slot first."""
    return list(session.scalars(
        select(Booking).join(Booking.slot).options(joinedload(Booking.slot).joinedload(Slot.centre))
        .where(Booking.candidate_id == candidate_id).order_by(Slot.starts_at.desc())
    ))


# ---- the candidate's changes -----------------------------------------------------

def _booking_record(actor: Actor, session: Session, action: str, booking: Booking, now: dt.datetime, *,
                    reason: str = "", details: dict) -> None:
    actor.record(session, action, f"booking:{booking.id}", now=now, centre_id=booking.slot.centre_id,
                 reason=reason[:REASON_LENGTH], details=details)


def _close_stale(session: Session, program: ExamProgram, candidate_id: int, now: dt.datetime) -> None:
    """Bookings of days gone by that were never taken up become no-shows (their places back), so that
    they do not count as the candidate's one booking (the database's unique index among them)."""
    stale = session.scalars(
        select(Booking).join(Booking.slot)
        .where(Booking.candidate_id == candidate_id, Booking.program_code == program.code,
               Booking.status == BookingStatus.BOOKED, Slot.date < local_today(program, now))
    ).all()
    for booking in stale:
        locked(session, Slot, [booking.slot_id])
        _release_place(session, booking.slot_id)
        booking.status = BookingStatus.NO_SHOW
        booking.seat_id = None
        _booking_record(SYSTEM, session, "no_show", booking, now, reason="not checked in by the day of the slot",
                        details={"candidate": booking.candidate.name})


def reserve(session: Session, program: ExamProgram, slot_id: int, now: dt.datetime, *, candidate_id: int,
            actor: Actor, reason: str = "", large_text: bool = False, seat_need: str | None = None,
            language: str | None = None) -> Booking:
    """A candidate books a place under the program's rules (window, one booking at a time, capacity).

    ``language``: the one the candidate is reading the booking pages in, recorded on the booking
    for the sitting; None (staff, the simulated year) records the program's default language."""
    _check_seat_need(seat_need)
    with unit_of_work(session):
        # The candidate's lock makes simultaneous bookings of one candidate queue, and each see the one before.
        candidate = locked_one(session, Candidate, candidate_id)
        if candidate is None:
            raise NotFound("There is no such candidate.")
        slot = _slot_for_booking(session, slot_id)
        _check_bookable(program, slot, now)
        _close_stale(session, program, candidate.id, now)
        if upcoming_booking(session, candidate.id, program, now) is not None:
            raise Conflict("You already have a booking; move it instead of booking again.")
        booking = book(session, candidate, slot, large_text=large_text, seat_need=seat_need,
                       program_code=program.code, language=language or default_language(program))
        _booking_record(actor, session, "book", booking, now, reason=reason, details={"slot_id": slot.id})
    return booking


def move(session: Session, program: ExamProgram, booking_id: int, slot_id: int, now: dt.datetime, *,
         actor: Actor, reason: str = "") -> Booking:
    """Move a booking to another slot (any centre), keeping its admission code and accommodations."""
    def change() -> Booking:
        booking = locked_booking(session, booking_id, actor, slot_ids=(slot_id,))
        allowed = allowance(program, booking, now)
        allowed.refuse_move()
        target = _slot_for_booking(session, slot_id)
        if target.id == booking.slot_id:
            raise InvalidInput("The booking is already for this slot.", field="slot_id")
        _check_bookable(program, target, now)
        limit = add_months(booking.first_date or booking.slot.date, program.booking.move_within_months)
        if target.date > limit:
            raise InvalidInput("A booking can move to a date up to {months} months after the one first booked: "
                               "{limit} at the latest.", field="slot_id",
                               months=program.booking.move_within_months, limit=limit)
        origin = booking.slot_id
        _claim_place(session, target.id)
        _release_place(session, origin)
        booking.slot = target
        booking.seat_id = None
        if not allowed.waived:
            booking.changes += 1
        session.flush()
        _booking_record(actor, session, "move_booking", booking, now, reason=reason,
                        details={"from_slot_id": origin, "to_slot_id": target.id})
        return booking

    return guarded(session, actor, "move_booking", now, change)


def cancel(session: Session, program: ExamProgram, booking_id: int, now: dt.datetime, *, actor: Actor,
           reason: str = "") -> Booking:
    """Cancel a booking under the change rules; its place is freed for others."""
    def change() -> Booking:
        booking = locked_booking(session, booking_id, actor)
        BOOKING.refuse_unless(booking.status, "cancel")
        allowance(program, booking, now).refuse_cancel()
        _release_place(session, booking.slot_id)
        booking.status = BOOKING.target(booking.status, "cancel")
        booking.cancelled_at = now
        booking.seat_id = None
        session.flush()
        _booking_record(actor, session, "cancel_booking", booking, now, reason=reason,
                        details={"slot_id": booking.slot_id})
        return booking

    return guarded(session, actor, "cancel_booking", now, change)


def accommodate(session: Session, admission_code: str, *, actor: Actor, reason: str, now: dt.datetime,
                time_multiplier: float | None = None, large_text: bool | None = None,
                seat_need: str | None | bool = False) -> tuple[Booking, dict]:
    """Record approved accommodations on a booking (operations staff): the booking and what changed
    (``seat_need`` False: unchanged; None: no seat placement)."""
    if time_multiplier is not None:
        _check_multiplier(time_multiplier)
    if seat_need is not False:
        _check_seat_need(seat_need)
    if not reason.strip():
        raise InvalidInput("Give the evidence or decision for the audit trail.", field="reason")
    with unit_of_work(session):
        found = session.scalar(select(Booking.id).where(
            Booking.admission_code == normalise_admission_code(admission_code)))
        if found is None:
            raise NotFound("There is no booking with this admission code.", field="admission_code")
        booking = locked_booking(session, found, actor)
        BOOKING.refuse_unless(booking.status, "accommodate")
        changed: dict = {}
        if time_multiplier is not None and time_multiplier != booking.time_multiplier:
            changed["time_multiplier"] = [booking.time_multiplier, time_multiplier]
            booking.time_multiplier = time_multiplier
        if large_text is not None and large_text != booking.large_text:
            changed["large_text"] = [booking.large_text, large_text]
            booking.large_text = large_text
        if seat_need is not False and seat_need != booking.seat_need:
            changed["seat_need"] = [booking.seat_need, seat_need]
            booking.seat_need = seat_need
        if not changed:
            raise InvalidInput("Nothing to change: the booking has these accommodations already, or none were given.")
        _booking_record(actor, session, "accommodate", booking, now, reason=reason, details=changed)
    return booking, changed


# ---- the centre's side -----------------------------------------------------------

def find_by_admission(session: Session, admission_code: str, date_of_birth: dt.date) -> Booking | None:
    """The booking with this code whose candidate has this date of birth."""
    booking = session.scalar(
        select(Booking)
        .options(joinedload(Booking.candidate), joinedload(Booking.slot).joinedload(Slot.centre))
        .where(Booking.admission_code == normalise_admission_code(admission_code))
    )
    if booking is None or booking.candidate.date_of_birth != date_of_birth:
        return None
    return booking


def free_seats(session: Session, booking: Booking) -> list[Seat]:
    """Active seats of the booking's centre with no other active booking in its slot."""
    taken = select(Booking.seat_id).where(Booking.slot_id == booking.slot_id, Booking.status.in_(ACTIVE_BOOKING),
                                          Booking.seat_id.is_not(None), Booking.id != booking.id)
    return list(session.scalars(
        select(Seat).where(Seat.centre_id == booking.slot.centre_id, Seat.active.is_(True), Seat.id.not_in(taken))
        .order_by(Seat.label)
    ))


def assign_seat(session: Session, booking: Booking, seat_id: int | None) -> Seat:
    """Give the booking a seat: the one asked for, or the first free one that meets its seat placement."""
    seats = free_seats(session, booking)
    if seat_id is None:
        fitting = [s for s in seats if s.offers(booking.seat_need)]
        if not fitting:
            if booking.seat_need:
                raise Conflict("No free seat with the placement asked for ({need}) is left at this centre for "
                               "this slot.", need=booking.seat_need.replace("_", " "))
            raise Conflict("No free seat is left at this centre for this slot.")
        seat = fitting[0]
    else:
        seat = next((s for s in seats if s.id == seat_id), None)
        if seat is None:
            raise Conflict("That seat is taken, out of service or not at this centre; choose another.",
                           field="seat_id")
    booking.seat_id = seat.id
    try:
        session.flush()
    except IntegrityError:
        # Another proctor seated someone there since we looked; the caller's transaction is void.
        raise Conflict("That seat was just given to someone else; choose another.", field="seat_id") from None
    return seat


def check_in(session: Session, booking_id: int, now: dt.datetime, *, actor: Actor, identity_verified: bool,
             seat_id: int | None = None, reason: str = "") -> Booking:
    """Record that the candidate is here and their photo ID matches the booking, and seat them.
    Checking in a booking already checked in changes nothing."""
    def change() -> Booking:
        booking = locked_booking(session, booking_id, actor)
        if not identity_verified:
            raise InvalidInput("Confirm that the photo ID matches the booking before checking in.",
                               field="identity_verified")
        if booking.status == BookingStatus.CHECKED_IN:
            return booking
        status = BOOKING.target(booking.status, "check_in")
        seat = booking.seat if booking.seat_id is not None and seat_id is None else assign_seat(session, booking,
                                                                                               seat_id)
        booking.status = status
        booking.checked_in_at = now
        booking.checked_in_by = actor.account_id
        session.flush()
        _booking_record(actor, session, "check_in", booking, now, reason=reason,
                        details={"candidate": booking.candidate.name, "identity_verified": True,
                                 "seat": seat.label})
        return booking

    return guarded(session, actor, "check_in", now, change)


def no_show(session: Session, booking_id: int, now: dt.datetime, *, actor: Actor, reason: str = "") -> Booking:
    """Record that the candidate did not come (once the slot has started); their place is given back."""
    def change() -> Booking:
        booking = locked_booking(session, booking_id, actor)
        status = BOOKING.target(booking.status, "no_show")
        if now < booking.slot.starts_at:
            raise Conflict("A candidate is a no-show only once the slot has started.")
        _release_place(session, booking.slot_id)
        booking.status = status
        booking.seat_id = None
        session.flush()
        _booking_record(actor, session, "no_show", booking, now, reason=reason,
                        details={"candidate": booking.candidate.name})
        return booking

    return guarded(session, actor, "no_show", now, change)


# ---- the counters against the bookings -------------------------------------------------

@dataclass(frozen=True)
class Drift:
    slot_id: int
    counted: int  # the slot's counter
    holding: int  # bookings holding a place in it


def slot_drift(session: Session, centre_ids: list[int] | None = None) -> list[Drift]:
    """Every slot whose counter differs from the bookings that hold a place in it (none, normally)."""
    holding = (select(Booking.slot_id, func.count(Booking.id).label("n"))
               .where(Booking.status.in_(ACTIVE_BOOKING)).group_by(Booking.slot_id).subquery())
    query = (select(Slot.id, Slot.booked, func.coalesce(holding.c.n, 0))
             .outerjoin(holding, holding.c.slot_id == Slot.id)
             .where(Slot.booked != func.coalesce(holding.c.n, 0)).order_by(Slot.id))
    if centre_ids is not None:
        query = query.where(Slot.centre_id.in_(centre_ids))
    return [Drift(*row) for row in session.execute(query)]


def repair_drift(session: Session, *, actor: Actor, reason: str, now: dt.datetime,
                 centre_ids: list[int] | None = None) -> list[Drift]:
    """Set every drifted slot's counter to the bookings holding a place in it, each repair audited."""
    with unit_of_work(session):
        found = slot_drift(session, centre_ids)
        slots = locked(session, Slot, [d.slot_id for d in found])
        repaired = []
        for drift in slot_drift(session, centre_ids):  # again, under the locks
            slot = slots.get(drift.slot_id)
            if slot is None:
                continue
            # The counter may exceed the capacity no longer, e.g. after seats were taken out of service.
            slot.booked = drift.holding
            actor.record(session, "repair_slot_count", f"slot:{slot.id}", now=now, centre_id=slot.centre_id,
                         reason=reason, details={"counted": drift.counted, "holding": drift.holding})
            repaired.append(drift)
    return repaired
