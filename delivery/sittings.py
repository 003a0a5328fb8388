"""The sitting's state machine: login at the seat, start, finish, the clock, the proctor's actions.

Every transition follows :data:`~delivery.models.SITTING`. The use cases (the candidate's
login, start, finish and sign-out; each proctor action of the console) are services:
each takes the session, the actor (and, for the console, the reason), locks the rows it
changes, checks the transition, writes its audit record and commits as one unit of work.
The answer, mark and position writes, which run a hundred times per sitting, are in
:mod:`delivery.answers` as single SQL statements.

The login token (its hash on the sitting) is the seat's sign-in: a new login, signing
out and the end of the sitting replace it, so every copy of an older cookie stops
working at once. The request that ends the sitting itself gets the new token, so that
the candidate at the seat sees the score.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Callable
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, joinedload

from centers import bookings, seats
from centers.accounts import Actor
from centers.calendar import local_today
from centers.locks import locked_one
from centers.models import Booking, BookingStatus, Seat, Slot
from delivery import prepared
from delivery.models import CLOSED_SITTING, SITTING, Sitting, SittingItem, SittingStatus
from itembank.assembly import draw_form
from itembank.bank import contents_by_version
from itembank.program import ExamProgram
from persistence.errors import Conflict, InvalidInput, NotSignedIn, Refused
from persistence.unit_of_work import unit_of_work
from scoring.models import ScoreResult
from scoring.results import ScoredAnswer, score_answers
from scoring.rules import current_rule_version

SIGNED_OUT = "Your session has ended; please log in again."


class Paused(Conflict):
    """The proctor has paused the sitting: nothing can change until it resumes."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(sitting: Sitting) -> str:
    """Replace the sitting's login token: every copy of the old one stops working. The new token."""
    token = secrets.token_urlsafe(24)
    sitting.login_token_hash = token_hash(token)
    return token


def local_time(program: ExamProgram, moment: dt.datetime) -> str:
    return moment.astimezone(ZoneInfo(program.timezone)).strftime("%H:%M")


def allowed_seconds(program: ExamProgram, booking: Booking) -> float:
    """The sitting's full time: the program's duration times the booking's accommodation."""
    return program.duration_minutes * 60.0 * booking.time_multiplier


def _locked_sitting_of_booking(session: Session, booking_id: int) -> Sitting | None:
    sitting_id = session.scalar(select(Sitting.id).where(Sitting.booking_id == booking_id))
    return locked_one(session, Sitting, sitting_id)


# ---- the candidate at the seat -------------------------------------------------------

