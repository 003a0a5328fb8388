"""The proctor's console over HTTP: the board, every action, the audit trail, the centre boundary."""
from __future__ import annotations

import datetime as dt
import re

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
    assert board.count('class="seat-label">S-') == 4 and "not seated" in board and "Check in" in board
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
    assert act(proctor, booked.booking_id, "end", reason="Phone in use").status_code == 422  # not confirmed
    assert sitting_of(session, booked.booking_id).status == "in_progress"
    assert act(proctor, booked.booking_id, "end", reason="Phone in use", confirm="yes").status_code == 302
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
    act(proctor, sat.booking_id, "end", reason="Notes brought in", confirm="yes")
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


# ---- the seat map, actions in place, the confirmation, the kana, the grace period ------------

def kana_for(session, booked, kana: str) -> None:
    booking = session.get(Booking, booked.booking_id)
    booking.candidate.name_kana = kana
    session.commit()


def test_the_board_is_a_seat_map_with_words_time_left_and_kana(app, session, program, clock):
    running = booked_candidate(session, program, clock.now)
    waiting = booked_candidate(session, program, clock.now, checked_in=False, centre_id=running.centre_id)
    kana_for(session, running, "ヤマダ タロウ")
    seats = session.scalars(select(Seat).where(Seat.centre_id == running.centre_id).order_by(Seat.id)).all()
    seats[3].active = False
    session.commit()
    candidate, proctor = app.test_client(), app.test_client()
    login_candidate(candidate, running)
    login_staff(proctor, running.proctor, running.password)
    assert act(proctor, running.booking_id, "start").status_code == 302
    clock.advance(minutes=6, seconds=55)  # 120:00 - 6:55 = 1:53:05 left

    board = proctor.get("/proctor/board/live").get_data(as_text=True)
    tiles = re.findall(r'<li id="([a-z]+-\d+)" class="seat status-(\w+)', board)
    assert [status for _, status in tiles] == ["in_progress", "booked", "free", "out_of_service"]
    assert tiles[0][0] == f"booking-{running.booking_id}" and tiles[1][0] == f"booking-{waiting.booking_id}"
    labels = re.findall(r'class="seat-label">([^<]+)<', board)
    assert labels == ["S-1", "S-2", "S-3", "S-4"]
    # Each state is said in words beside its colour.
    words = re.findall(r'class="seat-status">([^<]+)<', board)
    assert words == ["in progress", "not checked in", "free", "out of service"]
    # The time left in the candidate's timer's format, from the sitting's own clock.
    clock_now = api(candidate, "GET", "/api/sitting/clock").get_json()["remaining_seconds"]
    assert clock_now == 113 * 60 + 5
    assert '<span class="time-left">1:53:05</span>' in board
    assert console.format_remaining(clock_now) == "1:53:05" and console.format_remaining(9 * 60 + 30) == "0:09:30"
    # The kana is beside the name, for the identity check.
    name = session.get(Booking, running.booking_id).candidate.name
    assert f'{name}<span class="kana" lang="ja">ヤマダ タロウ</span>' in board
    assert "check the seat" not in board

    # Nothing saved for ten minutes: the seat is flagged, in words.
    clock.advance(minutes=10)
    board = proctor.get("/proctor/board/live").get_data(as_text=True)
    assert re.search(r'class="seat status-in_progress quiet"', board)
    assert "No answer since 09:30" in board and ": check the seat." in board
    api(candidate, "PUT", "/api/sitting/answers/1", {"option": 1})
    assert "check the seat" not in proctor.get("/proctor/board/live").get_data(as_text=True)


def test_seats_are_in_the_order_of_the_room():
    rows = [console.BoardRow(i, label, None, None, None, None, None, "free", None, None, None, None, False, None)
            for i, label in enumerate(["S-10", "S-2", "A-1", "S-1"])]
    rows.sort(key=lambda r: console._seat_order(r.seat_label))
    assert [r.seat_label for r in rows] == ["A-1", "S-1", "S-2", "S-10"]


def test_actions_come_back_to_the_panel_and_refusals_are_shown_there(app, session, program, clock):
    booked = booked_candidate(session, program, clock.now + dt.timedelta(minutes=5))
    kana_for(session, booked, "スズキ ハナコ")
    candidate, proctor = app.test_client(), app.test_client()
    login_candidate(candidate, booked)
    login_staff(proctor, booked.proctor, booked.password)
    panel = f"/proctor/bookings/{booked.booking_id}"
    page = proctor.get(panel).get_data(as_text=True)
    assert '<span class="kana" lang="ja">スズキ ハナコ</span>' in page and 'id="panel-kana" lang="ja">スズキ ハナコ<' in page

    # Refused (before the slot's start): the panel itself, with the message and the status code.
    refused = act(proctor, booked.booking_id, "start")
    assert refused.status_code == 403
    page = refused.get_data(as_text=True)
    assert 'id="panel-error"' in page and "before the slot&#39;s start time" in page
    assert "Start the sitting" in page and "← Back to the live board" in page

    # The panel's facts alone, which the panel polls: the state the actions below were made for.
    facts = proctor.get(f"{panel}/live").get_data(as_text=True)
    assert 'id="panel-status" class="status status-waiting" data-status="waiting">logged in<' in facts
    assert "<form" not in facts and "スズキ ハナコ" in facts
    assert f'data-poll-url="{panel}/live"' in page and 'data-status="waiting"' in page

    clock.advance(minutes=5)
    started = act(proctor, booked.booking_id, "start")
    assert started.status_code == 302 and started.headers["Location"] == panel
    page = proctor.get(panel).get_data(as_text=True)
    assert "sitting has started" in page and 'id="panel-status" class="status status-in_progress" data-status="in_progress">in progress<' in page

    missing_reason = act(proctor, booked.booking_id, "pause")
    assert missing_reason.status_code == 422 and "Say why" in missing_reason.get_data(as_text=True)
    assert act(proctor, booked.booking_id, "pause", reason="Alarm").headers["Location"] == panel

    incident = proctor.post("/proctor/incidents", data={"csrf_token": csrf_token(proctor, panel), "kind": "health",
                                                        "booking_id": booked.booking_id, "description": "Dizzy"})
    assert incident.status_code == 302 and incident.headers["Location"] == panel
    empty = proctor.post("/proctor/incidents", data={"csrf_token": csrf_token(proctor, panel), "kind": "health",
                                                     "booking_id": booked.booking_id, "description": " "})
    assert empty.status_code == 422 and "Describe what happened." in empty.get_data(as_text=True)
    assert 'id="panel-error"' in empty.get_data(as_text=True)


