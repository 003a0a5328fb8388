"""What the proctor's console reads: the live board of a slot and the end-of-day report.

The board is polled every few seconds by every centre at once, so it is one
indexed SELECT for the whole centre (its seats with their bookings, candidates
and sittings, plus the bookings not yet seated) and it writes nothing: a
sitting whose time is up shows as finished before the expiry sweep scores it.
"""
from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, literal, null, select, union_all
from sqlalchemy.orm import Session

from centers import bookings
from centers.accounts import Actor
from centers.incidents import incidents_between
from centers.models import (
    ACTIVE_BOOKING,
    BOOKING,
    Booking,
    BookingStatus,
    Candidate,
    Incident,
    Seat,
    Slot,
    StaffAccount,
)
from delivery import sittings
from delivery.answers import Clock
from delivery.models import SITTING, Sitting, SittingItem, SittingStatus
from itembank.program import ExamProgram
from persistence.audit import AuditEvent

FREE, OUT_OF_SERVICE = "free", "out_of_service"

# The order a proctor reads a seat's state in: a seat, a booking, a sitting. The words for each
# are the web's (delivery.web.proctor, in the reader's language).
STATUS_ORDER = (
    FREE,
    OUT_OF_SERVICE,
    BookingStatus.BOOKED,
    BookingStatus.NO_SHOW,
    BookingStatus.CHECKED_IN,
    SittingStatus.WAITING,
    SittingStatus.IN_PROGRESS,
    SittingStatus.PAUSED,
    SittingStatus.FINISHED,
    SittingStatus.ENDED,
)

# A sitting in progress that has saved nothing (no answer, since its start) for this long is
# flagged on the board: the seat's PC may have lost contact, or the candidate may need help.
QUIET_MINUTES = 10


def format_remaining(seconds: float | None) -> str:
    """Time left as the candidate's timer shows it (static/sitting.js formatTime): whole seconds
    rounded down, as h:mm:ss (1:53:05, 0:09:30)."""
    if seconds is None:
        return ""
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


# The proctor's actions on a booking not yet at a seat, and on a sitting, in the order the panel shows them.
BOOKING_ACTIONS = ("check_in", "no_show")
SITTING_ACTIONS = ("start", "pause", "resume", "add_time", "move_seat", "end")

# What a proctor may do in each state, read off the transitions the services enforce: a booking
# (no sitting yet: checked in, it waits for the candidate's login), then a sitting.
ACTIONS = {
    **{status: BOOKING.actions(status, BOOKING_ACTIONS) for status in ACTIVE_BOOKING},
    **{status: SITTING.actions(status, SITTING_ACTIONS) for status in SittingStatus},
}


@dataclass(frozen=True)
class BoardRow:
    seat_id: int | None
    seat_label: str | None
    booking_id: int | None
    candidate: str | None
    candidate_kana: str | None  # フリガナ, which the identity check reads; empty for older rows
    date_of_birth: dt.date | None
    admission_code: str | None
    status: str  # one of STATUS_ORDER
    item_reached: int | None
    remaining_seconds: float | None
    end_reason: str | None
    time_multiplier: float | None
    large_text: bool
    seat_need: str | None
    last_saved_at: dt.datetime | None = None  # the latest answer saved, or the start
    quiet: bool = False  # in progress, and nothing saved for QUIET_MINUTES

    @property
    def time_left(self) -> str:
        return format_remaining(self.remaining_seconds)

    @property
    def row_id(self) -> str:
        return f"booking-{self.booking_id}" if self.booking_id else f"seat-{self.seat_id}"


def _last_saved():
    """The sitting's latest answer, read for a sitting in progress only (the other rows skip the look-up)."""
    latest = (select(func.max(SittingItem.answered_at)).where(SittingItem.sitting_id == Sitting.id)
              .correlate(Sitting).scalar_subquery())
    return case((Sitting.status == SittingStatus.IN_PROGRESS, latest), else_=null())


_COLUMNS = (Booking.id, Candidate.name, Candidate.name_kana, Candidate.date_of_birth, Booking.admission_code,
            Booking.status, Booking.time_multiplier, Booking.large_text, Booking.seat_need, Sitting.status,
            Sitting.current_position, Sitting.deadline_at, Sitting.remaining_seconds, Sitting.end_reason,
            Sitting.started_at)


def board_statement(centre_id: int, slot_id: int):
    """Every seat of the centre with what sits there in the slot, then the bookings not yet seated."""
    seated = (
        select(Seat.id, Seat.label, Seat.active, *_COLUMNS, _last_saved())
        .select_from(Seat)
        .outerjoin(Booking, and_(Booking.seat_id == Seat.id, Booking.slot_id == slot_id,
                                 Booking.status.in_(ACTIVE_BOOKING)))
        .outerjoin(Candidate, Candidate.id == Booking.candidate_id)
        .outerjoin(Sitting, Sitting.booking_id == Booking.id)
        .where(Seat.centre_id == centre_id)
    )
    unseated = (
        select(null(), null(), literal(True), *_COLUMNS, _last_saved())
        .select_from(Booking)
        .join(Candidate, Candidate.id == Booking.candidate_id)
        .outerjoin(Sitting, Sitting.booking_id == Booking.id)
        .where(Booking.slot_id == slot_id, Booking.seat_id.is_(None),
               Booking.status.in_(ACTIVE_BOOKING + (BookingStatus.NO_SHOW,)))
    )
    return union_all(seated, unseated)


