"""Building blocks for tests: a centre with a booking, CSRF-aware requests."""
from __future__ import annotations

import datetime as dt
import re
import secrets
import uuid
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import select

from centers.accounts import create_staff
from centers.bookings import book
from centers.models import Booking, Candidate, Centre, Seat, SeatEnrolment, Slot
from centers.seats import credential_hash


@dataclass
class Booked:
    centre_id: int
    booking_id: int
    admission_code: str
    date_of_birth: dt.date
    proctor: str
    password: str = "proctor-test-password"
    # The credential of a PC enrolled as a seat of the booking's centre (the seat login needs one).
    seat_token: str = ""


def enrolled_pc(session, seat_id: int, now: dt.datetime) -> str:
    """The credential of a PC enrolled as this seat, as a proctor's enrolment leaves it (made
    directly, like the rest of a test's set-up: no audit event). One PC per seat and test; in the
    caller's transaction (commit it before a request reads it)."""
    pcs = session.info.setdefault("seat_pcs", {})
    if seat_id not in pcs:
        seat = session.get(Seat, seat_id)
        token = secrets.token_urlsafe(32)
        session.add(SeatEnrolment(centre_id=seat.centre_id, seat_id=seat.id, token_hash=credential_hash(token),
                                  enrolled_by="test", created_at=now, claimed_at=now))
        session.flush()
        pcs[seat_id] = token
    return pcs[seat_id]


def enrol_browser(client, booked: Booked) -> None:
    """This test client is the PC of the booking's seat: it carries the seat cookie."""
    from delivery.web.seats import SEAT_COOKIE, seat_cookie_value

    client.set_cookie(SEAT_COOKIE, seat_cookie_value(client.application.secret_key, booked.seat_token))


def booked_candidate(session, program, starts_at: dt.datetime, *, checked_in: bool = True,
                     time_multiplier: float = 1.0, centre_id: int | None = None) -> Booked:
    """A new centre (or the given one), a proctor for it, a slot at ``starts_at`` (the centre's, if it
    has one then) and a candidate booked at its first free seat."""
    tag = uuid.uuid4().hex[:8]
    if centre_id is None:
        centre = Centre(code=f"T-{tag}", name=f"Test Centre {tag}", prefecture="Tokyo")
        centre.seats = [Seat(label=f"S-{n}") for n in range(1, 5)]
        session.add(centre)
        session.flush()
        centre_id = centre.id
    centre = session.get(Centre, centre_id)
    proctor = f"proctor-{tag}"
    create_staff(session, username=proctor, display_name=f"Proctor {tag}", password="proctor-test-password",
                 role="proctor", centre_id=centre_id)
    slot = session.scalar(select(Slot).where(Slot.centre_id == centre_id, Slot.starts_at == starts_at))
    if slot is None:
        slot = Slot(centre_id=centre_id, date=starts_at.astimezone(ZoneInfo(program.timezone)).date(), kind="morning",
                    starts_at=starts_at, capacity=len(centre.seats))
        session.add(slot)
        session.flush()
    taken = set(session.scalars(select(Booking.seat_id).where(Booking.slot_id == slot.id)))
    seat = next(s for s in centre.seats if s.id not in taken)
    candidate = Candidate(name=f"Candidate {tag}", date_of_birth=dt.date(1999, 5, 17))
    booking = book(session, candidate, slot, seat_id=seat.id, time_multiplier=time_multiplier)
    if checked_in:
        booking.status, booking.checked_in_at = "checked_in", starts_at
    seat_token = enrolled_pc(session, seat.id, starts_at)
    session.commit()
    return Booked(centre_id, booking.id, booking.admission_code, candidate.date_of_birth, proctor,
                  seat_token=seat_token)


def csrf_token(client, path: str = "/") -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


def login_candidate(client, booked: Booked):
    """Log the booking's candidate in at their seat's PC (the client then carries its seat cookie)."""
    enrol_browser(client, booked)
    token = csrf_token(client)
    return client.post("/login", data={
        "csrf_token": token, "admission_code": booked.admission_code,
        "date_of_birth": booked.date_of_birth.isoformat(),
    })


def start_sitting(client) -> dict:
    token = csrf_token(client)
    response = client.post("/start", data={"csrf_token": token, "agree": "yes"})
    assert response.status_code == 302, response.get_data(as_text=True)
    return api(client, "GET", "/api/sitting").get_json()


def api(client, method: str, path: str, body=None, raw: bytes | None = None):
    token = csrf_token(client) if method != "GET" else None
    headers = {"X-CSRFToken": token} if token else {}
    if raw is not None:
        return client.open(path, method=method, data=raw, headers=headers, content_type="application/json")
    return client.open(path, method=method, json=body, headers=headers)


def login_staff(client, username: str, password: str):
    token = csrf_token(client, "/staff/login")
    return client.post("/staff/login", data={"csrf_token": token, "username": username, "password": password})


def new_centre(session, *, seats: int = 4, features: dict[int, str] | None = None, region: str = "Kanto") -> Centre:
    """A fresh centre with ``seats`` seats (``features`` by seat number, e.g. {1: "wheelchair"})."""
    tag = uuid.uuid4().hex[:8]
    centre = Centre(code=f"C-{tag}", name=f"Centre {tag}", prefecture="Tokyo", region=region, city="Tokyo",
                    open_weekdays="0123456", active=True)
    centre.seats = [Seat(label=f"S-{n:02d}", features=(features or {}).get(n, "")) for n in range(1, seats + 1)]
    session.add(centre)
    session.flush()
    return centre


def registered_candidate(session, name: str = "Registered Candidate") -> Candidate:
    candidate = Candidate(name=name, date_of_birth=dt.date(1995, 3, 3), email=f"{uuid.uuid4().hex[:10]}@example.com",
                          occupation="working", company_type="it")
    session.add(candidate)
    session.flush()
    return candidate
