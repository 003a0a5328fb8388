"""The same action writes the same audit record whether it comes from the web or from the
command line (or the service the command line calls): every console action, every booking
change, the calendar's closures.

Each scenario runs twice on rows of its own (a centre with the same seats, a frozen clock
set back to the same instant), once per path; the records are compared with the ids and
names that differ between the two runs put in terms of the scenario (its booking, its
sitting, its centre, its candidate).
"""
from __future__ import annotations

import datetime as dt
import uuid

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from centers import bookings, calendar, incidents
from centers.accounts import Actor
from centers.models import Booking, Centre, Seat, Slot, StaffAccount
from delivery import sittings
from delivery.cli import main
from delivery.models import Sitting
from persistence.audit import AuditEvent
from tests.centre_helpers import FROZEN, applicant_browsers, frozen_clock
from tests.helpers import booked_candidate, csrf_token, login_candidate, login_staff, new_centre, registered_candidate


@pytest.fixture
def clock():
    return frozen_clock()


@pytest.fixture
def cbt(engine, monkeypatch, clock):
    monkeypatch.setenv("CBT_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setattr("delivery.cli.centres.utcnow", lambda: clock.now)  # the commands read the same clock
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    return run


def last_event_id(session) -> int:
    return session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1)) or 0


def events_since(session, since: int) -> list[AuditEvent]:
    session.expire_all()
    return session.scalars(select(AuditEvent).where(AuditEvent.id > since).order_by(AuditEvent.id)).all()


def normalised(events, *, centre_id: int, names: dict[str, str], ids: dict[tuple[str, int], str]) -> list[tuple]:
    """(action, subject, centre, details) with this run's own ids and names replaced by their roles.
    ``ids`` maps (kind, id) to a role: a subject "booking:12" and a detail "booking_id": 12 alike."""
    def word(value, key: str = ""):
        if isinstance(value, dict):
            return {inner_key: word(inner, inner_key) for inner_key, inner in value.items()}
        if isinstance(value, str):
            kind, _, number = value.partition(":")
            if number.isdigit() and (kind, int(number)) in ids:
                return f"{kind}:{ids[kind, int(number)]}"
            return names.get(value, value)
        if isinstance(value, int) and not isinstance(value, bool) and key.endswith("_id"):
            kind = key.removesuffix("_id").rsplit("_", 1)[-1]
            return ids.get((kind, value), value)
        return value

    return [(e.action, word(e.subject), "centre" if e.centre_id == centre_id else e.centre_id, word(e.details))
            for e in events]


# ---- the proctor's console --------------------------------------------------------------------

def console_run(path: str, app, session, program, clock):
    """Check in, start, pause, resume, add time, move seat, resume, end, an incident and a no-show,
    by the proctor through the web or through the services; the scenario's records, normalised."""
    clock.now = FROZEN
    starts = FROZEN + dt.timedelta(minutes=10)
    sat = booked_candidate(session, program, starts, checked_in=False)
    absent = booked_candidate(session, program, starts, checked_in=False, centre_id=sat.centre_id)
    session.execute(Booking.__table__.update().where(Booking.id.in_([sat.booking_id, absent.booking_id]))
                    .values(seat_id=None))
    session.commit()
    seats = {s.label: s.id for s in session.scalars(select(Seat).where(Seat.centre_id == sat.centre_id))}
    account = session.scalar(select(StaffAccount).where(StaffAccount.username == sat.proctor))
    actor = Actor.staff(account)
    proctor = app.test_client()
    login_staff(proctor, sat.proctor, sat.password)
    since = last_event_id(session)

    def web(booking_id, action, **form):
        response = proctor.post(f"/proctor/bookings/{booking_id}/{action}",
                                data={"csrf_token": csrf_token(proctor, "/proctor/"), **form})
        assert response.status_code == 302, response.get_data(as_text=True)

    b = sat.booking_id
    if path == "web":
        web(b, "check-in", identity_verified="yes", seat_id=seats["S-1"])
    else:
        bookings.check_in(session, b, clock.now, actor=actor, identity_verified=True, seat_id=seats["S-1"])
    seat = app.test_client()
    login_candidate(seat, sat)
    clock.advance(minutes=10)
    steps = [
        ("start", {}, lambda: sittings.proctor_start(session, program, b, clock.now, actor=actor)),
        ("pause", {"reason": "Fire alarm"},
         lambda: sittings.pause(session, program, b, clock.now, actor=actor, reason="Fire alarm")),
        ("resume", {}, lambda: sittings.resume(session, program, b, clock.now, actor=actor)),
        ("add-time", {"minutes": "5", "reason": "Time lost"},
         lambda: sittings.add_time(session, program, b, 5, clock.now, actor=actor, reason="Time lost")),
        ("move-seat", {"seat_id": seats["S-2"], "reason": "PC froze", "out_of_service": "yes"},
         lambda: sittings.move_seat(session, program, b, seats["S-2"], clock.now, actor=actor, reason="PC froze",
                                    out_of_service=True)),
        ("resume", {"reason": "at S-2"},
         lambda: sittings.resume(session, program, b, clock.now, actor=actor, reason="at S-2")),
        ("end", {"reason": "Phone in use", "confirm": "yes"},
         lambda: sittings.end(session, program, b, clock.now, actor=actor, reason="Phone in use")),
    ]
    for action, form, service in steps:
        clock.advance(minutes=3)
        if path == "web":
            web(b, action, **form)
        else:
            service()
    clock.advance(minutes=1)
    if path == "web":
        web(absent.booking_id, "no-show")
        assert proctor.post("/proctor/incidents", data={
            "csrf_token": csrf_token(proctor, "/proctor/"), "kind": "equipment", "booking_id": b,
            "description": "Monitor flickered"}).status_code == 302
    else:
        bookings.no_show(session, absent.booking_id, clock.now, actor=actor)
        incidents.log_incident(session, clock.now, actor=actor, kind="equipment", description="Monitor flickered",
                               booking_id=b)
    events = events_since(session, since)
    sitting_id = session.scalar(select(Sitting.id).where(Sitting.booking_id == b))
    slot_id = session.get(Booking, b).slot_id
    names = {session.get(Booking, b).candidate.name: "<sat>", session.get(Booking, absent.booking_id).candidate.name:
             "<absent>", sat.proctor: "<proctor>"}
    ids = {("booking", b): "<booking>", ("booking", absent.booking_id): "<absent>", ("sitting", sitting_id): "<sitting>",
           ("slot", slot_id): "<slot>", ("incident", int(events[-1].subject.split(":")[1])): "<incident>"}
    return normalised(events, centre_id=sat.centre_id, names=names, ids=ids)


