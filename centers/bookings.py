"""Bookings: taking a place under the program's rules, moving, cancelling, checking in.

A place is taken with one guarded UPDATE of the slot's counter
(``booked = booked + 1 WHERE booked < capacity``): on PostgreSQL the row lock
makes concurrent bookings of one slot wait for each other and re-check the
condition, on SQLite writers are serialised, and the slot's check constraint
refuses overbooking whatever happens. Seats are given at check-in (or directly
by staff); a partial unique index keeps one active booking per seat per slot.
"""
from __future__ import annotations

import calendar as _calendar
import datetime as dt
import secrets
from typing import TYPE_CHECKING

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.util import identity_key

from centers.calendar import booking_window, local_today
from centers.models import ACTIVE_BOOKING, SEAT_FEATURES, Booking, Candidate, Seat, Slot, StaffAccount
from persistence.errors import Conflict, InvalidInput, NotFound, Refused

if TYPE_CHECKING:
    from itembank.program import ExamProgram

# No 0/O or 1/I/L: the code is read off a paper slip and typed in.
ADMISSION_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def new_admission_code() -> str:
    return "-".join("".join(secrets.choice(ADMISSION_ALPHABET) for _ in range(4)) for _ in range(3))


def normalise_admission_code(text: str) -> str:
    compact = "".join(ch for ch in text.upper() if ch.isalnum())
    return "-".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later, or the month's last day when it has no such day."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return day.replace(year=year, month=month, day=min(day.day, _calendar.monthrange(year, month)[1]))


# ---- places in a slot ----------------------------------------------------------

def _claim_place(session: Session, slot_id: int) -> None:
    """Take one place in the slot, or refuse: one statement, safe under concurrency."""
    taken = session.execute(
        update(Slot).where(Slot.id == slot_id, Slot.status == "open", Slot.booked < Slot.capacity)
        .values(booked=Slot.booked + 1).execution_options(synchronize_session=False)
    ).rowcount
    if taken != 1:
        slot = session.get(Slot, slot_id, populate_existing=True)
        if slot is None:
            raise NotFound("There is no such slot.")
        if slot.status != "open":
            raise Conflict("This slot is closed; please choose another.")
        raise Conflict("This slot has just been fully booked; please choose another.")
    _refresh(session, slot_id)


def _release_place(session: Session, slot_id: int) -> None:
    session.execute(update(Slot).where(Slot.id == slot_id, Slot.booked > 0).values(booked=Slot.booked - 1)
                    .execution_options(synchronize_session=False))
    _refresh(session, slot_id)


def _refresh(session: Session, slot_id: int) -> None:
    """Let a loaded slot read its counter again after the UPDATE that bypassed the ORM."""
    slot = session.identity_map.get(identity_key(Slot, slot_id))
    if slot is not None:
        session.expire(slot, ["booked", "status"])


def book(session: Session, candidate: Candidate, slot: Slot, *, seat_id: int | None = None,
         time_multiplier: float = 1.0, large_text: bool = False, seat_need: str | None = None) -> Booking:
    """Give the candidate a place in the slot (staff, demo data and tests: no calendar rules).

    The place is counted against the slot's capacity like any other; refused when full.
    """
    if seat_need is not None and seat_need not in SEAT_FEATURES:
        raise InvalidInput(f"unknown seat placement {seat_need!r}; one of {', '.join(SEAT_FEATURES)}")
    if not 1.0 <= time_multiplier <= 3.0:
        raise InvalidInput("the time multiplier must be between 1.0 and 3.0")
    if slot.id is None:
        session.add(slot)
        session.flush()
    _claim_place(session, slot.id)
    booking = Booking(
        candidate=candidate, slot=slot, seat_id=seat_id, admission_code=new_admission_code(),
        time_multiplier=time_multiplier, large_text=large_text, seat_need=seat_need, first_date=slot.date,
        changes=0,
    )
    session.add(booking)
    session.flush()
    return booking


