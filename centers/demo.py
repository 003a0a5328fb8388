"""Demo data for a first look: about 100 centres, their staff, and candidates booked for today."""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from centers.accounts import create_staff
from centers.bookings import book
from centers.calendar import extend_calendar
from centers.candidates import by_email
from centers.models import Booking, BookingStatus, Candidate, Centre, Room, Seat, Slot, SlotStatus, StaffAccount
from centers.passwords import hash_password
from persistence.unit_of_work import unit_of_work

if TYPE_CHECKING:
    from itembank.program import ExamProgram

SAMPLE_CENTRES = Path(__file__).with_name("sample") / "centres.json"
DEMO_CENTRE = "TKY-SJK"
DEMO_PROCTOR = ("proctor", "proctor-demo-pass")
# A proctor of another centre, to see that each console shows its own centre only.
DEMO_OTHER_PROCTOR = ("proctor-osaka", "proctor-demo-pass", "OSK-UME")
DEMO_PSYCHOMETRICIAN = ("psychometrician", "psychometrician-demo-pass")
# A registered candidate, with no booking at first, for the booking pages.
DEMO_APPLICANT = ("candidate@example.com", "candidate-demo-pass")
DEMO_DATE_OF_BIRTH = dt.date(2000, 4, 1)
# A demo booking is offered while its slot started less than this long ago.
FRESH_FOR = dt.timedelta(minutes=20)


@dataclass(frozen=True)
class DemoLogin:
    name: str
    admission_code: str
    date_of_birth: dt.date
    checked_in: bool


def sample_centres() -> list[dict]:
    return json.loads(SAMPLE_CENTRES.read_text(encoding="utf-8"))["centres"]


def _seat_layout(rooms: int, seats: int) -> list[tuple[str, list[tuple[str, str]]]]:
    """Rooms A, B, ... each with its share of seats; the first seat of a room is wheelchair
    accessible near the exit, its first row (six seats) at the front."""
    layout = []
    for r in range(rooms):
        name = chr(ord("A") + r)
        count = seats // rooms + (1 if r < seats % rooms else 0)
        room = []
        for n in range(1, count + 1):
            features = (["wheelchair", "near_exit"] if n == 1 else []) + (["front"] if n <= 6 else [])
            room.append((f"{name}-{n:02d}", " ".join(features)))
        layout.append((name, room))
    return layout


def load_centres(session: Session, entries: list[dict]) -> int:
    """Add the centres not yet present, with their rooms and seats; returns how many were added.

    A centre already present keeps its seats; its names, prefecture and region are brought up to date.
    """
    existing = {c.code: c for c in session.scalars(select(Centre).where(Centre.code.in_([e["code"] for e in entries])))}
    added = 0
    for entry in entries:
        centre = existing.get(entry["code"])
        if centre is None:
            centre = Centre(code=entry["code"])
            session.add(centre)
            added += 1
        centre.name, centre.prefecture, centre.region = entry["name"], entry["prefecture"], entry["region"]
        centre.name_en = entry.get("name_en")
        centre.city, centre.open_weekdays, centre.active = entry["city"], entry["open_weekdays"], True
        if centre.id is None:
            for room_name, seats in _seat_layout(entry["rooms"], entry["seats"]):
                room = Room(name=room_name)
                centre.rooms.append(room)
                for label, features in seats:
                    centre.seats.append(Seat(label=label, features=features, room=room))
    session.flush()
    return added


def load_demo_centres(session: Session) -> int:
    """The ~100 sample centres, and their demo staff (safe to run again)."""
    with unit_of_work(session):
        added = load_centres(session, sample_centres())
        ensure_demo_centre(session)
    return added


def load_sample_centres(session: Session, program: ExamProgram, today: dt.date, days: int) -> tuple[int, int]:
    """The sample centres with their demo staff, and ``days`` of calendar from ``today``:
    how many centres and slots were added (safe to run again)."""
    with unit_of_work(session):
        return load_demo_centres(session), extend_calendar(session, program, today, days)


