"""Sample data for the psychometrician's screens on a fresh install: items to edit and review, and a
finished stretch of simulated sittings for a pretest calibration run.

``cbt demo`` calls :func:`ensure_demo_stretch` once per database (it does nothing when the stretch is
there). Everything goes through the product's own services, as a user's actions would:

- a few sample pretest items are taken back to review (pretest -> reviewed) and some of those on to
  draft (reviewed -> draft), audited, so the bank has draft and reviewed items to edit;
- simulated candidates, booked at the sample centres some days before today, log in at the seat,
  start (the real form assembly, pretest items included), answer every item through the hot-path
  answer store and submit (the real scoring). Each answer is right with the 3PL probability of the
  item's bank parameters (the sample bank's are synthetic: its "truth"), a wrong answer picks a
  distractor at random.

The stretch is sized for the program's ``min_sittings``: enough for a calibration run and its
review screens, not for approving items (``min_responses``): the run says so on each item.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from centers import seats
from centers.accounts import Actor
from centers.bookings import book
from centers.models import BookingStatus, Candidate, Centre, Seat, Slot
from delivery import sittings
from delivery.answers import AnswerStore
from itembank import lifecycle
from itembank.bank import versions_by_id
from itembank.content import unpack
from itembank.models import Item
from itembank.program import ExamProgram
from persistence import create_database_engine
from persistence.unit_of_work import unit_of_work

ACTOR, ROLE = "demo data", "psychometrician"
# The slot kind of the simulated sittings: the stretch is found by it, and made once.
STRETCH_KIND = "stretch"
STRETCH_DAYS_AGO = 7
STRETCH_START = dt.time(18, 5)
# Items the demo takes back from pretest: the first ones to review, the next also on to draft.
TO_REVIEWED, TO_DRAFT = 3, 3


@dataclass(frozen=True)
class DemoStretch:
    sittings: int  # finished sittings of the stretch (0: it was there already)
    reviewed: list[str]
    drafts: list[str]
    day: dt.date


def quick_engine():
    """The database engine for making the stretch: on SQLite without the fsync per commit (FULL, for a power
    cut in a real sitting), which would make some 12,000 answer commits of demo data take a minute."""
    engine = create_database_engine()
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _no_fsync(dbapi_connection, _record):
            dbapi_connection.execute("PRAGMA synchronous = NORMAL")
    return engine


def stretch_sittings(program: ExamProgram) -> int:
    """How many sittings the stretch has: a fifth more than a calibration run needs."""
    return int(program.calibration.min_sittings * 1.2)


def ensure_demo_stretch(session: Session, engine, program: ExamProgram, now: dt.datetime, *,
                        sittings_count: int | None = None, seed: int = 2026) -> DemoStretch:
    """Make the demo's draft and reviewed items and its finished stretch of sittings, once."""
    zone = ZoneInfo(program.timezone)
    day = now.astimezone(zone).date() - dt.timedelta(days=STRETCH_DAYS_AGO)
    # An evening start, after the calendar's slots of that day (a centre has one slot per start time).
    starts_at = dt.datetime.combine(day, STRETCH_START, zone).astimezone(dt.timezone.utc)
    if session.scalar(select(func.count(Slot.id)).where(Slot.kind == STRETCH_KIND)):
        return DemoStretch(0, [], [], day)
    reviewed, drafts = _items_back_to_review(session, program, starts_at - dt.timedelta(days=1))
    count = stretch_sittings(program) if sittings_count is None else sittings_count
    _simulate(session, engine, program, count, starts_at, np.random.default_rng(seed))
    return DemoStretch(count, reviewed, drafts, day)


def _items_back_to_review(session: Session, program: ExamProgram, at: dt.datetime) -> tuple[list[str], list[str]]:
    """Take pretest items back to review (and some to draft), from the fields with the most pretest items to
    spare, so that every sitting still gets its pretest items."""
    pretest = session.execute(select(Item.code, Item.field).where(Item.status == "pretest").order_by(Item.code)).all()
    spare = {f.code: sum(1 for _, field in pretest if field == f.code) - f.pretest for f in program.fields}
    chosen: list[str] = []
    for code, field in pretest:
        if len(chosen) == TO_REVIEWED + TO_DRAFT:
            break
        if spare.get(field, 0) > 0:
            chosen.append(code)
            spare[field] -= 1
    for code in chosen:
        lifecycle.move(session, program, code, "reviewed", actor=ACTOR, actor_role=ROLE, now=at,
                       reason="demo: back to review, for a first look at editing")
    drafts = chosen[TO_REVIEWED:]
    for code in drafts:
        lifecycle.move(session, program, code, "draft", actor=ACTOR, actor_role=ROLE, now=at,
                       reason="demo: back to draft, for a first look at editing")
    return chosen[:TO_REVIEWED], drafts