def _slot_for_booking(session: Session, slot_id: int) -> Slot:
    slot = session.get(Slot, slot_id, options=[joinedload(Slot.centre)])
    if slot is None:
        raise NotFound("There is no such slot.")
    return slot


def _check_bookable(program: ExamProgram, slot: Slot, now: dt.datetime) -> None:
    first, last = booking_window(program, now)
    if slot.kind not in {t.kind for t in program.booking.slots}:
        raise InvalidInput("This slot is not open for booking.")
    if slot.date < first:
        raise InvalidInput(f"Bookings for {slot.date:%d %B %Y} have closed; the earliest date is {first:%d %B %Y}.")
    if slot.date > last:
        raise InvalidInput(f"The calendar is open until {last:%d %B %Y}.")


def upcoming_booking(session: Session, candidate_id: int, program: ExamProgram, now: dt.datetime) -> Booking | None:
    """The candidate's active booking for today or later, if any (one at a time)."""
    return session.scalar(
        select(Booking).join(Booking.slot)
        .where(Booking.candidate_id == candidate_id, Booking.status.in_(ACTIVE_BOOKING),
               Slot.date >= local_today(program, now))
        .order_by(Slot.starts_at).limit(1)
    )


def reserve(session: Session, program: ExamProgram, candidate: Candidate, slot_id: int, now: dt.datetime, *,
            large_text: bool = False, seat_need: str | None = None) -> Booking:
    """A candidate books a place under the program's rules (window, one booking at a time, capacity)."""
    slot = _slot_for_booking(session, slot_id)
    _check_bookable(program, slot, now)
    if upcoming_booking(session, candidate.id, program, now) is not None:
        raise Conflict("You already have a booking; move it instead of booking again.")
    return book(session, candidate, slot, large_text=large_text, seat_need=seat_need)


def _check_changeable(program: ExamProgram, booking: Booking, now: dt.datetime, action: str) -> bool:
    """Refuse a move or cancellation the rules forbid; True if the slot was closed (rules waived)."""
    if booking.status != "booked":
        raise Conflict(f"A booking that is {booking.status.replace('_', ' ')} cannot be {action}.")
    if booking.slot.status == "closed":
        return True
    deadline = booking.slot.date - dt.timedelta(days=program.booking.change_until_days_before)
    if local_today(program, now) > deadline:
        raise Conflict(f"Bookings can be {action} until {program.booking.change_until_days_before} days before "
                           f"the sitting; the last day for this one was {deadline:%d %B %Y}.")
    return False


def move(session: Session, program: ExamProgram, booking: Booking, slot_id: int, now: dt.datetime) -> Booking:
    """Move a booking to another slot (any centre), keeping its admission code and accommodations."""
    waived = _check_changeable(program, booking, now, "moved")
    if not waived and booking.changes >= program.booking.max_changes:
        raise Conflict(f"This booking has been moved {booking.changes} times, the most allowed.")
    target = _slot_for_booking(session, slot_id)
    if target.id == booking.slot_id:
        raise InvalidInput("The booking is already for this slot.")
    _check_bookable(program, target, now)
    limit = add_months(booking.first_date or booking.slot.date, program.booking.move_within_months)
    if target.date > limit:
        raise InvalidInput(f"A booking can move to a date up to {program.booking.move_within_months} months after "
                           f"the one first booked: {limit:%d %B %Y} at the latest.")
    _claim_place(session, target.id)
    _release_place(session, booking.slot_id)
    booking.slot = target
    booking.seat_id = None
    if not waived:
        booking.changes += 1
    session.flush()
    return booking


def cancel(session: Session, program: ExamProgram, booking: Booking, now: dt.datetime) -> Booking:
    """Cancel a booking under the change rules; its place is freed for others."""
    _check_changeable(program, booking, now, "cancelled")
    _release_place(session, booking.slot_id)
    booking.status = "cancelled"
    booking.cancelled_at = now
    booking.seat_id = None
    session.flush()
    return booking


