"""The `cbt centres`, `cbt calendar` and `cbt bookings` commands on the test database."""
from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from centers import calendar
from centers.models import REGIONS, Booking, Centre, Slot
from delivery.cli import main
from persistence.audit import AuditEvent
from tests.centre_helpers import frozen_clock
from tests.helpers import booked_candidate


@pytest.fixture
def clock():
    """A fixed instant: nothing here depends on the day the tests run."""
    return frozen_clock()


@pytest.fixture
def cbt(engine, monkeypatch, clock):
    monkeypatch.setenv("CBT_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setattr("delivery.cli.centres.utcnow", lambda: clock.now)  # the commands read the tests' clock
    runner = CliRunner()

    def run(*args: str):
        result = runner.invoke(main, list(args), catch_exceptions=False)
        return result.exit_code, result.output

    return run


def test_loading_the_sample_centres_and_calendar_is_idempotent(cbt, session, program):
    code, output = cbt("centres", "load", "--days", "2")
    assert code == 0 and "slots added" in output
    assert cbt("centres", "load", "--days", "2")[1] == "centres: 0 added; calendar: 0 slots added\n"
    centres = session.scalars(select(Centre).where(Centre.code.not_like("T-%"), Centre.code.not_like("C-%"))).all()
    assert 95 <= len(centres) <= 105
    assert len({c.prefecture for c in centres}) == 47 and {c.region for c in centres} == set(REGIONS)
    listing = cbt("centres", "list", "--region", "Shikoku")[1]
    assert "KGW-TAK" in listing and "4 centres" in listing


def test_closing_and_reopening_days_from_the_command_line(cbt, session, program, clock):
    cbt("centres", "load", "--days", "5")
    booked = booked_candidate(session, program, clock.now)
    centre = session.get(Centre, booked.centre_id)
    day = calendar.local_today(program, clock.now) + dt.timedelta(days=3)
    calendar.extend_calendar(session, program, calendar.local_today(program, clock.now), 5, [centre.id])
    session.commit()

    code, output = cbt("calendar", "close", "--centre", centre.code, "--from", day.isoformat(), "--reason",
                       "Power maintenance", "--by", "ops-lead")
    assert code == 0 and output.startswith("3 slots closed; 0 bookings")
    session.expire_all()
    assert {s.status for s in session.scalars(select(Slot).where(Slot.centre_id == centre.id, Slot.date == day))} == {
        "closed"}
    assert "Power maintenance" in cbt("calendar", "closures", "--from", day.isoformat())[1]
    assert cbt("calendar", "close", "--from", day.isoformat(), "--reason", "x")[0] == 2  # neither --centre nor --all
    assert cbt("calendar", "reopen", "--centre", centre.code, "--from", day.isoformat(), "--by", "ops-lead")[1] == "3 slots open again\n"
    events = session.scalars(select(AuditEvent).where(AuditEvent.centre_id == centre.id,
                                                      AuditEvent.action.like("%calendar"))
                             .order_by(AuditEvent.id)).all()
    assert [(e.action, e.actor) for e in events] == [("close_calendar", "ops-lead"), ("reopen_calendar", "ops-lead")]


def test_accommodations_are_recorded_on_the_booking_and_audited(cbt, session, program, clock):
    booked = booked_candidate(session, program, clock.now + dt.timedelta(hours=1))
    code, output = cbt("bookings", "accommodate", booked.admission_code.lower(), "--time-multiplier", "1.5",
                       "--large-text", "--seat", "wheelchair", "--reason", "Medical certificate 2026-114")
    assert code == 0 and "time_multiplier 1.0 -> 1.5" in output
    session.expire_all()
    booking = session.get(Booking, booked.booking_id)
    assert (booking.time_multiplier, booking.large_text, booking.seat_need) == (1.5, True, "wheelchair")
    # A refusal of the service is its message and exit status 1 (as for every domain error); usage errors keep 2.
    refused = cbt("bookings", "accommodate", booked.admission_code, "--time-multiplier", "9", "--reason", "x")
    assert refused[0] == 1 and "between 1.0 and 3.0" in refused[1]
    assert cbt("bookings", "accommodate", booked.admission_code, "--reason", "x")[0] == 2
    assert session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "accommodate",
                                                                  AuditEvent.subject == f"booking:{booking.id}")) == 1


def program_day(program, moment) -> str:
    from zoneinfo import ZoneInfo

    return moment.astimezone(ZoneInfo(program.timezone)).date().isoformat()


def test_the_end_of_day_report_from_the_command_line(cbt, session, program, clock):
    # Past the program's no-show grace period (30 minutes after the slot's start).
    booked = booked_candidate(session, program, clock.now - dt.timedelta(minutes=35), checked_in=False)
    code = session.get(Centre, booked.centre_id).code
    # The command reads the wall clock, which is past the test's frozen slot: name its day.
    status, output = cbt("centres", "report", code, "--date", program_day(program, clock.now))
    day_line = next(line for line in output.splitlines() if line.startswith("day "))
    assert status == 0 and day_line.split() == ["day", "1", "0", "0", "0", "0", "1"]  # booked 1, no-show 1
    assert cbt("centres", "report", "NOWHERE")[0] == 2
