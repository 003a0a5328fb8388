"""The sitting's state machine: login at the seat, start, finish, the clock.

Every transition takes the database session and the current time; the caller
commits. The answer, mark and position writes, which run a hundred times per
sitting, are in :mod:`delivery.answers` as single SQL statements.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from centers.bookings import find_by_admission
from centers.models import Booking, Slot
from delivery.models import Sitting, SittingItem
from itembank.assembly import draw_form
from itembank.bank import versions_by_id
from itembank.content import unpack
from itembank.program import ExamProgram
from scoring.models import ScoreResult
from scoring.results import ScoredAnswer, score_answers


class SittingError(Exception):
    """A request the sitting refuses; ``status`` is the HTTP status it maps to."""

    status = 409

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def local_date(program: ExamProgram, moment: dt.datetime) -> dt.date:
    return moment.astimezone(ZoneInfo(program.timezone)).date()


def local_time(program: ExamProgram, moment: dt.datetime) -> str:
    return moment.astimezone(ZoneInfo(program.timezone)).strftime("%H:%M")


def allowed_seconds(program: ExamProgram, booking: Booking) -> float:
    """The sitting's full time: the program's duration times the booking's accommodation."""
    return program.duration_minutes * 60.0 * booking.time_multiplier


def candidate_login(
    session: Session, program: ExamProgram, admission_code: str, date_of_birth: dt.date, now: dt.datetime
) -> tuple[Sitting, str]:
    """Log a candidate in at the seat; returns the sitting and a fresh login token.

    The sitting is created at the first login. Each login replaces the token,
    so a seat the candidate has left (say, after a PC failure) is locked out.
    """
    booking = find_by_admission(session, admission_code, date_of_birth)
    if booking is None:
        raise SittingError("The admission code and date of birth do not match a booking.", status=401)
    if booking.status == "cancelled":
        raise SittingError("This booking was cancelled.", status=403)
    slot_day = booking.slot.date
    if slot_day != local_date(program, now):
        raise SittingError(f"This booking is for {slot_day:%d %B %Y}, not today.", status=403)
    opens = booking.slot.starts_at - dt.timedelta(minutes=program.admission.venue_opens_minutes_before)
    if now < opens:
        raise SittingError(f"Login opens at {local_time(program, opens)}.", status=403)
    if program.admission.check_in_required and booking.status != "checked_in":
        raise SittingError("Please check in with the proctor before logging in.", status=403)

    sitting = session.scalar(select(Sitting).where(Sitting.booking_id == booking.id).with_for_update())
    token = secrets.token_urlsafe(24)
    if sitting is None:
        sitting = Sitting(
            booking_id=booking.id,
            seat_id=booking.seat_id,
            program_code=program.code,
            status="waiting",
            remaining_seconds=allowed_seconds(program, booking),
            current_position=1,
            login_token_hash=token_hash(token),
        )
        session.add(sitting)
        session.flush()
    else:
        sitting.login_token_hash = token_hash(token)
        expire_if_due(session, program, sitting, now)
    return sitting, token


def sitting_for_token(session: Session, sitting_id: int, token: str, *, lock: bool = False) -> Sitting:
    """The sitting of a logged-in candidate, if the token is the current one."""
    query = select(Sitting).where(Sitting.id == sitting_id)
    if lock:
        query = query.with_for_update()
    sitting = session.scalar(query)
    if sitting is None or not secrets.compare_digest(sitting.login_token_hash, token_hash(token)):
        raise SittingError("Your session has ended; please log in again.", status=401)
    return sitting


def booking_of(session: Session, sitting: Sitting) -> Booking:
    return session.get(Booking, sitting.booking_id, options=[joinedload(Booking.slot).joinedload(Slot.centre),
                                                               joinedload(Booking.candidate)])


def opens_at(session: Session, sitting: Sitting) -> dt.datetime:
    """When the start button opens: the slot's start time."""
    return booking_of(session, sitting).slot.starts_at


def remaining_seconds(sitting: Sitting, now: dt.datetime) -> float:
    if sitting.status == "in_progress" and sitting.deadline_at is not None:
        return max(0.0, (sitting.deadline_at - now).total_seconds())
    if sitting.status in ("waiting", "paused"):
        return max(0.0, sitting.remaining_seconds or 0.0)
    return 0.0


