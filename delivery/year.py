"""A simulated year of the operation, through the real booking, delivery and scoring code.

Candidates with the exam spec's group mix (fiscal 2019: 60.7 % working adults,
39.3 % students; of the working, 37.8 % at IT companies) book a place at a centre
under the program's booking rules, some do not come, and the others are checked in
by the centre's proctor, log in at the seat, start, answer every item (a response
drawn from the 3PL at their ability and the item's parameters, saved through the
hot path) and finish, each on the simulated day of their slot. Abilities per group
are set so that the pass rates come out near the spec's (working 62.8 %, students
50.1 %). What comes out is a database like a real year's, for the statistics, and
the end-of-sitting scores, which a batch rescore must reproduce.
"""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from statistics import NormalDist
from typing import Callable

import numpy as np
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from centers import bookings, calendar, seats
from centers.accounts import Actor, create_staff
from centers.demo import load_demo_centres
from centers.models import Booking, Candidate, Centre, Seat, Slot, SlotStatus, StaffAccount
from delivery import sittings
from delivery.answers import AnswerStore
from delivery.rescoring import ReproductionReport, check_reproduction
from itembank.bank import versions_by_id
from itembank.content import unpack
from itembank.program import ExamProgram
from persistence.unit_of_work import unit_of_work
from scoring.models import ScoreResult

WORKING_SHARE = 0.607
IT_SHARE_OF_WORKING = 0.378
TARGET_PASS_RATE = {"working": 0.628, "student": 0.501}
NO_SHOW_RATE = 1 - 103_812 / 117_923  # examinees / applicants, fiscal 2019
PROCTOR_PASSWORD = "simulated-proctor-password"


@dataclass(frozen=True)
class YearReport:
    applicants: int
    sittings: int
    seconds: float
    reproduction: ReproductionReport


def ability_mean(program: ExamProgram, pass_rate: float, theta_sd: float = 1.0) -> float:
    """The mean theta at which a share ``pass_rate`` of N(mean, sd) lies above the total's pass mark."""
    cut = program.scale.theta_for(program.pass_rule.total_minimum)
    return cut + theta_sd * NormalDist().inv_cdf(pass_rate)


def _proctors(session: Session, centres: list[Centre]) -> dict[int, StaffAccount]:
    """One proctor per centre for the simulation (created once)."""
    existing = {a.centre_id: a for a in session.scalars(
        select(StaffAccount).where(StaffAccount.username.like("sim-proctor-%")))}
    for centre in centres:
        if centre.id not in existing:
            existing[centre.id] = create_staff(
                session, username=f"sim-proctor-{centre.code.lower()}", display_name=f"Simulated proctor {centre.code}",
                password=PROCTOR_PASSWORD, role="proctor", centre_id=centre.id)
    session.flush()
    return existing


def simulate_year(engine: Engine, session: Session, program: ExamProgram, *, candidates: int, first_day: dt.date,
                  rng: np.random.Generator, progress: Callable[[int, int], None] | None = None) -> YearReport:
    """Book ``candidates`` candidates over the year from ``first_day`` and run every sitting that happens."""
    started = time.perf_counter()
    load_demo_centres(session)
    calendar.extend_calendar(session, program, first_day, 366)
    centres = list(session.scalars(select(Centre).where(Centre.active.is_(True)).order_by(Centre.id)))
    with unit_of_work(session):
        proctors = _proctors(session, centres)

    # Who the candidates are.
    working = rng.random(candidates) < WORKING_SHARE
    it_company = rng.random(candidates) < IT_SHARE_OF_WORKING
    age = np.where(working, rng.normal(33, 9, candidates).clip(20, 65), rng.normal(20.5, 1.5, candidates).clip(17, 30))
    mean = np.where(working, ability_mean(program, TARGET_PASS_RATE["working"]),
                    ability_mean(program, TARGET_PASS_RATE["student"]))
    theta = rng.normal(mean, 1.0)
    comes = rng.random(candidates) >= NO_SHOW_RATE

    # Bookings, each made a few weeks before its day under the booking rules.
    booked = []
    for k in range(candidates):
        day = first_day + dt.timedelta(days=int(rng.integers(0, 365)))
        booked_on = day - dt.timedelta(days=int(rng.integers(2, program.booking.bookable_days_ahead)))
        booking_time = calendar.slot_start(program, booked_on, "12:00")
        open_slots = session.scalars(
            select(Slot).where(Slot.date == day, Slot.status == SlotStatus.OPEN, Slot.booked < Slot.capacity)).all()
        if not open_slots:
            continue
        slot = open_slots[int(rng.integers(0, len(open_slots)))]
        candidate = Candidate(
            name=f"Simulated Candidate {k}",
            date_of_birth=day - dt.timedelta(days=int(age[k] * 365.25)),
            occupation="working" if working[k] else "student",
            company_type=("it" if it_company[k] else "non-it") if working[k] else None,
        )
        with unit_of_work(session):
            session.add(candidate)
        booking = bookings.reserve(session, program, slot.id, booking_time, candidate_id=candidate.id,
                                   actor=Actor.candidate(candidate.id))
        booked.append((slot.starts_at, booking.id, k))

    # The sittings, in the order their days come.
    store = AnswerStore(engine)
    truth: dict[int, tuple[float, float, float, int]] = {}
    seat_pcs: dict[int, str] = {}
    done = 0
    for starts_at, booking_id, k in sorted(booked):
        if not comes[k]:
            continue
        booking = session.get(Booking, booking_id)
        bookings.check_in(session, booking.id, starts_at - dt.timedelta(minutes=20),
                          actor=Actor.staff(proctors[booking.slot.centre_id]), identity_verified=True)
        centre_id = booking.slot.centre_id
        if centre_id not in seat_pcs:
            # Each centre's proctor enrols one PC as a seat, where its candidates log in in turn.
            seat_pcs[centre_id], _seat = seats.enrol_this_pc(
                session, session.scalar(select(Seat.id).where(Seat.centre_id == centre_id).order_by(Seat.id)),
                actor=Actor.staff(proctors[centre_id]), reason="simulated year", now=starts_at)
        sitting, token = sittings.candidate_login(session, program, booking.admission_code,
                                                  booking.candidate.date_of_birth,
                                                  starts_at - dt.timedelta(minutes=10), rng,
                                                  seat_token=seat_pcs[centre_id])
        sittings.candidate_start(session, program, sitting.id, token, starts_at)
        unknown = {i.item_version_id for i in sitting.items} - set(truth)
        for version in versions_by_id(session, unknown).values():
            truth[version.id] = (version.a, version.b, version.c, unpack(version.content).key)
        a, b, c, key = np.array([truth[i.item_version_id] for i in sitting.items]).T
        right = rng.random(len(a)) < c + (1 - c) / (1 + np.exp(-a * (theta[k] - b)))
        wrong = (key + rng.integers(1, 4, len(a))) % 4
        answered_at = starts_at + dt.timedelta(minutes=45)
        hashed = sittings.token_hash(token)
        for entry, option in zip(sitting.items, np.where(right, key, wrong).astype(int)):
            store.save_answer(sitting.id, hashed, entry.position, int(option), answered_at)
        sittings.candidate_finish(session, program, sitting.id, token, starts_at + dt.timedelta(minutes=100))
        done += 1
        if progress is not None:
            progress(done, int(comes.sum()))

    results = list(session.scalars(select(ScoreResult).order_by(ScoreResult.id)))
    return YearReport(applicants=len(booked), sittings=done, seconds=time.perf_counter() - started,
                      reproduction=check_reproduction(session, results))
