"""The candidate's registration and booking pages over HTTP."""
from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
from sqlalchemy import select

from centers import calendar
from centers.candidates import by_email
from centers.models import Booking, Candidate, Slot
from persistence.audit import AuditEvent
from tests.centre_helpers import frozen_clock
from tests.helpers import csrf_token, login_candidate, new_centre


@pytest.fixture
def clock():
    """A fixed instant: nothing here depends on the day the tests run."""
    return frozen_clock()


def register(client, **changes):
    form = {"name": "Hanako Yamada", "date_of_birth": "2001-02-03", "email": f"{uuid.uuid4().hex[:10]}@example.com",
            "password": "a-good-long-password", "occupation": "student", "company_type": ""}
    form.update(changes)
    return client.post("/booking/register", data={"csrf_token": csrf_token(client, "/booking/register"), **form}), form


def centre_with_calendar(session, program, clock, seats=2):
    centre = new_centre(session, seats=seats)
    calendar.extend_calendar(session, program, calendar.local_today(program, clock.now), 20, [centre.id])
    session.commit()
    return centre


def slot_on(session, centre, day, kind="morning") -> Slot:
    session.expire_all()
    return session.scalar(select(Slot).where(Slot.centre_id == centre.id, Slot.date == day, Slot.kind == kind))


def test_registration_reports_every_mistake_and_keeps_what_was_typed(client, session):
    response, _ = register(client, name=" ", email="not-an-email", password="short", occupation="working",
                           date_of_birth="someday")
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    for text in ("Enter your name", "Enter your date of birth", "e-mail address like", "at least 10 characters",
                 "IT company"):
        assert text in page
    assert 'value="not-an-email"' in page and "short" not in page.split("<form")[1].split("password")[0]

    done, form = register(client, occupation="working", company_type="non-it")
    assert done.status_code == 302 and done.headers["Location"].startswith("/booking/find")
    candidate = session.scalar(select(Candidate).where(by_email(form["email"])))
    assert (candidate.occupation, candidate.company_type) == ("working", "non-it")
    again, _ = register(client.application.test_client(), email=form["email"].upper())
    assert again.status_code == 422 and "already registered" in again.get_data(as_text=True)


def test_sign_in_book_print_the_slip_move_and_cancel(client, app, session, program, clock):
    centre = centre_with_calendar(session, program, clock)
    other = centre_with_calendar(session, program, clock)
    today = calendar.local_today(program, clock.now)
    _, form = register(client)
    client.post("/booking/sign-out", data={"csrf_token": csrf_token(client, "/booking/")})
    assert client.get("/booking/").headers["Location"].startswith("/booking/sign-in")
    wrong = client.post("/booking/sign-in", data={"csrf_token": csrf_token(client, "/booking/sign-in"),
                                                   "email": form["email"], "password": "nope"})
    assert wrong.status_code == 401
    assert client.post("/booking/sign-in", data={"csrf_token": csrf_token(client, "/booking/sign-in"),
                                                 "email": form["email"], "password": form["password"]}).status_code == 302

    day = today + dt.timedelta(days=6)
    page = client.get(f"/booking/find?centre={centre.id}&from={day.isoformat()}").get_data(as_text=True)
    assert "Free places at " + centre.name in page and "2 free" in page
    slot = slot_on(session, centre, day)
    booked = client.post("/booking/book", data={"csrf_token": csrf_token(client, "/booking/"), "slot_id": slot.id,
                                                "large_text": "yes", "seat_need": "front"})
    assert "/slip" in booked.headers["Location"]
    slip = client.get(booked.headers["Location"]).get_data(as_text=True)
    code = re.search(r'id="admission-code"[^>]*>([A-Z0-9-]+)<', slip).group(1)
    booking = session.scalar(select(Booking).where(Booking.admission_code == code))
    assert (booking.large_text, booking.seat_need, booking.slot_id) == (True, "front", slot.id)
    assert "1 free" in client.get(f"/booking/find?centre={centre.id}&from={day.isoformat()}").get_data(as_text=True)

    # A second booking is refused with the reason, on the same page.
    second = client.post("/booking/book", data={"csrf_token": csrf_token(client, "/booking/"),
                                                "slot_id": slot_on(session, centre, day, "evening").id})
    assert "/booking/find" in second.headers["Location"]
    assert "already have a booking" in client.get(second.headers["Location"]).get_data(as_text=True)

    target = slot_on(session, other, today + dt.timedelta(days=9), "afternoon")
    moved = client.post(f"/booking/{booking.id}/move", data={"csrf_token": csrf_token(client, "/booking/"),
                                                             "slot_id": target.id})
    assert moved.headers["Location"] == "/booking/"
    session.expire_all()
    booking = session.get(Booking, booking.id)
    assert (booking.slot_id, booking.changes, booking.admission_code) == (target.id, 1, code)
    mine = client.get("/booking/").get_data(as_text=True)
    assert other.name in mine and "1 move left" in mine

    assert client.post(f"/booking/{booking.id}/cancel", data={"csrf_token": csrf_token(client, "/booking/")}
                       ).status_code == 302
    assert session.get(Booking, booking.id).status == "booked"  # not confirmed: nothing happened
    client.post(f"/booking/{booking.id}/cancel", data={"csrf_token": csrf_token(client, "/booking/"), "confirm": "yes"})
    session.expire_all()
    assert session.get(Booking, booking.id).status == "cancelled"
    assert "not refunded" in client.get("/booking/").get_data(as_text=True)
    actions = session.scalars(select(AuditEvent.action).where(AuditEvent.subject == f"booking:{booking.id}")
                              .order_by(AuditEvent.id)).all()
    assert actions == ["book", "move_booking", "cancel_booking"]