def test_every_console_action_writes_the_same_record_from_the_web_and_the_service(app, session, program, clock):
    web = console_run("web", app, session, program, clock)
    service = console_run("service", app, session, program, clock)
    assert [e[0] for e in web] == ["check_in", "start", "pause", "resume", "add_time", "move_seat", "resume", "end",
                                   "no_show", "log_incident"]
    assert web == service
    move = next(e for e in web if e[0] == "move_seat")
    assert (move[1], move[2], move[3]["from_seat"], move[3]["to_seat"]) == ("sitting:<sitting>", "centre", "S-1", "S-2")


# ---- booking changes ---------------------------------------------------------------------------

def booking_run(path: str, app, session, program, clock, cbt):
    """Book, move, accommodate and cancel one booking: the applicant's pages or operations' commands
    (booking itself: the pages or the service the page calls)."""
    clock.now = FROZEN
    centre = new_centre(session, seats=3)
    calendar.extend_calendar(session, program, calendar.local_today(program, clock.now) + dt.timedelta(days=6), 4,
                             [centre.id])
    first, target = session.scalars(select(Slot).where(Slot.centre_id == centre.id).order_by(Slot.starts_at)
                                    .limit(2)).all()
    person = registered_candidate(session, f"Booker {uuid.uuid4().hex[:6]}")
    session.commit()
    since = last_event_id(session)
    if path == "web":
        (browser, token), = applicant_browsers(app, session, person.id, 1, clock.now)
        assert "/slip" in browser.post("/booking/book", data={"csrf_token": token, "slot_id": first.id}
                                       ).headers["Location"]
        booking = session.scalar(select(Booking).where(Booking.candidate_id == person.id))
        assert browser.post(f"/booking/{booking.id}/move", data={"csrf_token": token, "slot_id": target.id}
                            ).headers["Location"] == "/booking/"
        code = booking.admission_code
    else:
        booking = bookings.reserve(session, program, first.id, clock.now, candidate_id=person.id,
                                   actor=Actor.candidate(person.id))
        code = booking.admission_code
        cbt("bookings", "move", code, "--slot", str(target.id), "--reason", "the candidate's call")
    cbt("bookings", "accommodate", code, "--time-multiplier", "1.5", "--reason", "Medical certificate")
    if path == "web":
        assert browser.post(f"/booking/{booking.id}/cancel", data={"csrf_token": token, "confirm": "yes"}
                            ).status_code == 302
    else:
        cbt("bookings", "cancel", code, "--reason", "the candidate's call")
    events = events_since(session, since)
    ids = {("booking", booking.id): "<booking>", ("slot", first.id): "<first>", ("slot", target.id): "<target>"}
    return normalised(events, centre_id=centre.id, names={}, ids=ids)


def test_every_booking_change_writes_the_same_record_from_the_web_and_the_command_line(
        app, session, program, clock, cbt):
    web = booking_run("web", app, session, program, clock, cbt)
    command_line = booking_run("cli", app, session, program, clock, cbt)
    assert [e[0] for e in web] == ["book", "move_booking", "accommodate", "cancel_booking"]
    assert web == command_line
    assert web[1][3] == {"from_slot_id": "<first>", "to_slot_id": "<target>"}


def test_closing_and_reopening_write_the_same_record_from_the_command_line_and_the_service(
        session, program, clock, cbt):
    records = []
    for path in ("cli", "service"):
        centre = new_centre(session)
        session.commit()
        day = calendar.local_today(program, clock.now) + dt.timedelta(days=200)
        calendar.extend_calendar(session, program, day, 1, [centre.id])
        since = last_event_id(session)
        if path == "cli":
            cbt("calendar", "close", "--centre", centre.code, "--from", day.isoformat(), "--reason", "Maintenance",
                "--by", "ops")
            cbt("calendar", "reopen", "--centre", centre.code, "--from", day.isoformat(), "--by", "ops")
        else:
            ops = Actor.operations("ops")
            calendar.close(session, program, centre_ids=[centre.id], first=day, last=day, kind=None,
                           reason="Maintenance", actor=ops, now=clock.now)
            calendar.reopen(session, program, centre_ids=[centre.id], first=day, last=day, kind=None, actor=ops,
                            now=clock.now)
        events = events_since(session, since)
        assert session.get(Centre, centre.id) is not None
        records.append([(e.action, e.actor, e.subject, e.centre_id == centre.id, e.reason, e.details) for e in events])
    assert records[0] == records[1]
    assert [r[0] for r in records[0]] == ["close_calendar", "reopen_calendar"]
