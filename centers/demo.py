"""Demo data for a first look: a centre, its staff, and candidates booked for today."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from centers.accounts import create_staff
from centers.bookings import book
from centers.models import Booking, Candidate, Centre, Seat, Slot, StaffAccount

DEMO_CENTRE = "TKY-SJK"
DEMO_PROCTOR = ("proctor", "proctor-demo-pass")
DEMO_PSYCHOMETRICIAN = ("psychometrician", "psychometrician-demo-pass")
DEMO_DATE_OF_BIRTH = dt.date(2000, 4, 1)
# A demo booking is offered while its slot started less than this long ago.
FRESH_FOR = dt.timedelta(minutes=20)


@dataclass(frozen=True)
class DemoLogin:
    name: str
    admission_code: str
    date_of_birth: dt.date
    checked_in: bool


def ensure_demo_centre(session: Session) -> Centre:
    centre = session.scalar(select(Centre).where(Centre.code == DEMO_CENTRE))
    if centre is None:
        centre = Centre(code=DEMO_CENTRE, name="Shinjuku Test Centre", prefecture="Tokyo")
        centre.seats = [Seat(label=f"A-{n:02d}") for n in range(1, 25)]
        session.add(centre)
        session.flush()
    if session.scalar(select(StaffAccount).where(StaffAccount.username == DEMO_PROCTOR[0])) is None:
        create_staff(session, username=DEMO_PROCTOR[0], display_name="Demo Proctor", password=DEMO_PROCTOR[1],
                     role="proctor", centre_id=centre.id)
    if session.scalar(select(StaffAccount).where(StaffAccount.username == DEMO_PSYCHOMETRICIAN[0])) is None:
        create_staff(session, username=DEMO_PSYCHOMETRICIAN[0], display_name="Demo Psychometrician",
                     password=DEMO_PSYCHOMETRICIAN[1], role="psychometrician")
    return centre


def ensure_demo_candidates(session: Session, timezone: str, now: dt.datetime, *,
                           sitting_started: set[int]) -> list[DemoLogin]:
    """Two fresh demo bookings for a slot starting now: one checked in, one for the proctor to check in.

    ``sitting_started`` holds booking ids whose sitting has begun; those are not offered again.
    """
    centre = ensure_demo_centre(session)
    fresh = session.scalars(
        select(Booking).join(Booking.slot).join(Booking.candidate)
        .where(Slot.centre_id == centre.id, Slot.kind == "demo", Slot.starts_at > now - FRESH_FOR,
               Slot.starts_at <= now, Candidate.name.like("Demo Candidate%"))
        .order_by(Booking.id)
    ).all()
    usable = [b for b in fresh if b.id not in sitting_started]
    checked_in = [b for b in usable if b.status == "checked_in"]
    booked = [b for b in usable if b.status == "booked"]
    if not checked_in or not booked:
        slot = _demo_slot(session, centre, timezone, now)
        taken = session.scalar(select(func.count(Candidate.id)).where(Candidate.name.like("Demo Candidate%"))) or 0
        seats = [s.id for s in centre.seats]
        if not checked_in:
            booking = book(session, _candidate(session, taken + 1), slot, seat_id=seats[taken % len(seats)])
            booking.status, booking.checked_in_at = "checked_in", now
            checked_in, taken = [booking], taken + 1
        if not booked:
            booked = [book(session, _candidate(session, taken + 1), slot, seat_id=seats[taken % len(seats)])]
        session.flush()
    return [
        DemoLogin(b.candidate.name, b.admission_code, b.candidate.date_of_birth, b.status == "checked_in")
        for b in (checked_in[0], booked[0])
    ]


def _candidate(session: Session, number: int) -> Candidate:
    candidate = Candidate(name=f"Demo Candidate {number}", date_of_birth=DEMO_DATE_OF_BIRTH,
                          occupation="working", company_type="it")
    session.add(candidate)
    return candidate


def _demo_slot(session: Session, centre: Centre, timezone: str, now: dt.datetime) -> Slot:
    start = now.replace(second=0, microsecond=0)
    slot = session.scalar(select(Slot).where(Slot.centre_id == centre.id, Slot.starts_at == start))
    if slot is None:
        slot = Slot(centre=centre, date=start.astimezone(ZoneInfo(timezone)).date(), kind="demo",
                    starts_at=start, capacity=len(centre.seats))
        session.add(slot)
    return slot