def _status(seat_active, booking_status, sitting_status, deadline_at, now) -> str:
    if booking_status is None:
        return FREE if seat_active else OUT_OF_SERVICE
    if sitting_status is None:
        return booking_status
    if sitting_status == SittingStatus.IN_PROGRESS and deadline_at is not None and deadline_at <= now:
        return SittingStatus.FINISHED
    return sitting_status


def _as_utc(moment: dt.datetime | None) -> dt.datetime | None:
    # A MAX() over a column comes back without the column's type on some backends: SQLite gives its text.
    if moment is None or isinstance(moment, dt.datetime):
        return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)
    return dt.datetime.fromisoformat(str(moment)).replace(tzinfo=dt.timezone.utc)


def board(session: Session, centre_id: int, slot_id: int, now: dt.datetime) -> list[BoardRow]:
    """The live board of one slot: one row per seat (in label order), then the unseated bookings."""
    rows = []
    for (seat_id, label, active, booking_id, name, kana, born, code, booking_status, multiplier, large_text, need,
         sitting_status, position, deadline_at, remaining, end_reason, started_at, answered_at) in session.execute(
            board_statement(centre_id, slot_id)):
        status = _status(active, booking_status, sitting_status, deadline_at, now)
        # The sitting's own rule for the time left (what the candidate's clock is sent), on the row as read.
        left = (sittings.remaining_seconds(Clock(sitting_status, deadline_at, remaining), now)
                if status in (SittingStatus.IN_PROGRESS, SittingStatus.WAITING, SittingStatus.PAUSED) else None)
        running = sitting_status in (SittingStatus.IN_PROGRESS, SittingStatus.PAUSED)
        saved = max((m for m in (_as_utc(answered_at), started_at) if m is not None), default=None)
        quiet = (status == SittingStatus.IN_PROGRESS and saved is not None
                 and now - saved >= dt.timedelta(minutes=QUIET_MINUTES))
        rows.append(BoardRow(seat_id, label, booking_id, name, kana or None, born, code, status,
                             position if running else None, left, end_reason, multiplier, bool(large_text), need,
                             saved, quiet))
    rows.sort(key=lambda r: (r.seat_label is None, _seat_order(r.seat_label), r.candidate or ""))
    return rows


def _seat_order(label: str | None) -> tuple:
    """Seats in the order of the room: S-2 before S-10 (numbers compared as numbers)."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part)
                 for part in re.split(r"(\d+)", label or "") if part)


def board_summary(rows: list[BoardRow]) -> list[tuple[str, int]]:
    """How many seats and bookings are in each state, in STATUS_ORDER: (status, count)."""
    counts = Counter(r.status for r in rows)
    return [(key, counts[key]) for key in STATUS_ORDER if counts[key]]


def slots_of_day(session: Session, centre_id: int, day: dt.date) -> list[Slot]:
    return list(session.scalars(select(Slot).where(Slot.centre_id == centre_id, Slot.date == day)
                                .order_by(Slot.starts_at)))


def current_slot(program: ExamProgram, slots: list[Slot], now: dt.datetime) -> Slot | None:
    """The slot a proctor is running now: the latest whose venue has opened, else the day's first."""
    opened = [s for s in slots
              if s.starts_at - dt.timedelta(minutes=program.admission.venue_opens_minutes_before) <= now]
    return opened[-1] if opened else (slots[0] if slots else None)


# ---- the end-of-day report ----------------------------------------------------------

@dataclass(frozen=True)
class SlotReport:
    slot: Slot
    booked: int  # bookings that held a place (not cancelled)
    checked_in: int
    sat: int  # sittings started
    finished: int
    ended: int
    no_shows: int
    expected: int = 0  # booked, not checked in, still within the no-show grace period


@dataclass(frozen=True)
class DayReport:
    centre_id: int
    day: dt.date
    slots: list[SlotReport]
    incidents: list[tuple[Incident, str]]  # with the proctor's name
    actions: list[tuple[str, int]]  # console actions of the day, from the audit trail
    ended: list[tuple[str, str, str]]  # candidate, seat, reason of each sitting ended by a proctor
    grace_minutes: int = 0  # the program's no-show grace period the report applied

    @property
    def totals(self) -> dict[str, int]:
        return {key: sum(getattr(s, key) for s in self.slots)
                for key in ("booked", "checked_in", "sat", "finished", "ended", "no_shows", "expected")}


