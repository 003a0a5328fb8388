"""Booking under the program's rules: the calendar, capacity, moves, cancellation, closures."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from centers import bookings, calendar
from centers.accounts import Actor
from centers.bookings import add_months
from centers.models import CalendarClosure, Slot
from persistence.errors import DomainError
from tests.conftest import Clock
from tests.helpers import new_centre, registered_candidate

OPS = Actor.operations("ops")


@pytest.fixture
def clock():
    # A fixed Monday in Japan: the rules' dates never depend on the day the tests run.
    return Clock(dt.datetime(2030, 6, 3, 0, 30, tzinfo=dt.timezone.utc))


# Each service is its own unit of work (a refusal rolls back): the test's own rows are committed first.

def reserve(session, program, candidate, slot_id, now):
    session.commit()
    return bookings.reserve(session, program, slot_id, now, candidate_id=candidate.id,
                            actor=Actor.candidate(candidate.id))


def move(session, program, booking, slot_id, now):
    session.commit()
    return bookings.move(session, program, booking.id, slot_id, now, actor=Actor.candidate(booking.candidate_id))


def cancel(session, program, booking, now):
    session.commit()
    return bookings.cancel(session, program, booking.id, now, actor=Actor.candidate(booking.candidate_id))


@pytest.fixture
def today(program, clock):
    return calendar.local_today(program, clock.now)


def slots_of(session, centre, day=None):
    query = select(Slot).where(Slot.centre_id == centre.id).order_by(Slot.starts_at)
    if day is not None:
        query = query.where(Slot.date == day)
    return session.scalars(query).all()


def test_the_calendar_opens_each_centre_s_days_once_with_its_seats_as_capacity(session, program, today):
    centre = new_centre(session, seats=5)
    weekdays_only = new_centre(session, seats=3)
    weekdays_only.open_weekdays = "01234"
    ids = [centre.id, weekdays_only.id]
    assert calendar.extend_calendar(session, program, today, 14, ids) == 14 * 3 + 10 * 3
    assert calendar.extend_calendar(session, program, today, 14, ids) == 0
    assert calendar.extend_calendar(session, program, today, 15, ids) == 3 + (3 if (today + dt.timedelta(days=14)).weekday() < 5 else 0)
    slots = slots_of(session, centre, today)
    assert [s.kind for s in slots] == ["morning", "afternoon", "evening"]
    assert {s.capacity for s in slots} == {5} and {s.booked for s in slots} == {0}
    local = [s.starts_at.astimezone(calendar.ZoneInfo(program.timezone)).strftime("%H:%M") for s in slots]
    assert local == [t.starts for t in program.booking.slots]
    assert all(s.date.weekday() < 5 for s in slots_of(session, weekdays_only))


def test_a_full_slot_refuses_the_next_booking_and_the_database_refuses_overbooking(session, program, clock, today):
    centre = new_centre(session, seats=2)
    calendar.extend_calendar(session, program, today, 5, [centre.id])
    slot = slots_of(session, centre, today + dt.timedelta(days=2))[0]
    for n in range(2):
        reserve(session, program, registered_candidate(session), slot.id, clock.now)
    with pytest.raises(DomainError, match="fully booked"):
        reserve(session, program, registered_candidate(session), slot.id, clock.now)
    session.commit()
    session.refresh(slot)
    assert (slot.booked, slot.free) == (2, 0)
    slot.booked = 3
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


def test_the_booking_window_and_one_booking_at_a_time(session, program, clock, today):
    centre = new_centre(session)
    calendar.extend_calendar(session, program, today, program.booking.bookable_days_ahead + 3, [centre.id])
    candidate = registered_candidate(session)
    too_soon = slots_of(session, centre, today)[0]
    too_late = slots_of(session, centre, today + dt.timedelta(days=program.booking.bookable_days_ahead + 1))[0]
    with pytest.raises(DomainError, match="have closed"):
        reserve(session, program, candidate, too_soon.id, clock.now)
    with pytest.raises(DomainError, match="open until"):
        reserve(session, program, candidate, too_late.id, clock.now)
    booking = reserve(session, program, candidate, slots_of(session, centre, today + dt.timedelta(days=10))[1].id,
                               clock.now)
    assert booking.first_date == today + dt.timedelta(days=10) and len(booking.admission_code) == 14
    with pytest.raises(DomainError, match="already have a booking"):
        reserve(session, program, candidate, slots_of(session, centre, today + dt.timedelta(days=11))[1].id,
                         clock.now)
    session.rollback()


def test_moves_follow_the_deadline_the_count_and_the_three_month_window(session, program, clock, today):
    rules = program.booking
    centre, other = new_centre(session), new_centre(session, region="Kinki")
    calendar.extend_calendar(session, program, today, rules.bookable_days_ahead + 1, [centre.id, other.id])
    day = lambda n: today + dt.timedelta(days=n)  # noqa: E731
    booking = reserve(session, program, registered_candidate(session), slots_of(session, centre, day(10))[0].id,
                               clock.now)
    first_slot = booking.slot_id
    code = booking.admission_code

    move(session, program, booking, slots_of(session, other, day(12))[2].id, clock.now)
    assert (booking.slot.centre_id, booking.changes, booking.admission_code) == (other.id, 1, code)
    assert session.get(Slot, first_slot).booked == 0 and booking.slot.booked == 1

    # The window counts from the date first booked: pretend that was long ago.
    booking.first_date = day(20) - dt.timedelta(days=31 * rules.move_within_months + 1)
    with pytest.raises(DomainError, match="months after"):
        move(session, program, booking, slots_of(session, centre, day(20))[0].id, clock.now)
    booking.first_date = day(10)
    move(session, program, booking, slots_of(session, centre, day(20))[0].id, clock.now)
    assert booking.changes == rules.max_changes
    with pytest.raises(DomainError, match="the most allowed"):
        move(session, program, booking, slots_of(session, centre, day(21))[0].id, clock.now)

    # Within the last days before the sitting nothing can change.
    clock.advance(days=20 - rules.change_until_days_before + 1)
    with pytest.raises(DomainError, match=f"until {rules.change_until_days_before} days before"):
        cancel(session, program, booking, clock.now)
    session.rollback()


def test_cancelling_frees_the_place(session, program, clock, today):
    centre = new_centre(session, seats=1)
    calendar.extend_calendar(session, program, today, 10, [centre.id])
    slot = slots_of(session, centre, today + dt.timedelta(days=8))[0]
    booking = reserve(session, program, registered_candidate(session), slot.id, clock.now)
    cancel(session, program, booking, clock.now)
    assert (booking.status, booking.cancelled_at) == ("cancelled", clock.now)
    again = reserve(session, program, registered_candidate(session), slot.id, clock.now)
    assert again.slot.booked == 1
    session.rollback()


def test_a_closure_closes_slots_names_the_bookings_and_waives_the_move_rules(session, program, clock, today):
    rules = program.booking
    centre = new_centre(session)
    calendar.extend_calendar(session, program, today, 20, [centre.id])
    near = today + dt.timedelta(days=rules.change_until_days_before)  # the last day a move is still allowed
    booking = reserve(session, program, registered_candidate(session), slots_of(session, centre, near)[0].id,
                               clock.now)
    booking.changes = rules.max_changes
    clock.advance(days=1)  # now past the deadline, and out of moves

    report = calendar.close(session, program, centre_ids=[centre.id], first=near, last=near, kind=None,
                            reason="Maintenance of the air conditioning", actor=OPS, now=clock.now)
    assert report.slots == 3 and [b.id for b in report.bookings] == [booking.id]
    assert {s.status for s in slots_of(session, centre, near)} == {"closed"}
    with pytest.raises(DomainError, match="closed"):
        reserve(session, program, registered_candidate(session), slots_of(session, centre, near)[1].id, clock.now)

    move(session, program, booking, slots_of(session, centre, near + dt.timedelta(days=3))[0].id, clock.now)
    assert booking.changes == rules.max_changes  # a forced move does not count

    # Slots opened later respect the closure; reopening lifts it. (A network-wide closure is committed:
    # a day far beyond what other tests open, so that it closes no slot of theirs.)
    later = today + dt.timedelta(days=150)
    calendar.close(session, program, centre_ids=None, first=later, last=later, kind="evening", reason="Holiday",
                   actor=OPS, now=clock.now)
    calendar.extend_calendar(session, program, later - dt.timedelta(days=1), 2, [centre.id])
    assert [s.status for s in slots_of(session, centre, later)] == ["open", "open", "closed"]
    with pytest.raises(calendar.CalendarError, match="No closure"):
        calendar.reopen(session, program, centre_ids=[centre.id], first=later, last=later, kind="evening", actor=OPS,
                        now=clock.now)
    assert calendar.reopen(session, program, centre_ids=None, first=later, last=later, kind="evening", actor=OPS,
                           now=clock.now) >= 1
    session.expire_all()
    assert [s.status for s in slots_of(session, centre, later)] == ["open", "open", "open"]
    assert session.scalar(select(func.count(CalendarClosure.id)).where(CalendarClosure.date == later)) == 0
    with pytest.raises(calendar.CalendarError, match="reason"):
        calendar.close(session, program, centre_ids=None, first=later, last=later, kind=None, reason=" ", actor=OPS, now=clock.now)
    session.rollback()


def test_check_in_seats_the_candidate_by_their_seat_placement(session, program, clock, today):
    from centers.accounts import create_staff

    centre = new_centre(session, seats=3, features={3: "wheelchair near_exit"})
    proctor = create_staff(session, username=f"p-{centre.code}", display_name="P", password="a-long-password",
                           role="proctor", centre_id=centre.id)
    calendar.extend_calendar(session, program, today, 1, [centre.id])
    slot = slots_of(session, centre, today)[0]
    wheelchair = bookings.book(session, registered_candidate(session), slot, seat_need="wheelchair")
    plain = bookings.book(session, registered_candidate(session), slot)
    session.commit()
    by = Actor.staff(proctor)
    bookings.check_in(session, plain.id, clock.now, actor=by, identity_verified=True)
    bookings.check_in(session, wheelchair.id, clock.now, actor=by, identity_verified=True)
    assert (plain.seat.label, wheelchair.seat.label) == ("S-01", "S-03")
    third = bookings.book(session, registered_candidate(session), slot)
    session.commit()
    with pytest.raises(DomainError, match="taken"):
        bookings.check_in(session, third.id, clock.now, actor=by, identity_verified=True, seat_id=plain.seat_id)
    with pytest.raises(DomainError, match="photo ID"):
        bookings.check_in(session, third.id, clock.now, actor=by, identity_verified=False)
    # The database keeps one active booking per seat per slot, whatever the code does.
    third.seat_id = plain.seat_id
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()


def test_add_months_clips_to_the_month_end():
    assert add_months(dt.date(2027, 1, 31), 1) == dt.date(2027, 2, 28)
    assert add_months(dt.date(2027, 11, 15), 3) == dt.date(2028, 2, 15)
