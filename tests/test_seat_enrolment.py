"""The seat login is bound to the centre: a candidate logs in only at a PC a proctor of the booking's
centre enrolled as one of its seats (the program's ``seat_enrolment_required``, on by default).

Before: anyone with the admission code and the date of birth logged in from any client and took
the sitting over (the new login replaces the seat's token)."""
from __future__ import annotations

import dataclasses
import re

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from centers import seats
from centers.accounts import Actor
from centers.models import Booking, SeatEnrolment, StaffAccount
from delivery.models import Sitting
from delivery.web.seats import SEAT_COOKIE, seat_cookie_value
from persistence.audit import AuditEvent, verify_chain
from tests.helpers import (
    booked_candidate,
    csrf_token,
    enrol_browser,
    login_candidate,
    login_staff,
)


def seat_login(client, booked):
    """The candidate's login as typed at the PC (whatever seat cookie the client carries)."""
    return client.post("/login", data={"csrf_token": csrf_token(client), "admission_code": booked.admission_code,
                                       "date_of_birth": booked.date_of_birth.isoformat()})


def sittings_of(session, booked) -> int:
    session.expire_all()
    return session.scalar(select(func.count(Sitting.id)).where(Sitting.booking_id == booked.booking_id))


def seat_of(session, booked) -> int:
    return session.get(Booking, booked.booking_id).seat_id


def proctor_actor(session, booked) -> Actor:
    return Actor.staff(session.scalar(select(StaffAccount).where(StaffAccount.username == booked.proctor)))


def test_a_pc_that_is_not_an_enrolled_seat_of_the_centre_cannot_log_in(app, session, program, clock):
    booked = booked_candidate(session, program, clock.now)
    elsewhere = booked_candidate(session, program, clock.now)  # another centre, with its own seat PC
    anywhere = app.test_client()
    refused = seat_login(anywhere, booked)
    assert refused.status_code == 403 and "not enrolled as a seat" in refused.get_data(as_text=True)
    # A PC enrolled at another centre is no seat of this one.
    other_centre = app.test_client()
    enrol_browser(other_centre, elsewhere)
    assert seat_login(other_centre, booked).status_code == 403
    # A cookie signed with another key, or altered, is no enrolment.
    forged = app.test_client()
    forged.set_cookie(SEAT_COOKIE, seat_cookie_value("not-the-secret", booked.seat_token))
    assert seat_login(forged, booked).status_code == 403
    assert sittings_of(session, booked) == 0
    # At the seat's own PC the candidate logs in.
    assert login_candidate(app.test_client(), booked).headers["Location"].endswith("/instructions")
    assert sittings_of(session, booked) == 1


def test_an_unenrolled_pc_cannot_take_a_sitting_over(app, session, program, clock):
    booked = booked_candidate(session, program, clock.now)
    seat = app.test_client()
    login_candidate(seat, booked)
    thief = app.test_client()
    assert seat_login(thief, booked).status_code == 403
    # The seat's token was not replaced: the candidate goes on.
    assert seat.get("/api/sitting/clock").status_code == 200


def test_the_proctor_enrols_the_pc_at_the_seat_and_candidates_log_in_there(app, session, program, clock):
    booked = booked_candidate(session, program, clock.now)
    pc = app.test_client()
    login_staff(pc, booked.proctor, booked.password)
    page = pc.get("/proctor/seat").get_data(as_text=True)
    assert "This PC is not enrolled as a seat" in page
    seat_id = seat_of(session, booked)
    enrolled = pc.post("/proctor/seat", data={"csrf_token": csrf_token(pc, "/proctor/seat"), "seat_id": seat_id,
                                              "reason": "new PC"})
    assert enrolled.status_code == 200 and "This PC is now seat S-1" in enrolled.get_data(as_text=True)
    cookie = enrolled.headers.getlist("Set-Cookie")
    seat_cookie = next(c for c in cookie if c.startswith(f"{SEAT_COOKIE}="))
    assert "HttpOnly" in seat_cookie and "Max-Age=34560000" in seat_cookie
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "seat.enrol"))
    assert (event.actor, event.centre_id, event.subject, event.reason) == (
        booked.proctor, booked.centre_id, f"seat:{seat_id}", "new PC")
    # The proctor signs out; the PC stays a seat, and the candidate logs in at it.
    pc.post("/staff/logout", data={"csrf_token": csrf_token(pc, "/proctor/seat")})
    assert seat_login(pc, booked).headers["Location"].endswith("/instructions")
    # The seat had a PC (the test's own): one PC per seat, so that one is no longer a seat.
    old = app.test_client()
    enrol_browser(old, booked)
    assert seat_login(old, booked).status_code == 403
    assert verify_chain(session).intact


def test_a_proctor_of_another_centre_cannot_enrol_a_seat_here(app, session, program, clock):
    booked = booked_candidate(session, program, clock.now)
    other = booked_candidate(session, program, clock.now)
    pc = app.test_client()
    login_staff(pc, other.proctor, other.password)
    refused = pc.post("/proctor/seat", data={"csrf_token": csrf_token(pc, "/proctor/seat"),
                                             "seat_id": seat_of(session, booked)})
    assert refused.status_code == 403
    assert SEAT_COOKIE not in refused.headers.get("Set-Cookie", "")
    assert session.scalar(select(AuditEvent.action).order_by(AuditEvent.id.desc()).limit(1)) == "refused_seat.enrol"
    assert session.scalar(select(func.count(SeatEnrolment.id)).where(SeatEnrolment.enrolled_by == other.proctor)) == 0


