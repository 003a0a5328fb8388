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
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, joinedload

from centers.bookings import assign_seat, find_by_admission
from centers.models import Booking, Slot
from delivery.models import Sitting, SittingItem
from itembank.assembly import draw_form
from itembank.bank import contents_by_version
from itembank.program import ExamProgram
from scoring.models import ScoreResult
from scoring.results import ScoredAnswer, score_answers
from scoring.rules import current_rule_version
from persistence.errors import Conflict, InvalidInput, NotSignedIn, Refused


class Paused(Conflict):
    """The proctor has paused the sitting: nothing can change until it resumes."""


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
    session: Session, program: ExamProgram, admission_code: str, date_of_birth: dt.date, now: dt.datetime,
    rng: np.random.Generator | None = None,
) -> tuple[Sitting, str]:
    """Log a candidate in at the seat; returns the sitting and a fresh login token.

    The sitting and its form are created at the first login, during the check-in
    window: the start then only starts the clock, so every centre can start a slot
    at the same minute, and a form that cannot be assembled shows before the start.
    Each login replaces the token, so a seat the candidate has left (say, after a
    PC failure) is locked out.
    """
    booking = find_by_admission(session, admission_code, date_of_birth)
    if booking is None:
        raise NotSignedIn("The admission code and date of birth do not match a booking.")
    sitting = session.scalar(select(Sitting).where(Sitting.booking_id == booking.id).with_for_update())
    token = secrets.token_urlsafe(24)
    if sitting is not None and sitting.status in ("finished", "ended"):
        # The score report stays available to the candidate after the day of the sitting.
        sitting.login_token_hash = token_hash(token)
        return sitting, token
    if booking.status == "cancelled":
        raise Refused("This booking was cancelled.")
    slot_day = booking.slot.date
    if slot_day != local_date(program, now):
        raise Refused(f"This booking is for {slot_day:%d %B %Y}, not today.")
    opens = booking.slot.starts_at - dt.timedelta(minutes=program.admission.venue_opens_minutes_before)
    if now < opens:
        raise Refused(f"Login opens at {local_time(program, opens)}.")
    if program.admission.check_in_required and booking.status != "checked_in":
        raise Refused("Please check in with the proctor before logging in.")

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
        form = draw_form(session, program, rng or np.random.default_rng())
        sitting.form_id = form.form_id
        session.add(sitting)
        session.flush()
        # One multi-row INSERT, not a hundred ORM objects: every candidate of a slot logs in
        # within the same half hour. ``sitting.items`` loads them when first read.
        session.execute(insert(SittingItem), [
            {"sitting_id": sitting.id, "position": p.position, "item_version_id": p.version_id, "field": p.field,
             "is_pretest": p.is_pretest, "marked": False, "option_order": p.option_order_text}
            for p in form
        ])
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
        raise NotSignedIn("Your session has ended; please log in again.")
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


def start(session: Session, program: ExamProgram, sitting: Sitting, now: dt.datetime) -> None:
    """Start the clock on the form assembled at login. Starting a started sitting does nothing."""
    if sitting.status in ("in_progress", "paused"):
        return
    if sitting.status != "waiting":
        raise Conflict("This sitting has already ended.")
    slot_start = opens_at(session, sitting)
    if now < slot_start:
        raise Refused("The sitting cannot start before the slot's start time.")
    seconds = time_at_start(program, sitting, slot_start, now)
    if seconds <= 0:
        raise Refused("The time for this slot has run out; please see the proctor.")
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
            raise Conflict("This sitting ended without a score.")
        return existing
    if sitting.status == "waiting":
        raise Conflict("The sitting has not started.")
    if sitting.status == "in_progress" and sitting.deadline_at is not None and sitting.deadline_at <= now:
        now, reason = sitting.deadline_at, "time_up"
    sitting.status = "finished"
    sitting.finished_at = now
    sitting.end_reason = reason
    sitting.remaining_seconds = 0.0
    sitting.deadline_at = None
    result = score_answers(session, current_rule_version(session, program), scored_answers(session, sitting))
    result.sitting_id = sitting.id
    session.add(result)
    return result


def scored_answers(session: Session, sitting: Sitting) -> list[ScoredAnswer]:
    """The sitting's answers to its scored items (pretest items excluded), in position order,
    as the database holds them: the answers arrive through the hot path's own connection,
    so objects this session loaded earlier may not show them."""
    rows = session.execute(
        select(SittingItem.item_version_id, SittingItem.field, SittingItem.chosen_option)
        .where(SittingItem.sitting_id == sitting.id, SittingItem.is_pretest.is_(False))
        .order_by(SittingItem.position)
    )
    return [ScoredAnswer(*row) for row in rows]


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
    stimulus: dict | None = None  # a shared passage shown with the item: {"title", "text"}
    instructions: str = ""  # for the candidate, shown before the stem
    language: str = ""  # the text's language tag, for the page's lang attribute


def display_order(entry: SittingItem, n_options: int) -> list[int]:
    """The content indices of an item's options in the order this sitting shows them (recorded at assembly)."""
    if not entry.option_order:
        return list(range(n_options))
    return [int(i) for i in entry.option_order.split(",")]


