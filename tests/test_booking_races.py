"""Races on one booking or one applicant: simultaneous bookings, moves and cancellations.

Each race releases its clients at the same instant (threads over HTTP with separate
test clients on every backend, threads over the service on PostgreSQL) and checks that
exactly one of them changes anything, that the others get a clear refusal, and that
every slot's counter still equals the bookings holding a place in it.
"""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from centers import bookings, calendar
from centers.accounts import Actor
from centers.models import ACTIVE_BOOKING, Booking, Slot
from persistence import session_factory
from persistence.errors import DomainError
from tests.centre_helpers import applicant_browsers, frozen_clock
from tests.helpers import booked_candidate, csrf_token, login_staff, new_centre, registered_candidate
from tests.test_booking_concurrency import postgresql_only, race  # noqa: F401 (a fixture)

CLIENTS = 8


@pytest.fixture
def clock():
    return frozen_clock()


def open_slots(session, program, clock, *, seats: int = 4, days: int = 12):
    """A new centre with its calendar from 5 days on; its slots in time order."""
    centre = new_centre(session, seats=seats)
    calendar.extend_calendar(session, program, calendar.local_today(program, clock.now) + dt.timedelta(days=5), days,
                             [centre.id])
    session.commit()
    return centre, session.scalars(select(Slot).where(Slot.centre_id == centre.id).order_by(Slot.starts_at)).all()


@pytest.fixture
def checked(engine, monkeypatch):
    """``cbt bookings check --centre CODE``: its exit status and its last line."""
    from click.testing import CliRunner

    from delivery.cli import main

    monkeypatch.setenv("CBT_DATABASE_URL", engine.url.render_as_string(hide_password=False))

    def run(code: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, ["bookings", "check", "--centre", code], catch_exceptions=False)
        return result.exit_code, result.output.splitlines()[-1]

    return run


def drift(session, slot_ids) -> dict[int, tuple[int, int]]:
    """Slots whose counter differs from the bookings holding a place in them: id -> (counter, bookings)."""
    session.expire_all()
    counted = dict(session.execute(
        select(Booking.slot_id, func.count(Booking.id))
        .where(Booking.slot_id.in_(slot_ids), Booking.status.in_(ACTIVE_BOOKING)).group_by(Booking.slot_id)).all())
    return {s.id: (s.booked, counted.get(s.id, 0))
            for s in session.scalars(select(Slot).where(Slot.id.in_(slot_ids))) if s.booked != counted.get(s.id, 0)}


def active_of(session, candidate_id: int) -> int:
    session.expire_all()
    return session.scalar(select(func.count(Booking.id)).where(Booking.candidate_id == candidate_id,
                                                                 Booking.status.in_(ACTIVE_BOOKING)))


def reserve(session, program, candidate_id: int, slot_id: int, now):
    return bookings.reserve(session, program, slot_id, now, candidate_id=candidate_id,
                            actor=Actor.candidate(candidate_id))


def flashed(client) -> str:
    return client.get("/booking/").get_data(as_text=True)


# ---- over HTTP, on every backend --------------------------------------------------------

def test_simultaneous_bookings_by_one_applicant_make_one_booking(app, session, program, clock, checked):
    centre, slots = open_slots(session, program, clock)
    person = registered_candidate(session, "Double Booker")
    session.commit()
    clients = applicant_browsers(app, session, person.id, CLIENTS, clock.now)

    def attempt(n: int):
        client, token = clients[n]
        return client.post("/booking/book", data={"csrf_token": token, "slot_id": slots[n].id})

    responses = race(CLIENTS, attempt)
    assert all(not isinstance(r, Exception) and r.status_code == 302 for r in responses), responses
    booked = [r for r in responses if "/slip" in r.headers["Location"]]
    assert len(booked) == 1
    assert active_of(session, person.id) == 1
    assert drift(session, [s.id for s in slots]) == {}
    assert checked(centre.code) == (0, "drift: 0 slot(s)")


def one_move_left(session, program, clock, slots) -> Booking:
    person = registered_candidate(session, "Mover")
    session.commit()
    booking = reserve(session, program, person.id, slots[0].id, clock.now)
    booking.changes = program.booking.max_changes - 1
    session.commit()
    return booking