def candidate_login(
    session: Session, program: ExamProgram, admission_code: str, date_of_birth: dt.date, now: dt.datetime,
    rng: np.random.Generator | None = None, *, seat_token: str | None = None,
) -> tuple[Sitting, str]:
    """Log a candidate in at the seat; returns the sitting and a fresh login token.

    ``seat_token`` is the PC's seat credential (:mod:`centers.seats`): where the program
    requires it (``seat_enrolment_required``), the PC must be enrolled as a seat of the
    booking's centre, or the login is refused (403, not counted as a wrong guess).

    The sitting and its form are created at the first login, during the check-in
    window: the start then only starts the clock, so every centre can start a slot
    at the same minute, and a form that cannot be assembled shows before the start.
    Each login replaces the token, so a seat the candidate has left (say, after a
    PC failure) is locked out. One unit of work; wrong codes: :class:`NotSignedIn`.
    """
    with unit_of_work(session):
        found = bookings.find_by_admission(session, admission_code, date_of_birth)
        if found is None:
            raise NotSignedIn("The admission code and date of birth do not match a booking.")
        if program.admission.seat_enrolment_required:
            seat = seats.enrolled_seat(session, seat_token)
            if seat is None or seat.centre_id != found.slot.centre_id:
                raise Refused("This PC is not enrolled as a seat of {centre}; please ask the proctor.",
                              centre=found.slot.centre.name)
        # The booking's lock: two logins with the same slip queue, and the second finds the first's sitting.
        booking = locked_one(session, Booking, found.id)
        sitting = _locked_sitting_of_booking(session, booking.id)
        if sitting is not None and sitting.status in CLOSED_SITTING:
            # The score report stays available to the candidate after the day of the sitting.
            return sitting, new_token(sitting)
        if booking.status == BookingStatus.CANCELLED:
            raise Refused("This booking was cancelled.")
        slot_day = booking.slot.date
        if slot_day != local_today(program, now):
            raise Refused(f"This booking is for {slot_day:%d %B %Y}, not today.")
        opens = booking.slot.starts_at - dt.timedelta(minutes=program.admission.venue_opens_minutes_before)
        if now < opens:
            raise Refused(f"Login opens at {local_time(program, opens)}.")
        if program.admission.check_in_required and booking.status != BookingStatus.CHECKED_IN:
            raise Refused("Please check in with the proctor before logging in.")
        if sitting is not None:
            token = new_token(sitting)
            expired = _expire_if_due(session, program, sitting, now)
            return sitting, expired or token
        sitting = Sitting(
            booking_id=booking.id,
            seat_id=booking.seat_id,
            program_code=program.code,
            status=SittingStatus.WAITING,
            remaining_seconds=allowed_seconds(program, booking),
            current_position=1,
            added_minutes=0,
        )
        token = new_token(sitting)
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
        # The questions rendered now, during check-in, not at the slot's start (delivery.prepared).
        prepared.prepare(session, program, sitting)
    return sitting, token


def prepared_questions(session: Session, program: ExamProgram, sitting: Sitting) -> prepared.SittingQuestions:
    """The sitting's prepared questions, made now if it has none (a sitting from before they were
    prepared at login) or its keys no longer open them (a rotation since)."""
    with unit_of_work(session):
        sitting = locked_one(session, Sitting, sitting.id)
        stored = session.get(prepared.SittingQuestions, sitting.id)
        if stored is not None and prepared.opened(sitting.id, stored.body) is not None:
            return stored
        return prepared.prepare(session, program, sitting)


def sitting_for_token(session: Session, sitting_id: int, token: str, *, lock: bool = False) -> Sitting:
    """The sitting of a logged-in candidate, if the token is the current one."""
    sitting = locked_one(session, Sitting, sitting_id) if lock else session.get(Sitting, sitting_id)
    if sitting is None or not secrets.compare_digest(sitting.login_token_hash, token_hash(token)):
        raise NotSignedIn(SIGNED_OUT)
    return sitting


def current(session: Session, program: ExamProgram, sitting_id: int, token: str,
            now: dt.datetime) -> tuple[Sitting, str]:
    """The signed-in candidate's sitting and their token: a sitting whose time has run out is
    finished and scored first (one unit of work), and the token then is the new one."""
    sitting = sitting_for_token(session, sitting_id, token)
    if not _due(sitting, now):
        return sitting, token
    with unit_of_work(session):
        sitting = sitting_for_token(session, sitting_id, token, lock=True)
        return sitting, _expire_if_due(session, program, sitting, now) or token


def candidate_start(session: Session, program: ExamProgram, sitting_id: int, token: str,
                    now: dt.datetime) -> Sitting:
    """The candidate's own Start, once they have agreed to the rules. Starting a started sitting does nothing."""
    with unit_of_work(session):
        sitting = sitting_for_token(session, sitting_id, token, lock=True)
        start(session, program, sitting, now)
    return sitting


@dataclass(frozen=True)
class Finished:
    status: SittingStatus
    token: str | None  # the requester's new token, when this request ended the sitting