def presented_items(session: Session, sitting: Sitting) -> list[PresentedItem]:
    # One query for the sitting's positions and the cached, decrypted contents: this runs for
    # every candidate at the slot's start, all at once.
    entries = session.execute(
        select(SittingItem.position, SittingItem.item_version_id, SittingItem.field, SittingItem.option_order,
               SittingItem.chosen_option, SittingItem.marked)
        .where(SittingItem.sitting_id == sitting.id).order_by(SittingItem.position)
    ).all()
    contents = contents_by_version(session, {entry.item_version_id for entry in entries})
    presented = []
    for entry in entries:
        content = contents[entry.item_version_id]
        presented.append(
            PresentedItem(
                position=entry.position,
                field=entry.field,
                stem=content.stem,
                table=content.table,
                figure={"src": content.figure_uri, "alt": content.figure["alt"]} if content.figure else None,
                options=tuple(PresentedOption(i, content.options[i]) for i in display_order(entry, len(content.options))),
                chosen_option=entry.chosen_option,
                marked=entry.marked,
                stimulus={"title": content.stimulus["title"], "text": content.stimulus["text"]}
                if content.stimulus else None,
                instructions=content.instructions,
                language=content.language,
            )
        )
    return presented


# ---- the proctor's transitions -------------------------------------------------
#
# Each takes the sitting locked (``with_for_update``) by the caller, changes only
# the sitting's own clock and status columns, and leaves auditing to the caller,
# who knows who acted and why. The candidate's hot-path statements check status
# and deadline in SQL, so a pause or an end takes effect on their very next save.

MAX_ADDED_MINUTES = 120


def _refuse_unless(sitting: Sitting, allowed: tuple[str, ...], action: str) -> None:
    if sitting.status not in allowed:
        raise Conflict(f"A sitting that is {sitting.status.replace('_', ' ')} cannot be {action}.")


def pause(session: Session, program: ExamProgram, sitting: Sitting, now: dt.datetime) -> None:
    """Stop the clock: the time left is kept and no answer is taken until resumed."""
    if expire_if_due(session, program, sitting, now):
        raise Conflict("The sitting's time ran out before it could be paused.")
    _refuse_unless(sitting, ("in_progress",), "paused")
    sitting.remaining_seconds = remaining_seconds(sitting, now)
    sitting.deadline_at = None
    sitting.status = "paused"


def resume(session: Session, program: ExamProgram, sitting: Sitting, now: dt.datetime) -> None:
    """Start the clock again with the time the sitting had when paused."""
    _refuse_unless(sitting, ("paused",), "resumed")
    sitting.deadline_at = now + dt.timedelta(seconds=sitting.remaining_seconds or 0.0)
    sitting.remaining_seconds = None
    sitting.status = "in_progress"


def add_time(session: Session, program: ExamProgram, sitting: Sitting, minutes: float, now: dt.datetime) -> None:
    """Give the sitting more time (e.g. for time lost to a PC failure)."""
    if not 0 < minutes <= MAX_ADDED_MINUTES:
        raise InvalidInput(f"Add between 1 and {MAX_ADDED_MINUTES} minutes.")
    if expire_if_due(session, program, sitting, now):
        raise Conflict("The sitting's time ran out before time could be added.")
    _refuse_unless(sitting, ("waiting", "in_progress", "paused"), "given more time")
    if sitting.status == "in_progress":
        sitting.deadline_at = sitting.deadline_at + dt.timedelta(minutes=minutes)
    else:
        sitting.remaining_seconds = (sitting.remaining_seconds or 0.0) + minutes * 60.0


def end(session: Session, program: ExamProgram, sitting: Sitting, now: dt.datetime, reason: str) -> None:
    """Stop a sitting for good (e.g. misconduct): no more answers, no score."""
    if expire_if_due(session, program, sitting, now):
        raise Conflict("The sitting's time had already run out; it was scored as finished.")
    _refuse_unless(sitting, ("waiting", "in_progress", "paused"), "ended")
    sitting.remaining_seconds = remaining_seconds(sitting, now)
    sitting.status = "ended"
    sitting.finished_at = now
    sitting.end_reason = reason
    sitting.deadline_at = None


def lock_out(sitting: Sitting) -> None:
    """Invalidate the current login: the PC the candidate leaves can no longer act."""
    sitting.login_token_hash = token_hash(secrets.token_urlsafe(24))


def move_seat(session: Session, program: ExamProgram, sitting: Sitting, booking: Booking, seat_id: int,
              now: dt.datetime) -> None:
    """Move a sitting to another seat after a PC failure.

    The clock stops (a running sitting is paused) and the old PC is locked out;
    the candidate logs in at the new seat and, once the proctor resumes, goes
    on at the same question with the time they had.
    """
    if expire_if_due(session, program, sitting, now):
        raise Conflict("The sitting's time ran out before it could be moved.")
    _refuse_unless(sitting, ("waiting", "in_progress", "paused"), "moved")
    if seat_id == sitting.seat_id:
        raise InvalidInput("The sitting is already at that seat.")
    assign_seat(session, booking, seat_id)
    if sitting.status == "in_progress":
        pause(session, program, sitting, now)
    sitting.seat_id = booking.seat_id
    lock_out(sitting)


def proctor_start(session: Session, program: ExamProgram, sitting: Sitting, now: dt.datetime) -> None:
    """The proctor starts (unlocks) a logged-in candidate's sitting, as the candidate's own Start would:
    the slot's start time and the late-arrival rule apply the same way."""
    _refuse_unless(sitting, ("waiting",), "started")
    start(session, program, sitting, now)