def test_ending_a_sitting_asks_for_a_confirmation(app, session, program, clock):
    booked = booked_candidate(session, program, clock.now)
    candidate, proctor = app.test_client(), app.test_client()
    login_candidate(candidate, booked)
    login_staff(proctor, booked.proctor, booked.password)
    act(proctor, booked.booking_id, "start")
    page = proctor.get(f"/proctor/bookings/{booked.booking_id}").get_data(as_text=True)
    form = page[page.index('/end"'):]
    form = form[:form.index("</form>")]
    assert re.search(r'<input id="end-confirm" type="checkbox" name="confirm" value="yes" required>', form)
    assert "cannot be resumed" in form
    refused = act(proctor, booked.booking_id, "end", reason="Phone", confirm="")
    assert refused.status_code == 422 and "Tick the box" in refused.get_data(as_text=True)
    assert sitting_of(session, booked.booking_id).status == "in_progress"
    assert act(proctor, booked.booking_id, "end", reason="Phone", confirm="yes").status_code == 302
    assert sitting_of(session, booked.booking_id).status == "ended"


def test_the_incident_form_is_written_once():
    from pathlib import Path

    templates = Path(__file__).resolve().parents[1] / "delivery" / "web" / "templates" / "proctor"
    writers = [p.name for p in templates.glob("*.html") if 'name="description"' in p.read_text()]
    users = sorted(p.name for p in templates.glob("*.html") if "incident_form(" in p.read_text()
                   and p.name != "_incident_form.html")
    assert writers == ["_incident_form.html"] and users == ["board.html", "booking.html"]


def test_a_late_candidate_is_not_a_no_show_within_the_grace_period(app, session, program, clock):
    assert program.admission.no_show_grace_minutes == 30
    booked = booked_candidate(session, program, clock.now, checked_in=False)
    proctor = app.test_client()
    login_staff(proctor, booked.proctor, booked.password)

    clock.advance(minutes=5)
    panel = proctor.get(f"/proctor/bookings/{booked.booking_id}").get_data(as_text=True)
    assert "counts a no-show from 10:00 unless" in panel  # the slot started at 09:30
    page = proctor.get("/proctor/report").get_data(as_text=True)
    assert 'id="total-no-shows">0<' in page and 'id="total-expected">1<' in page
    assert "no-show 30 minutes after the slot" in page
    clock.advance(minutes=25)
    page = proctor.get("/proctor/report").get_data(as_text=True)
    assert 'id="total-no-shows">1<' in page and 'id="total-expected">0<' in page

    # The program file sets it; a shorter one counts sooner.
    from dataclasses import replace

    strict = replace(program, admission=replace(program.admission, no_show_grace_minutes=0))
    report = console.day_report(session, strict, booked.centre_id, session.get(Booking, booked.booking_id).slot.date,
                                clock.now - dt.timedelta(minutes=29))
    assert report.totals["no_shows"] == 1


def test_the_console_reads_japanese(app, session, program, clock):
    booked = booked_candidate(session, program, clock.now)
    kana_for(session, booked, "ヤマダ タロウ")
    candidate, proctor = app.test_client(), app.test_client()
    login_candidate(candidate, booked)
    login_staff(proctor, booked.proctor, booked.password)
    proctor.delete_cookie("cbt_language")
    act(proctor, booked.booking_id, "start")
    board = proctor.get("/proctor/").get_data(as_text=True)
    assert '<html lang="ja"' in board
    assert "座席表" in board and ">受験中<" in board and "ヤマダ タロウ" in board and "2:00:00" in board
    panel = proctor.get(f"/proctor/bookings/{booked.booking_id}").get_data(as_text=True)
    assert "試験を打ち切る" in panel and "フリガナ" in panel and "1999年5月17日" in panel
    refused = act(proctor, booked.booking_id, "add-time", minutes="999", reason="x")
    assert refused.status_code == 422 and "追加できる時間は合計120分まで" in refused.get_data(as_text=True)
    assert "日次報告" in proctor.get("/proctor/report").get_data(as_text=True)