def candidate_finish(session: Session, program: ExamProgram, sitting_id: int, token: str,
                     now: dt.datetime) -> Finished:
    """The candidate submits. Idempotent: a sitting that has already ended (by this request's
    twin, the clock or a proctor) answers the same, whoever holds which copy of the token."""
    with unit_of_work(session):
        sitting = locked_one(session, Sitting, sitting_id)
        if sitting is None:
            raise NotSignedIn(SIGNED_OUT)
        current_token = secrets.compare_digest(sitting.login_token_hash, token_hash(token))
        if sitting.status in CLOSED_SITTING:
            return Finished(sitting.status, None)
        if not current_token:
            raise NotSignedIn(SIGNED_OUT)
        if sitting.status == SittingStatus.PAUSED:
            raise Paused("The sitting is paused by the proctor.")
        if sitting.status == SittingStatus.WAITING:
            raise Conflict("The sitting has not started.")
        finish(session, program, sitting, now)
        return Finished(sitting.status, new_token(sitting))


def has_ended(session: Session, sitting_id: int) -> bool:
    """Whether the sitting has ended: a write from an old copy of its cookie is then told so (409),
    as the seat's own page racing its finish would be, rather than signed out; it reads nothing."""
    return session.scalar(select(Sitting.status).where(Sitting.id == sitting_id)) in CLOSED_SITTING


def candidate_sign_out(session: Session, sitting_id: int, token: str) -> None:
    """The candidate leaves the seat: the token (every copy of the cookie) stops working."""
    with unit_of_work(session):
        sitting = locked_one(session, Sitting, sitting_id)
        if sitting is not None and secrets.compare_digest(sitting.login_token_hash, token_hash(token)):
            new_token(sitting)


def booking_of(session: Session, sitting: Sitting) -> Booking:
    return session.get(Booking, sitting.booking_id, options=[joinedload(Booking.slot).joinedload(Slot.centre),
                                                               joinedload(Booking.candidate)])


def opens_at(session: Session, sitting: Sitting) -> dt.datetime:
    """When the start button opens: the slot's start time."""
    return booking_of(session, sitting).slot.starts_at


def remaining_seconds(sitting: Sitting, now: dt.datetime) -> float:
    if sitting.status == SittingStatus.IN_PROGRESS and sitting.deadline_at is not None:
        return max(0.0, (sitting.deadline_at - now).total_seconds())
    if sitting.status in (SittingStatus.WAITING, SittingStatus.PAUSED):
        return max(0.0, sitting.remaining_seconds or 0.0)
    return 0.0


def time_at_start(program: ExamProgram, sitting: Sitting, slot_start: dt.datetime, now: dt.datetime) -> float:
    """The time the candidate gets on starting now: a late start is deducted if the program says so."""
    return seconds_at_start(program, sitting.remaining_seconds, slot_start, now)


def seconds_at_start(program: ExamProgram, waiting_seconds: float | None, slot_start: dt.datetime,
                     now: dt.datetime) -> float:
    """:func:`time_at_start` from the waiting sitting's time (``Sitting.remaining_seconds``)."""
    lateness = max(0.0, (now - slot_start).total_seconds())
    if program.admission.late_arrival == "deduct":
        return max(0.0, (waiting_seconds or 0.0) - lateness)
    return waiting_seconds or 0.0


def start(session: Session, program: ExamProgram, sitting: Sitting, now: dt.datetime) -> None:
    """Start the clock on the form assembled at login (the sitting locked by the caller, in its
    unit of work). Starting a started sitting does nothing."""
    if sitting.status in (SittingStatus.IN_PROGRESS, SittingStatus.PAUSED):
        return
    if sitting.status != SittingStatus.WAITING:
        raise Conflict("This sitting has already ended.")
    slot_start = opens_at(session, sitting)
    if now < slot_start:
        raise Refused("The sitting cannot start before the slot's start time.")
    seconds = time_at_start(program, sitting, slot_start, now)
    if seconds <= 0:
        raise Refused("The time for this slot has run out; please see the proctor.")
    sitting.status = SITTING.target(sitting.status, "start")
    sitting.started_at = now
    sitting.deadline_at = now + dt.timedelta(seconds=seconds)
    sitting.remaining_seconds = None
    sitting.current_position = 1


def _due(sitting: Sitting, now: dt.datetime) -> bool:
    return (sitting.status == SittingStatus.IN_PROGRESS and sitting.deadline_at is not None
            and sitting.deadline_at <= now)