def day_report(session: Session, program: ExamProgram, centre_id: int, day: dt.date, now: dt.datetime) -> DayReport:
    """Sittings, no-shows and incidents of one centre's day. A booking a proctor marked as a no-show
    is one; so is a booking not checked in once the program's grace period after its slot's start
    (``[admission] no_show_grace_minutes``) is over. Until then it is still expected: a candidate
    may arrive late."""
    rows = session.execute(
        select(Slot.id, Booking.status, Sitting.status, Sitting.id, Candidate.name, Seat.label)
        .select_from(Slot)
        .join(Booking, Booking.slot_id == Slot.id)
        .join(Candidate, Candidate.id == Booking.candidate_id)
        .outerjoin(Seat, Seat.id == Booking.seat_id)
        .outerjoin(Sitting, Sitting.booking_id == Booking.id)
        .where(Slot.centre_id == centre_id, Slot.date == day, Booking.status != BookingStatus.CANCELLED)
    ).all()
    slots = slots_of_day(session, centre_id, day)
    grace = dt.timedelta(minutes=program.admission.no_show_grace_minutes)
    overdue = {s.id: s.starts_at + grace <= now for s in slots}
    per_slot = []
    ended = []
    for slot in slots:
        mine = [r for r in rows if r[0] == slot.id]
        per_slot.append(SlotReport(
            slot=slot,
            booked=len(mine),
            checked_in=sum(1 for r in mine if r[1] == BookingStatus.CHECKED_IN),
            sat=sum(1 for r in mine if r[2] is not None and r[2] != SittingStatus.WAITING),
            finished=sum(1 for r in mine if r[2] == SittingStatus.FINISHED),
            ended=sum(1 for r in mine if r[2] == SittingStatus.ENDED),
            no_shows=sum(1 for r in mine if r[1] == BookingStatus.NO_SHOW
                         or (r[1] == BookingStatus.BOOKED and overdue[slot.id])),
            expected=sum(1 for r in mine if r[1] == BookingStatus.BOOKED and not overdue[slot.id]),
        ))
        ended += [(r[4], r[5] or "", f"sitting:{r[3]}") for r in mine if r[2] == SittingStatus.ENDED]
    zone = ZoneInfo(program.timezone)
    start = dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(dt.timezone.utc)
    end = start + dt.timedelta(days=1)
    names = dict(session.execute(select(StaffAccount.id, StaffAccount.display_name)
                                 .where(StaffAccount.centre_id == centre_id)).all())
    incidents = [(i, names.get(i.logged_by, "?")) for i in incidents_between(session, centre_id, start, end)]
    actions = session.execute(
        select(AuditEvent.action, func.count(AuditEvent.id))
        .where(AuditEvent.centre_id == centre_id, AuditEvent.at >= start, AuditEvent.at < end)
        .group_by(AuditEvent.action).order_by(AuditEvent.action)
    ).all()
    # Why each was ended is what the proctor gave, kept in the audit trail.
    reasons = dict(session.execute(
        select(AuditEvent.subject, AuditEvent.reason)
        .where(AuditEvent.action == "end", AuditEvent.subject.in_([subject for _, _, subject in ended]))
    ).all())
    ended = [(name, seat, reasons.get(subject, "")) for name, seat, subject in ended]
    return DayReport(centre_id, day, per_slot, incidents, list(actions), ended,
                     program.admission.no_show_grace_minutes)


# ---- one candidate's panel -------------------------------------------------------------

@dataclass(frozen=True)
class Panel:
    """What the proctor's panel of one booking shows; read only (a sitting whose time is up
    shows as finished, as on the board, until the sweep or the candidate's page scores it)."""

    booking: Booking
    sitting: Sitting | None
    status: str  # one of STATUS_ORDER
    actions: tuple[str, ...]
    time_left: str
    seats: list[Seat]  # free seats, for a check-in or a move
    minutes_left_to_add: int


def panel(session: Session, program: ExamProgram, booking_id: int, actor: Actor, now: dt.datetime) -> Panel:
    """The panel of one booking of the proctor's centre (another centre's: refused and recorded)."""
    booking = bookings.viewed_booking(session, booking_id, actor, now)
    sitting = session.scalar(select(Sitting).where(Sitting.booking_id == booking.id))
    if sitting is None:
        status = booking.status
    else:
        status = _status(True, booking.status, sitting.status, sitting.deadline_at, now)
    actions = ACTIONS.get(status, ())
    seats = bookings.free_seats(session, booking) if {"check_in", "move_seat"} & set(actions) else []
    left = sittings.remaining_seconds(sitting, now) if sitting is not None and status == sitting.status else 0.0
    return Panel(booking, sitting, status, actions, format_remaining(left) if sitting is not None else "", seats,
                 sittings.minutes_left_to_add(program, sitting) if sitting is not None else 0)