def ensure_demo_centre(session: Session) -> Centre:
    """The demo centre, its proctor, a proctor of another centre, the psychometrician and a registered candidate
    (in the caller's unit of work)."""
    load_centres(session, [e for e in sample_centres() if e["code"] in (DEMO_CENTRE, DEMO_OTHER_PROCTOR[2])])
    centre = session.scalar(select(Centre).where(Centre.code == DEMO_CENTRE))
    other = session.scalar(select(Centre).where(Centre.code == DEMO_OTHER_PROCTOR[2]))
    if session.scalar(select(StaffAccount).where(StaffAccount.username == DEMO_OTHER_PROCTOR[0])) is None:
        create_staff(session, username=DEMO_OTHER_PROCTOR[0], display_name="Demo Proctor (Osaka)",
                     password=DEMO_OTHER_PROCTOR[1], role="proctor", centre_id=other.id)
    if session.scalar(select(Candidate).where(by_email(DEMO_APPLICANT[0]))) is None:
        session.add(Candidate(name="Demo Applicant", date_of_birth=dt.date(1998, 7, 7), email=DEMO_APPLICANT[0],
                              password_hash=hash_password(DEMO_APPLICANT[1]), occupation="student"))
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
    with unit_of_work(session):
        return _demo_candidates(session, timezone, now, sitting_started)


def _demo_candidates(session: Session, timezone: str, now: dt.datetime, sitting_started: set[int]) -> list[DemoLogin]:
    centre = ensure_demo_centre(session)
    fresh = session.scalars(
        select(Booking).join(Booking.slot).join(Booking.candidate)
        .where(Slot.centre_id == centre.id, Slot.kind == "demo", Slot.starts_at > now - FRESH_FOR,
               Slot.starts_at <= now)
        .order_by(Booking.id)
    ).all()
    # Names are encrypted: the demo's own candidates are told apart after decryption.
    fresh = [b for b in fresh if b.candidate.name.startswith("Demo Candidate")]
    usable = [b for b in fresh if b.id not in sitting_started]
    checked_in = [b for b in usable if b.status == BookingStatus.CHECKED_IN]
    booked = [b for b in usable if b.status == BookingStatus.BOOKED]
    if not checked_in or not booked:
        slot = _demo_slot(session, centre, timezone, now)
        taken = session.scalar(select(func.count(Booking.id)).join(Booking.slot)
                               .where(Slot.centre_id == centre.id, Slot.kind == "demo")) or 0
        seats = [s.id for s in centre.seats]
        if not checked_in:
            booking = book(session, _candidate(session, taken + 1), slot, seat_id=seats[taken % len(seats)])
            booking.status, booking.checked_in_at = BookingStatus.CHECKED_IN, now
            checked_in, taken = [booking], taken + 1
        if not booked:
            booked = [book(session, _candidate(session, taken + 1), slot, seat_id=seats[taken % len(seats)])]
        session.flush()
    return [
        DemoLogin(b.candidate.name, b.admission_code, b.candidate.date_of_birth, b.status == BookingStatus.CHECKED_IN)
        for b in (checked_in[0], booked[0])
    ]


def demo_applicant_booking(session: Session, program: ExamProgram, now: dt.datetime) -> Booking | None:
    """The demo applicant's booking still to come (the one the booking pages show), if they have made one."""
    from centers.bookings import upcoming_booking

    applicant = session.scalar(select(Candidate.id).where(by_email(DEMO_APPLICANT[0])))
    return upcoming_booking(session, applicant, program, now) if applicant is not None else None


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
                    starts_at=start, capacity=len(centre.seats), booked=0, status=SlotStatus.OPEN)
        session.add(slot)
    return slot


def demo_seat_link(session: Session, now: dt.datetime) -> tuple[str, str]:
    """A one-time link that enrols a browser as a seat of the demo centre, issued by the demo proctor
    (audited like any enrolment): the link's code and the seat's label. A seat with no PC yet is
    chosen, so a browser enrolled before keeps working."""
    from centers import seats
    from centers.accounts import Actor
    from centers.models import SeatEnrolment

    with unit_of_work(session):
        centre = ensure_demo_centre(session)
    held = set(session.scalars(select(SeatEnrolment.seat_id).where(SeatEnrolment.centre_id == centre.id,
                                                                    SeatEnrolment.revoked_at.is_(None),
                                                                    SeatEnrolment.token_hash.is_not(None))))
    active = [s for s in centre.seats if s.active]
    seat = next((s for s in active if s.id not in held), active[0])
    proctor = session.scalar(select(StaffAccount).where(StaffAccount.username == DEMO_PROCTOR[0]))
    code, enrolled = seats.issue_enrolment_link(session, seat.id, actor=Actor.staff(proctor),
                                                reason="the demo's seat PC", now=now)
    return code, enrolled.seat_label
