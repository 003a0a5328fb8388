"""Many candidates racing for the last places of a slot, as real concurrent clients on PostgreSQL."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select

from centers import bookings, calendar
from centers.accounts import Actor
from centers.models import ACTIVE_BOOKING, Booking, Slot
from persistence import session_factory
from persistence.errors import DomainError
from tests.centre_helpers import applicant_browsers, frozen_clock
from tests.helpers import new_centre, registered_candidate


@pytest.fixture
def clock():
    return frozen_clock()


@pytest.fixture
def postgresql_only(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("real concurrent writers: PostgreSQL (SQLite serialises every writer by design)")


def open_slot(session, program, clock, seats: int) -> Slot:
    centre = new_centre(session, seats=seats)
    day = calendar.local_today(program, clock.now) + dt.timedelta(days=5)
    calendar.extend_calendar(session, program, day, 1, [centre.id])
    slot = session.scalar(select(Slot).where(Slot.centre_id == centre.id).order_by(Slot.starts_at))
    session.commit()
    return slot


def race(workers: int, attempt) -> list:
    """Run ``attempt(n)`` in ``workers`` threads released at the same instant; their outcomes."""
    barrier = threading.Barrier(workers)
    outcomes: list = [None] * workers

    def run(n: int) -> None:
        barrier.wait()
        try:
            outcomes[n] = attempt(n)
        except Exception as error:  # the outcome is what we check
            outcomes[n] = error

    threads = [threading.Thread(target=run, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def active_bookings(session, slot_id: int) -> int:
    session.expire_all()
    return session.scalar(select(func.count(Booking.id)).where(Booking.slot_id == slot_id,
                                                                 Booking.status.in_(ACTIVE_BOOKING)))


def test_many_clients_booking_the_last_place_get_exactly_one_booking(postgresql_only, app, session, program, clock):
    slot = open_slot(session, program, clock, seats=1)
    people = [registered_candidate(session, f"Racer {n}") for n in range(24)]
    session.commit()
    clients = [applicant_browsers(app, session, person.id, 1, clock.now)[0] for person in people]

    def attempt(n: int):
        client, token = clients[n]
        return client.post("/booking/book", data={"csrf_token": token, "slot_id": slot.id})

    responses = race(len(clients), attempt)
    assert all(not isinstance(r, Exception) for r in responses), responses
    booked = [r for r in responses if "/slip" in r.headers.get("Location", "")]
    refused = [r for r in responses if "/booking/find" in r.headers.get("Location", "")]
    assert (len(booked), len(refused)) == (1, len(clients) - 1)
    assert active_bookings(session, slot.id) == 1
    assert session.get(Slot, slot.id).booked == 1


def test_concurrent_bookings_fill_a_slot_to_capacity_and_no_further(postgresql_only, engine, session, program, clock):
    slot = open_slot(session, program, clock, seats=3)
    people = [registered_candidate(session, f"Racer {n}") for n in range(30)]
    session.commit()
    sessions = session_factory(engine)

    def attempt(n: int):
        with sessions() as own:
            booking = bookings.reserve(own, program, slot.id, clock.now, candidate_id=people[n].id,
                                       actor=Actor.candidate(people[n].id))
            return booking.id

    outcomes = race(len(people), attempt)
    won = [o for o in outcomes if isinstance(o, int)]
    lost = [o for o in outcomes if isinstance(o, DomainError)]
    assert (len(won), len(lost)) == (3, 27), [o for o in outcomes if not isinstance(o, (int, DomainError))]
    assert all("fully booked" in str(o) for o in lost)
    assert active_bookings(session, slot.id) == 3 and session.get(Slot, slot.id).booked == 3