def test_a_pc_moved_to_another_seat_is_enrolled_again_and_keeps_one_enrolment(app, session, program, clock):
    booked = booked_candidate(session, program, clock.now)
    neighbour = booked_candidate(session, program, clock.now, centre_id=booked.centre_id)
    actor = proctor_actor(session, booked)
    first, _ = seats.enrol_this_pc(session, seat_of(session, neighbour), actor=actor, reason="", now=clock.now)
    moved, seat = seats.enrol_this_pc(session, seat_of(session, booked), actor=actor, reason="PC moved",
                                      now=clock.now, replacing=first)
    assert seat.seat_id == seat_of(session, booked)
    assert seats.enrolled_seat(session, first) is None and seats.enrolled_seat(session, moved).seat_label == "S-1"
    session.expire_all()
    in_force = session.scalars(select(SeatEnrolment).where(SeatEnrolment.centre_id == booked.centre_id,
                                                           SeatEnrolment.revoked_at.is_(None))).all()
    # The first enrolment replaced S-2's earlier PC; the move left S-2 without one and replaced S-1's:
    # one enrolment in force, the moved PC's.
    assert [(e.seat_id, e.token_hash == seats.credential_hash(moved)) for e in in_force] == [
        (seat_of(session, booked), True)]


def test_a_one_time_link_from_the_command_line_enrols_a_pc_once(app, session, program, clock, monkeypatch,
                                                                database_url):
    from delivery.cli import main

    booked = booked_candidate(session, program, clock.now)
    centre = session.get(Booking, booked.booking_id).slot.centre.code
    monkeypatch.setenv("CBT_DATABASE_URL", database_url)
    monkeypatch.setenv("CBT_PUBLIC_URL", "https://cbt.example.org")
    printed = CliRunner().invoke(main, ["seats", "enrol", "--centre", centre, "--seat", "S-1", "--as", booked.proctor,
                                        "--reason", "PC replaced"])
    assert printed.exit_code == 0, printed.output
    link = re.search(r"https://cbt\.example\.org(/seat/enrol/\S+)", printed.output).group(1)
    pc = app.test_client()
    assert "seat S-1" in pc.get(link).get_data(as_text=True)
    claimed = pc.post(link, data={"csrf_token": csrf_token(pc, link)})
    assert claimed.status_code == 200 and "This PC is now seat S-1" in claimed.get_data(as_text=True)
    assert seat_login(pc, booked).status_code == 302
    # The link works once.
    again = app.test_client()
    assert again.post(link, data={"csrf_token": csrf_token(again)}).status_code == 404
    actions = session.scalars(select(AuditEvent.action).where(AuditEvent.subject == f"seat:{seat_of(session, booked)}")
                              .order_by(AuditEvent.id)).all()
    assert actions == ["seat.enrol", "seat.enrol_claimed"]
    listed = CliRunner().invoke(main, ["seats", "list", "--centre", centre])
    assert "S-1" in listed.output and "PC enrolled" in listed.output
    # Revoked from the shell: the PC is no longer a seat.
    revoked = CliRunner().invoke(main, ["seats", "revoke", "--centre", centre, "--seat", "S-1", "--as",
                                        booked.proctor, "--reason", "PC stolen"])
    assert revoked.exit_code == 0 and "1 enrolment(s) ended" in revoked.output, revoked.output
    assert seat_login(pc, booked).status_code == 403
    # Only a proctor of the centre.
    refused = CliRunner().invoke(main, ["seats", "enrol", "--centre", centre, "--seat", "S-1", "--as",
                                        "psychometrician"])
    assert refused.exit_code == 1 and "Only a proctor" in refused.output


def test_the_demo_prints_a_one_click_enrolment_of_this_browser(app, session, clock, monkeypatch, database_url):
    from centers.demo import DEMO_DATE_OF_BIRTH
    from delivery.cli import main

    monkeypatch.setenv("CBT_DATABASE_URL", database_url)
    printed = CliRunner().invoke(main, ["demo"])
    assert printed.exit_code == 0, printed.output
    link = re.search(r"http://127\.0\.0\.1:8000(/seat/enrol/\S+)", printed.output).group(1)
    code = re.search(r"admission code (\S+), date of birth \S+\s+\(Demo Candidate \d+, checked in",
                     printed.output).group(1)
    browser = app.test_client()
    browser.post(link, data={"csrf_token": csrf_token(browser, link)})
    login = browser.post("/login", data={"csrf_token": csrf_token(browser), "admission_code": code,
                                         "date_of_birth": DEMO_DATE_OF_BIRTH.isoformat()})
    # The demo's slot is booked for the real time of day: the login is past the seat check.
    assert "not enrolled as a seat" not in login.get_data(as_text=True)


@pytest.fixture
def unbound_program(program):
    return dataclasses.replace(program, admission=dataclasses.replace(program.admission,
                                                                      seat_enrolment_required=False))


def test_a_program_may_leave_the_seat_login_unbound(app, session, program, unbound_program, clock):
    assert program.admission.seat_enrolment_required is True  # the program file's default
    app.extensions["cbt"] = dataclasses.replace(app.extensions["cbt"], program=unbound_program)
    booked = booked_candidate(session, program, clock.now)
    assert seat_login(app.test_client(), booked).status_code == 302


def test_the_refusal_and_the_enrolment_page_read_japanese_by_default(app, session, program, clock):
    booked = booked_candidate(session, program, clock.now)
    anywhere = app.test_client()
    anywhere.delete_cookie("cbt_language")
    refused = seat_login(anywhere, booked).get_data(as_text=True)
    assert "座席として登録されていません" in refused and "試験監督者にお声がけください" in refused
    proctor = app.test_client()
    proctor.delete_cookie("cbt_language")
    login_staff(proctor, booked.proctor, booked.password)
    page = proctor.get("/proctor/seat").get_data(as_text=True)
    assert "このPCを座席として登録" in page and "座席PC" in page