def set_accommodations(session: Session, booking: Booking, *, time_multiplier: float | None = None,
                       large_text: bool | None = None, seat_need: str | None | bool = False) -> dict:
    """Change a booking's accommodations (operations staff); returns what changed, for the audit trail."""
    changed: dict = {}
    if time_multiplier is not None:
        if not 1.0 <= time_multiplier <= 3.0:
            raise InvalidInput("the time multiplier must be between 1.0 and 3.0")
        changed["time_multiplier"] = [booking.time_multiplier, time_multiplier]
        booking.time_multiplier = time_multiplier
    if large_text is not None:
        changed["large_text"] = [booking.large_text, large_text]
        booking.large_text = large_text
    if seat_need is not False:
        if seat_need is not None and seat_need not in SEAT_FEATURES:
            raise InvalidInput(f"unknown seat placement {seat_need!r}; one of {', '.join(SEAT_FEATURES)}")
        changed["seat_need"] = [booking.seat_need, seat_need]
        booking.seat_need = seat_need
    return changed


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


def bookings_for_centre_day(session: Session, centre_id: int, day: dt.date) -> list[Booking]:
    return list(
        session.scalars(
            select(Booking)
            .join(Booking.slot)
            .options(joinedload(Booking.candidate), joinedload(Booking.slot), joinedload(Booking.seat))
            .where(Slot.centre_id == centre_id, Slot.date == day, Booking.status != "cancelled")
            .order_by(Slot.starts_at, Booking.id)
        )
    )


class ForeignCentre(Refused):
    """A proctor reached for a booking of another centre."""

    def __init__(self, booking_id: int, centre_id: int | None):
        super().__init__("This booking is at another centre.")
        self.booking_id = booking_id
        self.centre_id = centre_id


def booking_at_centre(session: Session, booking_id: int, proctor: StaffAccount) -> Booking:
    """The booking, if it belongs to the proctor's centre; refused otherwise."""
    booking = session.get(Booking, booking_id, options=[joinedload(Booking.slot), joinedload(Booking.candidate)])
    if booking is None:
        raise NotFound("no such booking")
    if proctor.centre_id is None or booking.slot.centre_id != proctor.centre_id:
        raise ForeignCentre(booking.id, booking.slot.centre_id)
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
            need = f" with {booking.seat_need.replace('_', ' ')}" if booking.seat_need else ""
            raise Conflict(f"No free seat{need} is left at this centre for this slot.")
        seat = fitting[0]
    else:
        seat = next((s for s in seats if s.id == seat_id), None)
        if seat is None:
            raise Conflict("That seat is taken, out of service or not at this centre; choose another.")
    booking.seat_id = seat.id
    try:
        session.flush()
    except IntegrityError:
        # Another proctor seated someone there since we looked; the caller's transaction is void.
        raise Conflict("That seat was just given to someone else; choose another.") from None
    return seat


def check_in(session: Session, booking: Booking, proctor: StaffAccount, now: dt.datetime, *,
             identity_verified: bool, seat_id: int | None = None) -> None:
    """Record that the candidate is here and their photo ID matches the booking, and seat them."""
    if not identity_verified:
        raise InvalidInput("confirm that the photo ID matches the booking before checking in")
    if booking.status == "checked_in":
        return
    if booking.status != "booked":
        raise Conflict(f"a booking that is {booking.status.replace('_', ' ')} cannot be checked in")
    if booking.seat_id is None or seat_id is not None:
        assign_seat(session, booking, seat_id)
    booking.status = "checked_in"
    booking.checked_in_at = now
    booking.checked_in_by = proctor.id


def active_count(session: Session, slot_id: int) -> int:
    return session.scalar(select(func.count(Booking.id)).where(Booking.slot_id == slot_id,
                                                                 Booking.status.in_(ACTIVE_BOOKING))) or 0
