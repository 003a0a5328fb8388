"""A simulated stretch of sittings through the real delivery code, with known item parameters.

Candidates with known abilities log in at the seat, start (the real form
assembly), answer every item through the hot-path AnswerStore and finish (the
real scoring). Each answer is right with the 3PL probability of the item's true
parameters; a wrong answer picks a distractor at random.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import event

from centers.bookings import book
from centers.models import Candidate, Centre, Seat, Slot
from delivery import sittings
from delivery.answers import AnswerStore
from itembank.bank import versions_by_id
from itembank.content import unpack
from persistence import create_database_engine
from tests.helpers import enrolled_pc


def fast_sqlite_engine(url: str):
    """The product's SQLite engine, without the fsync per commit that a power cut needs and a test does not."""
    engine = create_database_engine(url)

    @event.listens_for(engine, "connect")
    def _no_fsync(dbapi_connection, _record):
        dbapi_connection.execute("PRAGMA synchronous = OFF")

    return engine


@dataclass(frozen=True)
class Stretch:
    sittings: int
    theta: np.ndarray


def simulate_sittings(engine, session, program, truth: dict[str, tuple[float, float, float]], *, n: int,
                      now: dt.datetime, rng: np.random.Generator, theta_mean: float = 0.25,
                      theta_sd: float = 1.1) -> Stretch:
    """``n`` candidates sit the exam; ``truth`` maps item code -> its true (a, b, c)."""
    day = now.astimezone(ZoneInfo(program.timezone)).date()
    centres = []
    for code, prefecture, region in (("SIM-TKY", "Tokyo", "Kanto"), ("SIM-OSA", "Osaka", "Kinki"),
                                     ("SIM-FUK", "Fukuoka", "Kyushu")):
        centre = Centre(code=f"{code}-{rng.integers(1e9)}", name=f"Simulated {prefecture}", prefecture=prefecture,
                        region=region)
        centre.seats = [Seat(label="S-1")]
        slot = Slot(centre=centre, date=day, kind="morning", starts_at=now, capacity=n)
        session.add_all([centre, slot])
        centres.append((centre, slot))
    session.flush()
    theta = rng.normal(theta_mean, theta_sd, n)
    bookings = []
    for index in range(n):
        centre, slot = centres[index % len(centres)]
        occupation = "student" if rng.random() < 0.393 else "working"
        candidate = Candidate(name=f"Simulated {index}", date_of_birth=dt.date(2000, 1, 1), occupation=occupation,
                              company_type=None if occupation == "student" else ("it" if rng.random() < 0.378 else "non-it"))
        booking = book(session, candidate, slot)
        booking.status, booking.checked_in_at = "checked_in", now
        bookings.append(booking)
    # One enrolled seat PC per centre: every candidate of the centre logs in at it in turn.
    pcs = {centre.id: enrolled_pc(session, centre.seats[0].id, now) for centre, _slot in centres}
    session.commit()

    store = AnswerStore(engine)
    codes_of_version: dict[int, str] = {}
    keys_of_version: dict[int, int] = {}
    for index, booking in enumerate(bookings):
        sitting, token = sittings.candidate_login(session, program, booking.admission_code,
                                                  booking.candidate.date_of_birth, now, rng,
                                                  seat_token=pcs[booking.slot.centre_id])
        sittings.start(session, program, sitting, now)
        session.commit()
        unknown = {i.item_version_id for i in sitting.items} - set(codes_of_version)
        if unknown:
            for version in versions_by_id(session, unknown).values():
                codes_of_version[version.id] = version.item.code
                keys_of_version[version.id] = unpack(version.content).key
        versions = [i.item_version_id for i in sitting.items]
        a, b, c = np.array([truth[codes_of_version[v]] for v in versions]).T
        p = c + (1 - c) / (1 + np.exp(-a * (theta[index] - b)))
        right = rng.random(len(versions)) < p
        hashed = sittings.token_hash(token)
        answered_at = now + dt.timedelta(minutes=30)
        for entry, is_right in zip(sitting.items, right):
            key = keys_of_version[entry.item_version_id]
            option = key if is_right else int((key + rng.integers(1, 4)) % 4)
            assert store.save_answer(sitting.id, hashed, entry.position, option, answered_at)
        sittings.finish(session, program, sitting, now + dt.timedelta(minutes=60))
        session.commit()
    return Stretch(n, theta)