def time_at_start(program: ExamProgram, sitting: Sitting, slot_start: dt.datetime, now: dt.datetime) -> float:
    """The time the candidate gets on starting now: a late start is deducted if the program says so."""
    lateness = max(0.0, (now - slot_start).total_seconds())
    if program.admission.late_arrival == "deduct":
        return max(0.0, (sitting.remaining_seconds or 0.0) - lateness)
    return sitting.remaining_seconds or 0.0


def start(session: Session, program: ExamProgram, sitting: Sitting, now: dt.datetime,
          rng: np.random.Generator | None = None) -> None:
    """Assemble the form and start the clock. Starting a started sitting does nothing."""
    if sitting.status in ("in_progress", "paused"):
        return
    if sitting.status != "waiting":
        raise SittingError("This sitting has already ended.")
    slot_start = opens_at(session, sitting)
    if now < slot_start:
        raise SittingError("The sitting cannot start before the slot's start time.", status=403)
    seconds = time_at_start(program, sitting, slot_start, now)
    if seconds <= 0:
        raise SittingError("The time for this slot has run out; please see the proctor.", status=403)
    form = draw_form(session, program, rng or np.random.default_rng())
    sitting.items = [
        SittingItem(position=p.position, item_version_id=p.version_id, field=p.field, is_pretest=p.is_pretest)
        for p in form
    ]
    sitting.status = "in_progress"
    sitting.started_at = now
    sitting.deadline_at = now + dt.timedelta(seconds=seconds)
    sitting.remaining_seconds = None
    sitting.current_position = 1


def expire_if_due(session: Session, program: ExamProgram, sitting: Sitting, now: dt.datetime) -> bool:
    """Finish a sitting whose time has run out; True if it did."""
    if sitting.status == "in_progress" and sitting.deadline_at is not None and sitting.deadline_at <= now:
        finish(session, program, sitting, sitting.deadline_at, reason="time_up")
        return True
    return False


def finish(session: Session, program: ExamProgram, sitting: Sitting, now: dt.datetime,
           reason: str = "submitted") -> ScoreResult:
    """End the sitting and score what was answered (pretest items excluded)."""
    if sitting.status in ("finished", "ended"):
        existing = session.scalar(select(ScoreResult).where(ScoreResult.sitting_id == sitting.id))
        if existing is None:
            raise SittingError("This sitting ended without a score.")
        return existing
    if sitting.status == "waiting":
        raise SittingError("The sitting has not started.")
    if sitting.status == "in_progress" and sitting.deadline_at is not None and sitting.deadline_at <= now:
        now, reason = sitting.deadline_at, "time_up"
    sitting.status = "finished"
    sitting.finished_at = now
    sitting.end_reason = reason
    sitting.remaining_seconds = 0.0
    sitting.deadline_at = None
    result = score_answers(
        session,
        program,
        [ScoredAnswer(i.item_version_id, i.field, i.chosen_option) for i in sitting.items if not i.is_pretest],
    )
    result.sitting_id = sitting.id
    session.add(result)
    return result


def expire_due_sittings(session: Session, program: ExamProgram, now: dt.datetime) -> int:
    """Finish every sitting whose time has run out (for a periodic job); returns how many."""
    due = session.scalars(
        select(Sitting).where(Sitting.status == "in_progress", Sitting.deadline_at <= now).with_for_update()
    ).all()
    for sitting in due:
        expire_if_due(session, program, sitting, now)
    return len(due)


@dataclass(frozen=True)
class PresentedOption:
    id: int  # index in the item version's own option list
    text: str


@dataclass(frozen=True)
class PresentedItem:
    """An item as the candidate's page receives it: no key, no pretest flag."""

    position: int
    field: str
    stem: str
    table: dict | None
    figure: dict | None  # {"src": data: URI, "alt": text}
    options: tuple[PresentedOption, ...]
    chosen_option: int | None
    marked: bool


def presented_items(session: Session, sitting: Sitting) -> list[PresentedItem]:
    versions = versions_by_id(session, {i.item_version_id for i in sitting.items})
    presented = []
    for entry in sitting.items:
        content = unpack(versions[entry.item_version_id].content)
        presented.append(
            PresentedItem(
                position=entry.position,
                field=entry.field,
                stem=content.stem,
                table=content.table,
                figure={"src": content.figure_uri, "alt": content.figure["alt"]} if content.figure else None,
                options=tuple(PresentedOption(i, text) for i, text in enumerate(content.options)),
                chosen_option=entry.chosen_option,
                marked=entry.marked,
            )
        )
    return presented
