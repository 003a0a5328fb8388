"""Bookings as the centre sees them: finding, checking in, the day's list."""
from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from centers.models import Booking, Candidate, Slot, StaffAccount

# No 0/O or 1/I/L: the code is read off a paper slip and typed in.
ADMISSION_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


class BookingError(Exception):
    """An action on a booking that is not allowed; ``status`` is the HTTP status it maps to."""

    status = 409

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status


def new_admission_code() -> str:
    return "-".join("".join(secrets.choice(ADMISSION_ALPHABET) for _ in range(4)) for _ in range(3))


def normalise_admission_code(text: str) -> str:
    compact = "".join(ch for ch in text.upper() if ch.isalnum())
    return "-".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def book(session: Session, candidate: Candidate, slot: Slot, *, seat_id: int | None = None,
         time_multiplier: float = 1.0) -> Booking:
    booking = Booking(
        candidate=candidate, slot=slot, seat_id=seat_id, admission_code=new_admission_code(),
        time_multiplier=time_multiplier,
    )
    session.add(booking)
    return booking


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


def booking_at_centre(session: Session, booking_id: int, proctor: StaffAccount) -> Booking:
    """The booking, if it belongs to the proctor's centre; refused otherwise."""
    booking = session.get(Booking, booking_id, options=[joinedload(Booking.slot), joinedload(Booking.candidate)])
    if booking is None:
        raise BookingError("no such booking", status=404)
    if proctor.centre_id is None or booking.slot.centre_id != proctor.centre_id:
        raise BookingError("this booking is at another centre", status=403)
    return booking


def check_in(session: Session, booking: Booking, proctor: StaffAccount, now: dt.datetime, *,
             identity_verified: bool) -> None:
    """Record that the candidate is here and their photo ID matches the booking."""
    if not identity_verified:
        raise BookingError("confirm that the photo ID matches the booking before checking in", status=422)
    if booking.status == "checked_in":
        return
    if booking.status != "booked":
        raise BookingError(f"a booking that is {booking.status.replace('_', ' ')} cannot be checked in")
    booking.status = "checked_in"
    booking.checked_in_at = now
    booking.checked_in_by = proctor.id