def _expire_if_due(session: Session, program: ExamProgram, sitting: Sitting, now: dt.datetime) -> str | None:
    """Finish a sitting whose time has run out; its new token if it did."""
    if not _due(sitting, now):
        return None
    finish(session, program, sitting, sitting.deadline_at, reason="time_up")
    return new_token(sitting)


def expire_if_due(session: Session, program: ExamProgram, sitting: Sitting, now: dt.datetime) -> bool:
    """Finish a locked sitting whose time has run out (in the caller's unit of work); True if it did."""
    return _expire_if_due(session, program, sitting, now) is not None


def finish(session: Session, program: ExamProgram, sitting: Sitting, now: dt.datetime,
           reason: str = "submitted") -> ScoreResult:
    """End the sitting and score what was answered (pretest items excluded); the sitting locked
    by the caller, in its unit of work. Finishing a finished sitting gives its score."""
    if sitting.status in CLOSED_SITTING:
        existing = session.scalar(select(ScoreResult).where(ScoreResult.sitting_id == sitting.id))
        if existing is None:
            raise Conflict("This sitting ended without a score.")
        return existing
    if sitting.status == SittingStatus.WAITING:
        raise Conflict("The sitting has not started.")
    if _due(sitting, now):
        now, reason = sitting.deadline_at, "time_up"
    sitting.status = SittingStatus.FINISHED
    sitting.finished_at = now
    sitting.end_reason = reason
    sitting.remaining_seconds = 0.0
    sitting.deadline_at = None
    result = score_answers(session, current_rule_version(session, program), scored_answers(session, sitting))
    result.sitting_id = sitting.id
    session.add(result)
    session.flush()
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
    """Finish every sitting whose time has run out (for a periodic job); returns how many. One unit of work."""
    with unit_of_work(session):
        due = session.scalars(select(Sitting.id).where(Sitting.status == SittingStatus.IN_PROGRESS,
                                                       Sitting.deadline_at <= now).order_by(Sitting.id)).all()
        # Each locked and read again: the candidate may have finished it since.
        return sum(1 for sitting_id in due if expire_if_due(session, program, locked_one(session, Sitting, sitting_id),
                                                            now))


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


def sitting_language(session: Session, program: ExamProgram, sitting: Sitting) -> str:
    """The language the sitting is shown in: its booking's, else (None, or a language the program
    no longer gives) the program's default."""
    language = session.scalar(select(Booking.language).where(Booking.id == sitting.booking_id))
    return language if language in program.languages else program.default_language


@dataclass(frozen=True)
class Presentation:
    """What the candidate's page shows of a sitting: its language, the option labels of that
    language, and the items in it (each in the default language where it lacks the sitting's)."""

    language: str
    option_labels: tuple[str, ...]
    items: list[PresentedItem]


def presentation(session: Session, program: ExamProgram, sitting: Sitting, *, with_items: bool = True
                 ) -> Presentation:
    language = sitting_language(session, program, sitting)
    items = presented_items(session, sitting, (language, program.default_language)) if with_items else []
    return Presentation(language=language, option_labels=program.labels_for(language), items=items)


def presented_items(session: Session, sitting: Sitting, languages: tuple[str, ...] = ()) -> list[PresentedItem]:
    """The sitting's items in the first of ``languages`` each has (else in its own language); the
    options keep their content index, so the key and the answers are the same in every language."""
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
        content = contents[entry.item_version_id].shown_in(*languages)
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


# ---- the proctor's console ----------------------------------------------------------
#
# Each action is a service: the booking, its slot and the sitting locked (in that order),
# the actor's centre checked (another centre's is refused and the attempt recorded), the
# transition checked against SITTING, the audit record written with the clock before and
# after. The candidate's hot-path statements check status and deadline in SQL, so a pause
# or an end takes effect on their very next save.

# Actions that must say why; the others may.
REASON_REQUIRED = frozenset({"pause", "add_time", "move_seat", "end"})
REASON_LENGTH = 500


