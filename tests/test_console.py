"""The proctor's console over HTTP: the board, every action, the audit trail, the centre boundary."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event, select

from centers.models import Booking, Incident, Seat
from delivery import console
from delivery.models import Sitting
from persistence.audit import AuditEvent, verify_chain
from tests.centre_helpers import frozen_clock
from tests.helpers import api, booked_candidate, csrf_token, login_candidate, login_staff


@pytest.fixture
def clock():
    """A fixed instant: nothing here depends on the day the tests run."""
    return frozen_clock()


def act(client, booking_id: int, action: str, **form):
    return client.post(f"/proctor/bookings/{booking_id}/{action}", data={"csrf_token": csrf_token(client, "/proctor/"),
                                                                        **form})


def trail(session, centre_id: int, since: int = 0) -> list[AuditEvent]:
    session.expire_all()
    return session.scalars(select(AuditEvent).where(AuditEvent.centre_id == centre_id, AuditEvent.id > since)
                           .order_by(AuditEvent.id)).all()


def sitting_of(session, booking_id: int) -> Sitting:
    session.expire_all()
    return session.scalar(select(Sitting).where(Sitting.booking_id == booking_id))


def test_a_proctor_runs_a_sitting_from_check_in_to_the_end(app, session, program, clock):
    booked = booked_candidate(session, program, clock.now + dt.timedelta(minutes=10), checked_in=False)
    seats = {s.label: s.id for s in session.scalars(select(Seat).where(Seat.centre_id == booked.centre_id))}
    session.execute(Booking.__table__.update().where(Booking.id == booked.booking_id).values(seat_id=None))
    session.commit()
    proctor = app.test_client()
    login_staff(proctor, booked.proctor, booked.password)
    start_event = trail(session, booked.centre_id)[-1].id if trail(session, booked.centre_id) else 0

    board = proctor.get("/proctor/").get_data(as_text=True)
    assert board.count('<th scope="row">S-') == 4 and "not seated" in board and "Check in" in board
    assert f"/proctor/bookings/{booked.booking_id}" in board

    # Check in: identity must be confirmed; the candidate is seated.
    assert act(proctor, booked.booking_id, "check-in").status_code == 422
    assert act(proctor, booked.booking_id, "check-in", identity_verified="yes", seat_id=seats["S-3"]).status_code == 302
    candidate = app.test_client()
    login_candidate(candidate, booked)
    assert "logged in" in proctor.get("/proctor/board/live").get_data(as_text=True)

    # Start: not before the slot's start time, then by the proctor for the candidate.
    assert act(proctor, booked.booking_id, "start").status_code == 403
    clock.advance(minutes=10)
    assert act(proctor, booked.booking_id, "start").status_code == 302
    state = api(candidate, "GET", "/api/sitting").get_json()
    assert state["status"] == "in_progress" and state["remaining_seconds"] == 120 * 60
    api(candidate, "PUT", "/api/sitting/answers/1", {"option": 2})
    api(candidate, "PUT", "/api/sitting/position", {"position": 5})
    clock.advance(minutes=20)

    # Pause: a reason is required; the clock stops and answers wait.
    assert act(proctor, booked.booking_id, "pause").status_code == 422
    assert act(proctor, booked.booking_id, "pause", reason="Fire alarm").status_code == 302
    clock.advance(minutes=7)
    frozen = api(candidate, "GET", "/api/sitting/clock").get_json()
    assert frozen == {"status": "paused", "remaining_seconds": 100 * 60, "result_url": None}
    refused = api(candidate, "PUT", "/api/sitting/answers/2", {"option": 1})
    assert refused.status_code == 423 and "paused" in refused.get_json()["error"]
    row = next(r for r in console.board(session, booked.centre_id, session.get(Booking, booked.booking_id).slot_id,
                                          clock.now) if r.booking_id == booked.booking_id)
    assert (row.seat_label, row.status, row.item_reached, row.time_left) == ("S-3", "paused", 5, "1:40:00")

    assert act(proctor, booked.booking_id, "resume").status_code == 302
    clock.advance(minutes=1)
    assert api(candidate, "GET", "/api/sitting/clock").get_json()["remaining_seconds"] == 99 * 60
    assert act(proctor, booked.booking_id, "add-time", minutes="5", reason="Time lost to the alarm").status_code == 302
    assert api(candidate, "GET", "/api/sitting/clock").get_json()["remaining_seconds"] == 104 * 60
    assert act(proctor, booked.booking_id, "add-time", minutes="lots", reason="x").status_code == 422

    # Move seat: the old PC is locked out; the sitting resumes at the same question with the time it had.
    assert act(proctor, booked.booking_id, "move-seat", seat_id=seats["S-3"], reason="same").status_code == 422
    moved = act(proctor, booked.booking_id, "move-seat", seat_id=seats["S-4"], reason="PC froze",
                out_of_service="yes")
    assert moved.status_code == 302
    clock.advance(minutes=3)
    assert api(candidate, "PUT", "/api/sitting/answers/3", {"option": 0}).status_code == 401
    new_seat = app.test_client()
    assert login_candidate(new_seat, booked).headers["Location"].endswith("/sitting")
    assert act(proctor, booked.booking_id, "resume").status_code == 302
    resumed = api(new_seat, "GET", "/api/sitting").get_json()
    assert (resumed["status"], resumed["current_position"], resumed["remaining_seconds"]) == ("in_progress", 5, 104 * 60)
    assert resumed["items"][0]["answer"] == 2
    session.expire_all()
    assert session.get(Seat, seats["S-3"]).active is False
    assert sitting_of(session, booked.booking_id).seat_id == seats["S-4"]

    # End for misconduct: no more answers, no score; the seat is signed out (every copy of its cookie).
    assert act(proctor, booked.booking_id, "end", reason="Phone in use").status_code == 302
    assert api(new_seat, "GET", "/api/sitting").status_code == 401
    assert api(new_seat, "PUT", "/api/sitting/answers/4", {"option": 0}).status_code == 409
    assert sitting_of(session, booked.booking_id).status == "ended"
    assert login_candidate(new_seat, booked).headers["Location"].endswith("/result")
    assert api(new_seat, "PUT", "/api/sitting/answers/4", {"option": 0}).status_code == 409
    assert "ended without a score" in new_seat.get("/result").get_data(as_text=True)
    assert act(proctor, booked.booking_id, "pause", reason="again").status_code == 409

    # Every action is in the centre's audit trail, with who and why; the chain holds.
    events = trail(session, booked.centre_id, start_event)
    assert [e.action for e in events] == ["check_in", "start", "pause", "resume", "add_time", "move_seat", "resume",
                                          "end"]
    assert {e.actor for e in events} == {booked.proctor}
    assert [e.reason for e in events if e.action in ("pause", "add_time", "move_seat", "end")] == [
        "Fire alarm", "Time lost to the alarm", "PC froze", "Phone in use"]
    move = next(e for e in events if e.action == "move_seat")
    assert move.details["from_seat"] == "S-3" and move.details["to_seat"] == "S-4"
    assert move.details["before"]["remaining_seconds"] == 104 * 60
    assert verify_chain(session).intact


def test_another_centre_is_refused_and_the_attempt_recorded(app, session, program, clock):
    ours = booked_candidate(session, program, clock.now)
    theirs = booked_candidate(session, program, clock.now)
    theirs_slot = session.get(Booking, theirs.booking_id).slot_id
    proctor = app.test_client()
    login_staff(proctor, ours.proctor, ours.password)

    for action, form in [("pause", {"reason": "x"}), ("check-in", {"identity_verified": "yes"}), ("end", {"reason": "x"})]:
        assert act(proctor, theirs.booking_id, action, **form).status_code == 403
    assert proctor.get(f"/proctor/bookings/{theirs.booking_id}").status_code == 403
    assert proctor.get(f"/proctor/board/live?slot={theirs_slot}").status_code == 403
    assert proctor.post("/proctor/incidents", data={"csrf_token": csrf_token(proctor, "/proctor/"), "kind": "other",
                                                    "description": "x", "slot_id": theirs_slot}).status_code == 403

    refused = trail(session, theirs.centre_id)
    assert [e.action for e in refused] == ["refused_pause", "refused_check_in", "refused_end", "refused_view_booking",
                                           "refused_view_board", "refused_log_incident"]
    assert {e.actor for e in refused} == {ours.proctor}
    assert all(e.details["proctor_centre_id"] == ours.centre_id for e in refused)
    session.expire_all()
    assert session.get(Booking, theirs.booking_id).status == "checked_in"


def test_the_live_board_is_one_query_for_the_whole_centre(engine, session, program, clock):
    booked = booked_candidate(session, program, clock.now)
    for _ in range(3):
        booked_candidate(session, program, clock.now, centre_id=booked.centre_id)
    slot_id = session.get(Booking, booked.booking_id).slot_id
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        rows = console.board(session, booked.centre_id, slot_id, clock.now)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert len(statements) == 1
    assert [(r.seat_label, r.status) for r in rows] == [(f"S-{n}", "checked_in") for n in range(1, 5)]


def test_late_start_by_the_proctor_is_deducted_and_accommodations_apply(app, session, program, clock):
    late = booked_candidate(session, program, clock.now - dt.timedelta(minutes=15), time_multiplier=1.5)
    session.execute(Booking.__table__.update().where(Booking.id == late.booking_id).values(large_text=True))
    session.commit()
    candidate, proctor = app.test_client(), app.test_client()
    login_candidate(candidate, late)
    assert 'data-display-size="3"' in candidate.get("/instructions").get_data(as_text=True)
    login_staff(proctor, late.proctor, late.password)
    act(proctor, late.booking_id, "start")
    assert api(candidate, "GET", "/api/sitting").get_json()["remaining_seconds"] == 165 * 60
    assert 'data-display-size="3"' in candidate.get("/sitting").get_data(as_text=True)


def test_the_end_of_day_report_counts_sittings_no_shows_and_incidents(app, session, program, clock):
    sat = booked_candidate(session, program, clock.now)
    absent = booked_candidate(session, program, clock.now, checked_in=False, centre_id=sat.centre_id)
    candidate, proctor = app.test_client(), app.test_client()
    login_candidate(candidate, sat)
    api(candidate, "GET", "/api/sitting")
    login_staff(proctor, sat.proctor, sat.password)
    act(proctor, sat.booking_id, "start")
    act(proctor, sat.booking_id, "end", reason="Notes brought in")
    token = csrf_token(proctor, "/proctor/")
    assert proctor.post("/proctor/incidents", data={"csrf_token": token, "kind": "equipment", "description": " "}
                        ).status_code == 422
    assert proctor.post("/proctor/incidents", data={"csrf_token": token, "kind": "equipment", "booking_id": sat.booking_id,
                                                    "description": "Monitor flickered at seat S-1"}).status_code == 302
    clock.advance(minutes=1)
    assert act(proctor, absent.booking_id, "no-show").status_code == 302

    page = proctor.get("/proctor/report").get_data(as_text=True)
    assert 'id="total-booked">2<' in page and 'id="total-sat">1<' in page and 'id="total-ended">1<' in page
    assert 'id="total-no-shows">1<' in page
    assert "Monitor flickered at seat S-1" in page and "Notes brought in" in page
    incident = session.scalar(select(Incident).where(Incident.booking_id == sat.booking_id))
    assert incident.centre_id == sat.centre_id and incident.kind == "equipment"
    assert proctor.get("/proctor/report?date=someday").status_code == 422