def test_simultaneous_moves_of_one_booking_move_it_once(app, session, program, clock, checked):
    centre, slots = open_slots(session, program, clock)
    booking = one_move_left(session, program, clock, slots)
    clients = applicant_browsers(app, session, booking.candidate_id, CLIENTS, clock.now)

    def attempt(n: int):
        client, token = clients[n]
        return client.post(f"/booking/{booking.id}/move", data={"csrf_token": token, "slot_id": slots[n + 1].id})

    responses = race(CLIENTS, attempt)
    assert all(not isinstance(r, Exception) and r.status_code == 302 for r in responses), responses
    moved = [r for r in responses if r.headers["Location"] == "/booking/"]
    assert len(moved) == 1
    session.expire_all()
    assert session.get(Booking, booking.id).changes == program.booking.max_changes
    assert drift(session, [s.id for s in slots]) == {}
    assert sum(s.booked for s in session.scalars(select(Slot).where(Slot.id.in_([s.id for s in slots])))) == 1
    assert checked(centre.code) == (0, "drift: 0 slot(s)")


def booking_beside_others(session, program, clock, slots, others: int = 2) -> Booking:
    """A booking in the first slot, which other candidates have booked too (a counter that can drift)."""
    people = [registered_candidate(session, f"Neighbour {n}") for n in range(others + 1)]
    session.commit()
    for person in people[:-1]:
        reserve(session, program, person.id, slots[0].id, clock.now)
    return reserve(session, program, people[-1].id, slots[0].id, clock.now)


def test_simultaneous_cancellations_of_one_booking_free_one_place(app, session, program, clock, checked):
    centre, slots = open_slots(session, program, clock)
    booking = booking_beside_others(session, program, clock, slots)
    clients = applicant_browsers(app, session, booking.candidate_id, CLIENTS, clock.now)

    def attempt(n: int):
        client, token = clients[n]
        return client.post(f"/booking/{booking.id}/cancel", data={"csrf_token": token, "confirm": "yes"})

    responses = race(CLIENTS, attempt)
    assert all(not isinstance(r, Exception) and r.status_code == 302 for r in responses), responses
    said = [flashed(client) for client, _ in clients]
    assert sum("Your booking for" in page for page in said) == 1
    assert sum("cannot be cancelled" in page for page in said) == CLIENTS - 1
    session.expire_all()
    assert session.get(Booking, booking.id).status == "cancelled"
    assert session.get(Slot, slots[0].id).booked == 2
    assert drift(session, [s.id for s in slots]) == {}
    assert checked(centre.code) == (0, "drift: 0 slot(s)")


# ---- over the service, on PostgreSQL ------------------------------------------------------

def exactly_one_wins(engine, workers: int, act) -> None:
    """``act(session, n)`` from ``workers`` threads at once, each with its own session: one carries
    it out, every other gets a domain error (a refusal, never a crash or a second success)."""
    sessions = session_factory(engine)

    def attempt(n: int):
        with sessions() as own:
            act(own, n)
            return n

    outcomes = race(workers, attempt)
    won = [o for o in outcomes if isinstance(o, int)]
    lost = [o for o in outcomes if isinstance(o, DomainError)]
    assert (len(won), len(lost)) == (1, workers - 1), outcomes

def test_simultaneous_reservations_over_the_service(postgresql_only, engine, session, program, clock):
    _, slots = open_slots(session, program, clock)
    person = registered_candidate(session, "Double Booker")
    session.commit()
    exactly_one_wins(engine, 10, lambda own, n: reserve(own, program, person.id, slots[n].id, clock.now))
    assert active_of(session, person.id) == 1
    assert drift(session, [s.id for s in slots]) == {}


def test_simultaneous_moves_over_the_service(postgresql_only, engine, session, program, clock):
    _, slots = open_slots(session, program, clock)
    booking = one_move_left(session, program, clock, slots)
    mover = Actor.candidate(booking.candidate_id)
    exactly_one_wins(engine, CLIENTS, lambda own, n: bookings.move(own, program, booking.id, slots[n + 1].id,
                                                                   clock.now, actor=mover))
    assert drift(session, [s.id for s in slots]) == {}


