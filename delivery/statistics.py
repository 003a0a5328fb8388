"""Gathering the scored sittings of a period for scoring.statistics.

This layer sees sittings, bookings, centres and candidates; it hands the
statistics plain arrays, one element per scored sitting.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from centers.models import Booking, Candidate, Centre, Slot
from delivery.models import Sitting
from itembank.program import ExamProgram
from scoring.models import ScoreResult
from scoring.statistics import (
    BREAKDOWNS,
    Breakdown,
    ScoredSittings,
    Summary,
    breakdown,
    breakdowns_csv,
    candidate_group,
    score_distribution,
    summary,
)


def _period(query, since: dt.date | None, until: dt.date | None, centre_id: int | None):
    if since is not None:
        query = query.where(Slot.date >= since)
    if until is not None:
        query = query.where(Slot.date <= until)
    if centre_id is not None:
        query = query.where(Slot.centre_id == centre_id)
    return query


def scored_sittings(session: Session, program: ExamProgram, *, since: dt.date | None = None,
                    until: dt.date | None = None, centre_id: int | None = None) -> ScoredSittings:
    """Every scored sitting whose slot falls in [since, until] (dates inclusive)."""
    query = _period(
        select(Slot.date, Centre.code, Centre.region, Candidate.occupation, Candidate.company_type,
               Candidate.date_of_birth, ScoreResult.total_score, ScoreResult.field_scores, ScoreResult.passed)
        .select_from(ScoreResult)
        .join(Sitting, Sitting.id == ScoreResult.sitting_id)
        .join(Booking, Booking.id == Sitting.booking_id)
        .join(Slot, Slot.id == Booking.slot_id)
        .join(Centre, Centre.id == Slot.centre_id)
        .join(Candidate, Candidate.id == Booking.candidate_id)
        .where(ScoreResult.program_code == program.code),
        since, until, centre_id,
    )
    rows = session.execute(query).all()
    codes = program.field_codes
    dates = [row[0] for row in rows]
    return ScoredSittings(
        field_codes=codes,
        month=np.array([f"{d.year:04d}-{d.month:02d}" for d in dates], dtype=str),
        centre=np.array([row[1] for row in rows], dtype=str),
        region=np.array([row[2] for row in rows], dtype=str),
        group=np.array([candidate_group(row[3], row[4]) for row in rows], dtype=str),
        age=np.array([(d - row[5]).days / 365.25 for d, row in zip(dates, rows)], dtype=float),
        total=np.array([row[6] for row in rows], dtype=int),
        fields=np.array([[row[7][code] for code in codes] for row in rows], dtype=int).reshape(len(rows), len(codes)),
        passed=np.array([row[8] for row in rows], dtype=bool),
    )


def applicants(session: Session, *, since: dt.date | None = None, until: dt.date | None = None,
               centre_id: int | None = None) -> int:
    """Bookings (not cancelled) for slots in the period: the spec's 'applicants'."""
    query = _period(select(func.count(Booking.id)).join(Slot, Slot.id == Booking.slot_id)
                    .where(Booking.status != "cancelled"), since, until, centre_id)
    return int(session.scalar(query) or 0)


@dataclass(frozen=True)
class OperationReport:
    summary: Summary
    breakdowns: dict[str, Breakdown]
    distribution: tuple[np.ndarray, np.ndarray]
    csv: str


def operation_report(session: Session, program: ExamProgram, *, since: dt.date | None = None,
                     until: dt.date | None = None) -> OperationReport:
    """Every figure of the statistics dashboard for the period."""
    data = scored_sittings(session, program, since=since, until=until)
    rule = program.pass_rule
    breakdowns = {name: breakdown(data, name, rule.field_minimum) for name in BREAKDOWNS}
    return OperationReport(
        summary=summary(data, applicants(session, since=since, until=until)),
        breakdowns=breakdowns,
        distribution=score_distribution(data.total),
        csv=breakdowns_csv(list(breakdowns.values()), data.field_codes),
    )
