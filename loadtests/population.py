"""The people a load run needs: one slot at every centre, its candidates checked in and seated,
a proctor per centre, and applicants for the booking rush.

Written straight through the models (not through the booking pages): the load run measures
the sitting, not how fast we can fill a calendar. Every candidate, proctor and applicant gets
credentials the locust users read from the JSON file this writes.
"""
from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from centers.bookings import new_admission_code
from centers.models import Booking, Candidate, Centre, Seat, SeatEnrolment, Slot, StaffAccount
from centers.seats import credential_hash
from delivery.web.seats import seat_cookie_value
from itembank.program import ExamProgram

DATE_OF_BIRTH = dt.date(1999, 9, 9)
PROCTOR_PASSWORD = "load-proctor-pass"
APPLICANT_PASSWORD = "load-applicant-pass"
SLOT_KIND = "load"


@dataclass(frozen=True)
class Population:
    slot_starts_at: str  # ISO 8601, UTC: the minute every centre starts
    candidates: list[dict]  # {"admission_code", "date_of_birth", "centre", "seat_cookie"}
    proctors: list[dict]  # {"username", "password", "slot_id"}
    applicants: list[dict]  # {"email", "password"}
    booking_slot_ids: list[int]  # open slots the booking rush books into

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def read(cls, path: Path) -> "Population":
        return cls(**json.loads(path.read_text()))


def _seats_at_least(session: Session, centre: Centre, count: int) -> list[Seat]:
    """The centre's seats, with load-test seats added until there are ``count``."""
    seats = list(centre.seats)
    for n in range(len(seats), count):
        seat = Seat(label=f"L-{n + 1:03d}", features="")
        centre.seats.append(seat)
        seats.append(seat)
    return seats


def _seat_pc(session: Session, seat: Seat, now: dt.datetime, secret_key: str | None) -> str:
    """A PC enrolled as this seat, as a proctor's enrolment leaves it: the seat cookie's value the
    candidate's browser presents (empty when the servers' secret key is not known here)."""
    token = secrets.token_urlsafe(32)
    session.add(SeatEnrolment(centre=seat.centre, seat=seat, token_hash=credential_hash(token), enrolled_by="load",
                              created_at=now, claimed_at=now))
    return seat_cookie_value(secret_key, token) if secret_key else ""


def populate(session: Session, program: ExamProgram, *, candidates: int, slot_starts_at: dt.datetime,
             applicants: int = 0, secret_key: str | None = None) -> Population:
    """Book ``candidates`` into one slot per centre starting at ``slot_starts_at``, spread evenly
    over the active centres, all checked in; a proctor per centre; ``applicants`` registered
    candidates without a booking, and the calendar's open slots a week later for them to book.
    Every candidate's seat is an enrolled PC: ``seat_cookie`` is its cookie, signed with
    ``secret_key`` (the servers')."""
    centres = session.scalars(select(Centre).where(Centre.active.is_(True)).order_by(Centre.code)).all()
    if not centres:
        raise RuntimeError("no centres: run `cbt centres load` first")
    zone = ZoneInfo(program.timezone)
    per_centre = -(-candidates // len(centres))
    # One scrypt hash for every load account: hashing is deliberately slow, and the
    # accounts are throwaway; each still signs in through the real check.
    proctor_hash = generate_password_hash(PROCTOR_PASSWORD)
    applicant_hash = generate_password_hash(APPLICANT_PASSWORD)
    now = dt.datetime.now(dt.timezone.utc)
    stamp = slot_starts_at.strftime("%H%M%S")
    # The booking rush books a week ahead, into the calendar's ordinary slots.
    rush_day = slot_starts_at.astimezone(zone).date() + dt.timedelta(days=7)
    kinds = [kind.kind for kind in program.booking.slots]
    people, proctors, booking_slots = [], [], []
    remaining = candidates
    for centre in centres:
        seats = _seats_at_least(session, centre, per_centre)
        slot = Slot(centre=centre, date=slot_starts_at.astimezone(zone).date(), kind=SLOT_KIND,
                    starts_at=slot_starts_at, capacity=len(seats), booked=0, status="open")
        session.add(slot)
        here = min(per_centre, remaining)
        remaining -= here
        for n in range(here):
            candidate = Candidate(name=f"Load Candidate {centre.code} {n + 1}", date_of_birth=DATE_OF_BIRTH,
                                  occupation="working", company_type="it")
            booking = Booking(candidate=candidate, slot=slot, seat=seats[n], admission_code=new_admission_code(),
                              status="checked_in", checked_in_at=now, first_date=slot.date, changes=0)
            session.add(booking)
            people.append({"admission_code": booking.admission_code, "date_of_birth": DATE_OF_BIRTH.isoformat(),
                           "centre": centre.code, "seat_cookie": _seat_pc(session, seats[n], now, secret_key)})
        slot.booked = here
        username = f"load-proctor-{centre.code.lower()}-{stamp}"
        session.add(StaffAccount(username=username, display_name=f"Load proctor {centre.code}",
                                 password_hash=proctor_hash, role="proctor", centre=centre))
        proctors.append({"username": username, "password": PROCTOR_PASSWORD, "centre": centre.code, "slot": slot})
        if applicants:
            booking_slots.extend(session.scalars(
                select(Slot.id).where(Slot.centre_id == centre.id, Slot.date == rush_day, Slot.status == "open",
                                      Slot.kind.in_(kinds))))
    accounts = []
    for n in range(applicants):
        email = f"load-applicant-{stamp}-{n}@example.com"
        session.add(Candidate(name=f"Load Applicant {n}", date_of_birth=DATE_OF_BIRTH, email=email,
                              password_hash=applicant_hash, occupation="student"))
        accounts.append({"email": email, "password": APPLICANT_PASSWORD})
    session.flush()
    for proctor in proctors:
        proctor["slot_id"] = proctor.pop("slot").id
    return Population(slot_starts_at.isoformat(), people, proctors, accounts, booking_slots)