def _simulate(session: Session, engine, program: ExamProgram, n: int, starts_at: dt.datetime,
              rng: np.random.Generator) -> None:
    day = starts_at.astimezone(ZoneInfo(program.timezone)).date()
    with unit_of_work(session):
        centres = _centres(session)
        slots = [Slot(centre=centre, date=day, kind=STRETCH_KIND, starts_at=starts_at, capacity=n) for centre in centres]
        session.add_all(slots)
        session.flush()
        theta = rng.normal(0.2, 1.0, n)
        bookings = []
        for index in range(n):
            occupation = "student" if rng.random() < 0.39 else "working"
            company = None if occupation == "student" else ("it" if rng.random() < 0.38 else "non-it")
            born = dt.date(1970, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365 * 35)))
            candidate = Candidate(name=f"模擬受験者 {index + 1:03d}", name_kana=f"モギジュケンシャ {index + 1:03d}",
                                  date_of_birth=born, occupation=occupation, company_type=company)
            booking = book(session, candidate, slots[index % len(slots)])
            booking.status, booking.checked_in_at = BookingStatus.CHECKED_IN, starts_at - dt.timedelta(minutes=10)
            bookings.append(booking)
    store = AnswerStore(engine)
    truth: dict[int, tuple[float, float, float, int]] = {}
    seat_pcs: dict[int, str] = {}
    for index, booking in enumerate(bookings):
        centre = booking.slot.centre
        if centre.id not in seat_pcs:
            # The centre's (simulated) proctor enrols one PC, where its candidates log in in turn.
            seat_pcs[centre.id], _seat = seats.enrol_this_pc(
                session, centre.seats[0].id, actor=Actor("demo stretch", "proctor", centre_id=centre.id),
                reason="simulated sittings of the demo", now=starts_at - dt.timedelta(minutes=30))
        sitting, token = sittings.candidate_login(session, program, booking.admission_code,
                                                  booking.candidate.date_of_birth, starts_at, rng,
                                                  seat_token=seat_pcs[centre.id])
        sittings.candidate_start(session, program, sitting.id, token, starts_at)
        versions = [entry.item_version_id for entry in sitting.items]
        unknown = set(versions) - set(truth)
        for version in versions_by_id(session, unknown).values():
            truth[version.id] = (version.a, version.b, version.c, unpack(version.content).key)
        a, b, c, keys = (np.array(column) for column in zip(*(truth[v] for v in versions)))
        right = rng.random(len(versions)) < c + (1 - c) / (1 + np.exp(-a * (theta[index] - b)))
        wrong = (keys + rng.integers(1, 4, len(versions))) % 4
        chosen = np.where(right, keys, wrong)
        hashed = sittings.token_hash(token)
        answered_at = starts_at + dt.timedelta(minutes=40)
        for entry, option in zip(sitting.items, chosen):
            store.save_answer(sitting.id, hashed, entry.position, int(option), answered_at)
        sittings.candidate_finish(session, program, sitting.id, token, starts_at + dt.timedelta(minutes=75))


def _centres(session: Session) -> list[Centre]:
    """A few sample centres in different regions (those of ``cbt centres load``), or the demo centre alone."""
    from centers.demo import ensure_demo_centre

    chosen: dict[str, Centre] = {}
    for centre in session.scalars(select(Centre).where(Centre.active.is_(True)).order_by(Centre.code)):
        if centre.region not in chosen and centre.seats:
            chosen[centre.region] = centre
        if len(chosen) == 4:
            break
    if not chosen:
        centre = ensure_demo_centre(session)
        if not centre.seats:
            centre.seats = [Seat(label="1")]
        return [centre]
    return list(chosen.values())