@dataclass(frozen=True)
class ConsoleOutcome:
    booking: Booking
    sitting: Sitting
    details: dict


def check_reason(action: str, reason: str) -> str:
    reason = reason.strip()
    if action in REASON_REQUIRED and not reason:
        raise InvalidInput("Say why (the reason is kept in the audit trail).", field="reason")
    if len(reason) > REASON_LENGTH:
        raise InvalidInput("Say why in at most {limit} characters.", field="reason", limit=REASON_LENGTH)
    return reason


def _clock(sitting: Sitting, now: dt.datetime) -> dict:
    return {"status": str(sitting.status), "remaining_seconds": round(remaining_seconds(sitting, now), 1)}


def _console_action(session: Session, program: ExamProgram, booking_id: int, action: str, now: dt.datetime, *,
                    actor: Actor, reason: str, apply: Callable[[Booking, Sitting], dict | None]) -> ConsoleOutcome:
    def change() -> ConsoleOutcome:
        booking = bookings.locked_booking(session, booking_id, actor)  # another centre's: refused first
        said = check_reason(action, reason)
        sitting = _locked_sitting_of_booking(session, booking.id)
        if sitting is None:
            raise Conflict("{name} has not logged in at a seat yet.", name=booking.candidate.name)
        before = _clock(sitting, now)
        details = apply(booking, sitting) or {}
        session.flush()
        actor.record(session, action, f"sitting:{sitting.id}", now=now, centre_id=booking.slot.centre_id,
                     reason=said, details={"booking_id": booking.id, "candidate": booking.candidate.name,
                                             "position": sitting.current_position, "before": before,
                                             "after": _clock(sitting, now), **details})
        return ConsoleOutcome(booking, sitting, details)

    return bookings.guarded(session, actor, action, now, change)


def _refuse_if_due(session: Session, program: ExamProgram, sitting: Sitting, now: dt.datetime, message: str) -> None:
    if _due(sitting, now):
        # Undone with the refusal: the sweep or the candidate's next request scores it.
        raise Conflict(message)


def proctor_start(session: Session, program: ExamProgram, booking_id: int, now: dt.datetime, *, actor: Actor,
                  reason: str = "") -> ConsoleOutcome:
    """The proctor starts (unlocks) a logged-in candidate's sitting, as the candidate's own Start would:
    the slot's start time and the late-arrival rule apply the same way."""
    def apply(booking: Booking, sitting: Sitting) -> None:
        SITTING.refuse_unless(sitting.status, "start")
        start(session, program, sitting, now)

    return _console_action(session, program, booking_id, "start", now, actor=actor, reason=reason, apply=apply)


def _pause(sitting: Sitting, now: dt.datetime) -> None:
    sitting.remaining_seconds = remaining_seconds(sitting, now)
    sitting.deadline_at = None
    sitting.status = SITTING.target(sitting.status, "pause")


def pause(session: Session, program: ExamProgram, booking_id: int, now: dt.datetime, *, actor: Actor,
          reason: str) -> ConsoleOutcome:
    """Stop the clock: the time left is kept and no answer is taken until resumed."""
    def apply(booking: Booking, sitting: Sitting) -> None:
        _refuse_if_due(session, program, sitting, now, "The sitting's time ran out before it could be paused.")
        SITTING.refuse_unless(sitting.status, "pause")
        _pause(sitting, now)

    return _console_action(session, program, booking_id, "pause", now, actor=actor, reason=reason, apply=apply)


def resume(session: Session, program: ExamProgram, booking_id: int, now: dt.datetime, *, actor: Actor,
           reason: str = "") -> ConsoleOutcome:
    """Start the clock again with the time the sitting had when paused."""
    def apply(booking: Booking, sitting: Sitting) -> None:
        sitting.status = SITTING.target(sitting.status, "resume")
        sitting.deadline_at = now + dt.timedelta(seconds=sitting.remaining_seconds or 0.0)
        sitting.remaining_seconds = None

    return _console_action(session, program, booking_id, "resume", now, actor=actor, reason=reason, apply=apply)


