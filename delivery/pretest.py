"""Gathering responses from finished sittings for the item bank's calibration runs.

The item bank may not read sittings (imports point one way), so this delivery
module reads them and hands the bank plain arrays (:class:`itembank.calibration.ResponseSet`):
one row per finished sitting, one column per (item version shown, pretest slot or
not), the chosen option, and the candidate groups used for DIF. It also counts
item exposure for the psychometrician's tables.
"""
from __future__ import annotations

import datetime as dt
from typing import Callable

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from centers.models import Booking, Candidate, Centre, Slot
from delivery.models import Sitting, SittingItem
from itembank import calibration
from itembank.calibration import NOT_PRESENTED, OMITTED, ResponseSet
from itembank.models import CalibrationRun, ItemVersion
from itembank.program import ExamProgram
from persistence.errors import InvalidInput

# A sitting ended by a proctor (e.g. for misconduct) is not evidence about the items.
GATHERED_STATUSES = ("finished",)


def _region_column():
    """The centre's region where the centres model has one, else its prefecture."""
    return getattr(Centre, "region", Centre.prefecture)


def gather_responses(session: Session, *, finished_from: dt.datetime | None = None,
                     finished_to: dt.datetime | None = None) -> ResponseSet:
    """Every finished sitting in the window (by finish time) as a ResponseSet (reads only)."""
    conditions = [Sitting.status.in_(GATHERED_STATUSES)]
    if finished_from is not None:
        conditions.append(Sitting.finished_at >= finished_from)
    if finished_to is not None:
        conditions.append(Sitting.finished_at < finished_to)
    sittings = session.execute(
        select(Sitting.id, Candidate.occupation, Candidate.company_type, _region_column())
        .join(Booking, Booking.id == Sitting.booking_id)
        .join(Candidate, Candidate.id == Booking.candidate_id)
        .join(Slot, Slot.id == Booking.slot_id)
        .join(Centre, Centre.id == Slot.centre_id)
        .where(*conditions).order_by(Sitting.id)
    ).all()
    row_of = {row[0]: index for index, row in enumerate(sittings)}
    answers = session.execute(
        select(SittingItem.sitting_id, SittingItem.item_version_id, SittingItem.is_pretest, SittingItem.chosen_option)
        .join(Sitting, Sitting.id == SittingItem.sitting_id).where(*conditions)
    ).all()
    column_of: dict[tuple[int, bool], int] = {}
    rows, columns, values = [], [], []
    for sitting_id, version_id, is_pretest, chosen in answers:
        column = column_of.setdefault((version_id, bool(is_pretest)), len(column_of))
        rows.append(row_of[sitting_id])
        columns.append(column)
        values.append(OMITTED if chosen is None else chosen)
    choices = np.full((len(sittings), len(column_of)), NOT_PRESENTED, dtype=np.int8)
    if rows:
        choices[np.array(rows), np.array(columns)] = np.array(values, dtype=np.int8)
    keys = list(column_of)
    labels = lambda index: np.array([row[index] or "" for row in sittings], dtype=object).astype(str)  # noqa: E731
    return ResponseSet(
        choices=choices,
        version_ids=np.array([k[0] for k in keys], dtype=np.int64),
        pretest_slot=np.array([k[1] for k in keys], dtype=bool),
        sitting_ids=np.array([row[0] for row in sittings], dtype=np.int64),
        groups={"occupation": labels(1), "company_type": labels(2), "region": labels(3)},
        window_from=finished_from, window_to=finished_to,
    )


def exposure_counts(session: Session, *, since: dt.datetime | None = None) -> dict[int, dict]:
    """item id -> {"shown": sittings that showed any version, "pretest": as pretest, "answered": answers}."""
    query = (
        select(ItemVersion.item_id, func.count(), func.sum(func.cast(SittingItem.is_pretest, SittingItem.position.type)),
               func.count(SittingItem.chosen_option))
        .join(ItemVersion, ItemVersion.id == SittingItem.item_version_id)
        .group_by(ItemVersion.item_id)
    )
    if since is not None:
        query = query.join(Sitting, Sitting.id == SittingItem.sitting_id).where(Sitting.started_at >= since)
    return {item_id: {"shown": shown, "pretest": int(pretest or 0), "answered": answered}
            for item_id, shown, pretest, answered in session.execute(query)}


def sittings_count(session: Session, *, since: dt.datetime | None = None) -> int:
    query = select(func.count(Sitting.id)).where(Sitting.started_at.is_not(None))
    if since is not None:
        query = query.where(Sitting.started_at >= since)
    return session.scalar(query) or 0


RUN_KINDS = ("pretest", "drift")


def run_calibration(session: Session, program: ExamProgram, kind: str, *, actor: str, actor_role: str,
                    now: dt.datetime, finished_from: dt.datetime | None = None,
                    finished_to: dt.datetime | None = None,
                    progress: Callable[[int, float, float], None] | None = None) -> CalibrationRun:
    """Gather the window's finished sittings and run a pretest calibration or the drift watch
    (:mod:`itembank.calibration`). Commits (audited)."""
    if kind not in RUN_KINDS:
        raise InvalidInput(f"kind must be {' or '.join(RUN_KINDS)}, not {kind!r}", field="kind")
    data = gather_responses(session, finished_from=finished_from, finished_to=finished_to)
    runner = calibration.run_pretest_calibration if kind == "pretest" else calibration.run_drift_watch
    return runner(session, program, data, actor=actor, actor_role=actor_role, now=now, progress=progress)


def export_responses(session: Session, *, actor: str, actor_role: str, now: dt.datetime,
                     finished_from: dt.datetime | None = None, finished_to: dt.datetime | None = None) -> str:
    """The window's finished sittings as RESPONSES.csv (:func:`itembank.calibration.responses_csv`).
    Audited; commits."""
    data = gather_responses(session, finished_from=finished_from, finished_to=finished_to)
    return calibration.responses_csv(session, data, actor=actor, actor_role=actor_role, now=now)


def export_anchors(session: Session, *, actor: str, actor_role: str, now: dt.datetime,
                   finished_from: dt.datetime | None = None, finished_to: dt.datetime | None = None) -> str:
    """The parameters of the versions the window's sittings answered in scored slots, as PARAMS.csv
    (:func:`itembank.calibration.anchors_csv`). Audited; commits."""
    data = gather_responses(session, finished_from=finished_from, finished_to=finished_to)
    return calibration.anchors_csv(session, data, actor=actor, actor_role=actor_role, now=now)