def test_a_full_slot_and_another_candidate_s_booking_are_refused(client, app, session, program, clock):
    centre = centre_with_calendar(session, program, clock, seats=1)
    day = calendar.local_today(program, clock.now) + dt.timedelta(days=4)
    slot = slot_on(session, centre, day)
    first, second = app.test_client(), app.test_client()
    register(first)
    register(second)
    assert "/slip" in first.post("/booking/book", data={"csrf_token": csrf_token(first, "/booking/"),
                                                        "slot_id": slot.id}).headers["Location"]
    full = second.post("/booking/book", data={"csrf_token": csrf_token(second, "/booking/"), "slot_id": slot.id})
    assert "fully booked" in second.get(full.headers["Location"]).get_data(as_text=True)
    assert f'name="slot_id" value="{slot.id}"' not in second.get(f"/booking/find?centre={centre.id}&from={day}"
                                                                  ).get_data(as_text=True)
    theirs = session.scalar(select(Booking).where(Booking.slot_id == slot.id))
    assert second.get(f"/booking/{theirs.id}/slip").status_code == 404
    assert second.post(f"/booking/{theirs.id}/cancel", data={"csrf_token": csrf_token(second, "/booking/"),
                                                             "confirm": "yes"}).status_code == 404


def test_the_admission_code_from_the_slip_logs_in_at_the_seat_after_check_in(client, session, program, clock):
    from tests.helpers import Booked, enrolled_pc

    centre = centre_with_calendar(session, program, clock)
    today = calendar.local_today(program, clock.now)
    _, form = register(client)
    slot = slot_on(session, centre, today + dt.timedelta(days=2))  # inside the change deadline: confirmed
    client.post("/booking/book", data={"csrf_token": csrf_token(client, "/booking/"), "slot_id": slot.id,
                                       "confirmed": "yes"})
    booking = session.scalar(select(Booking).where(Booking.slot_id == slot.id))
    seat = client.application.test_client()
    seat_pc = enrolled_pc(session, centre.seats[0].id, clock.now)
    session.commit()
    response = login_candidate(seat, Booked(centre.id, booking.id, booking.admission_code,
                                            dt.date.fromisoformat(form["date_of_birth"]), "nobody",
                                            seat_token=seat_pc))
    assert response.status_code == 403 and "not today" in response.get_data(as_text=True)