def test_simultaneous_cancellations_over_the_service(postgresql_only, engine, session, program, clock):
    _, slots = open_slots(session, program, clock)
    booking = booking_beside_others(session, program, clock, slots)
    canceller = Actor.candidate(booking.candidate_id)
    exactly_one_wins(engine, 6, lambda own, n: bookings.cancel(own, program, booking.id, clock.now, actor=canceller))
    assert session.get(Slot, slots[0].id).booked == 2
    assert drift(session, [s.id for s in slots]) == {}


# ---- the centre's side: no-shows, closures --------------------------------------------------

def test_simultaneous_no_shows_of_one_booking_give_its_place_back_once(app, session, program, clock):
    started = clock.now - dt.timedelta(minutes=5)
    absent = booked_candidate(session, program, started, checked_in=False)
    booked_candidate(session, program, started, checked_in=False, centre_id=absent.centre_id)
    slot_id = session.get(Booking, absent.booking_id).slot_id
    proctors = []
    for _ in range(CLIENTS):
        proctor = app.test_client()
        login_staff(proctor, absent.proctor, absent.password)
        proctors.append((proctor, csrf_token(proctor, "/proctor/")))

    def attempt(n: int):
        proctor, token = proctors[n]
        return proctor.post(f"/proctor/bookings/{absent.booking_id}/no-show", data={"csrf_token": token})

    statuses = sorted(r.status_code for r in race(CLIENTS, attempt))
    assert statuses == [302] + [409] * (CLIENTS - 1)
    assert session.get(Slot, slot_id).booked == 1
    assert drift(session, [slot_id]) == {}


def test_a_move_racing_a_closure_of_its_target_is_either_before_it_or_refused(
        postgresql_only, engine, session, program, clock):
    _, slots = open_slots(session, program, clock, seats=CLIENTS)
    movers = [one_move_left(session, program, clock, slots) for _ in range(CLIENTS)]
    target = slots[-1]
    sessions = session_factory(engine)

    def attempt(n: int):
        with sessions() as own:
            if n == 0:
                return calendar.close(own, program, centre_ids=[target.centre_id], first=target.date,
                                      last=target.date, kind=target.kind, reason="Power cut",
                                      actor=Actor.operations("ops"), now=clock.now)
            booking = movers[n - 1]
            return bookings.move(own, program, booking.id, target.id, clock.now,
                                 actor=Actor.candidate(booking.candidate_id)).id

    outcomes = race(CLIENTS + 1, attempt)
    report = outcomes[0]
    moved = [o for o in outcomes[1:] if isinstance(o, int)]
    refused = [o for o in outcomes[1:] if isinstance(o, DomainError)]
    assert len(moved) + len(refused) == CLIENTS, outcomes
    assert all("closed" in str(o) for o in refused)
    # Whatever moved in before the closure is named by it, so its candidate is told.
    assert sorted(b.id for b in report.bookings) == sorted(moved)
    assert drift(session, [s.id for s in slots]) == {}


def test_the_check_finds_drift_and_its_fix_is_audited(session, program, clock, checked):
    from click.testing import CliRunner

    from delivery.cli import main
    from persistence.audit import AuditEvent

    centre, slots = open_slots(session, program, clock)
    reserve(session, program, registered_candidate(session, "Counted").id, slots[1].id, clock.now)
    session.execute(Slot.__table__.update().where(Slot.id == slots[0].id).values(booked=2))  # written outside
    session.commit()
    status, last = checked(centre.code)
    assert (status, last) == (1, "drift: 1 slot(s)")
    fixed = CliRunner().invoke(main, ["bookings", "check", "--centre", centre.code, "--fix", "--reason",
                                      "counter written by hand", "--by", "ops"], catch_exceptions=False)
    assert fixed.exit_code == 0 and f"slot {slots[0].id}: counted 2, bookings holding a place 0" in fixed.output
    assert checked(centre.code) == (0, "drift: 0 slot(s)")
    event = session.scalar(select(AuditEvent).where(AuditEvent.subject == f"slot:{slots[0].id}"))
    assert (event.action, event.actor, event.centre_id, event.details) == (
        "repair_slot_count", "ops", centre.id, {"counted": 2, "holding": 0})