def max_added_minutes(program: ExamProgram) -> int:
    """The most time proctors may add to one sitting in all: the program file's
    ``[admission] max_added_minutes``."""
    return program.admission.max_added_minutes


def minutes_left_to_add(program: ExamProgram, sitting: Sitting) -> int:
    return max(0, max_added_minutes(program) - (sitting.added_minutes or 0))


def add_time(session: Session, program: ExamProgram, booking_id: int, minutes: int, now: dt.datetime, *,
             actor: Actor, reason: str) -> ConsoleOutcome:
    """Give the sitting more whole minutes (e.g. for time lost to a PC failure), within the cap."""
    def apply(booking: Booking, sitting: Sitting) -> dict:
        if type(minutes) is not int or minutes < 1:
            raise InvalidInput("Add a whole number of minutes, at least 1.", field="minutes")
        _refuse_if_due(session, program, sitting, now, "The sitting's time ran out before time could be added.")
        SITTING.refuse_unless(sitting.status, "add_time")
        left = minutes_left_to_add(program, sitting)
        if minutes > left:
            raise InvalidInput("At most {most} minutes can be added to a sitting in all; {left} are left.",
                               field="minutes", most=max_added_minutes(program), left=left)
        if sitting.status == SittingStatus.IN_PROGRESS:
            sitting.deadline_at = sitting.deadline_at + dt.timedelta(minutes=minutes)
        else:
            sitting.remaining_seconds = (sitting.remaining_seconds or 0.0) + minutes * 60.0
        sitting.added_minutes = (sitting.added_minutes or 0) + minutes
        return {"minutes": minutes}

    return _console_action(session, program, booking_id, "add_time", now, actor=actor, reason=reason, apply=apply)


def end(session: Session, program: ExamProgram, booking_id: int, now: dt.datetime, *, actor: Actor,
        reason: str, end_reason: str = "misconduct") -> ConsoleOutcome:
    """Stop a sitting for good (e.g. misconduct): no more answers, no score; the seat is signed out."""
    def apply(booking: Booking, sitting: Sitting) -> None:
        _refuse_if_due(session, program, sitting, now,
                       "The sitting's time had already run out; it is scored as finished.")
        status = SITTING.target(sitting.status, "end")
        sitting.remaining_seconds = remaining_seconds(sitting, now)
        sitting.status = status
        sitting.finished_at = now
        sitting.end_reason = end_reason
        sitting.deadline_at = None
        new_token(sitting)

    return _console_action(session, program, booking_id, "end", now, actor=actor, reason=reason, apply=apply)


def move_seat(session: Session, program: ExamProgram, booking_id: int, seat_id: int, now: dt.datetime, *,
              actor: Actor, reason: str, out_of_service: bool = False) -> ConsoleOutcome:
    """Move a sitting to another seat after a PC failure.

    The clock stops (a running sitting is paused) and the old PC is locked out;
    the candidate logs in at the new seat and, once the proctor resumes, goes
    on at the same question with the time they had.
    """
    def apply(booking: Booking, sitting: Sitting) -> dict:
        _refuse_if_due(session, program, sitting, now, "The sitting's time ran out before it could be moved.")
        SITTING.refuse_unless(sitting.status, "move_seat")
        if seat_id == sitting.seat_id:
            raise InvalidInput("The sitting is already at that seat.", field="seat_id")
        old_id = sitting.seat_id or booking.seat_id
        old = session.get(Seat, old_id) if old_id else None
        new = bookings.assign_seat(session, booking, seat_id)
        if sitting.status == SittingStatus.IN_PROGRESS:
            _pause(sitting, now)
        if old is not None and out_of_service:
            old.active = False
        sitting.seat_id = booking.seat_id
        new_token(sitting)
        return {"from_seat": old.label if old else "", "to_seat": new.label, "old_seat_out_of_service": out_of_service}

    return _console_action(session, program, booking_id, "move_seat", now, actor=actor, reason=reason, apply=apply)
