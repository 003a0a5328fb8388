"""The year-round calendar: slots for each centre's open days, closures, what can be booked.

A slot row exists per centre, date and sitting time (100 centres x 3 slots x 365
days is about 110,000 rows a year), never per seat: a slot holds a capacity and
a counter of bookings. ``extend_calendar`` adds the slots of a rolling window
and can run every day; closures (holidays, maintenance) close slots already in
the calendar and keep later ones from opening.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.orm import Session

from centers.locks import lock_where
from centers.models import ACTIVE_BOOKING, REGIONS, Booking, CalendarClosure, Candidate, Centre, Seat, Slot, SlotStatus
from centers.prefectures import postal_order
from persistence.errors import InvalidInput
from persistence.unit_of_work import unit_of_work

if TYPE_CHECKING:
    from centers.accounts import Actor

if TYPE_CHECKING:  # the program is configuration handed in by the caller
    from itembank.program import ExamProgram


class CalendarError(InvalidInput):
    """A calendar change that cannot be made as asked."""


REASON_LENGTH = 200  # a closure's reason, as stored


def local_today(program: ExamProgram, now: dt.datetime) -> dt.date:
    """The program's local date at ``now`` (the date of a slot, of "today" at a centre)."""
    return now.astimezone(ZoneInfo(program.timezone)).date()


def slot_start(program: ExamProgram, day: dt.date, starts: str) -> dt.datetime:
    """The UTC moment a slot starting at local ``starts`` (HH:MM) on ``day`` begins."""
    hour, minute = (int(part) for part in starts.split(":"))
    local = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=ZoneInfo(program.timezone))
    return local.astimezone(dt.timezone.utc)


def _days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def _closed(closures: Iterable[CalendarClosure], centre_id: int, day: dt.date, kind: str) -> bool:
    return any(c.date == day and c.centre_id in (None, centre_id) and c.kind in (None, kind) for c in closures)


def extend_calendar(session: Session, program: ExamProgram, first: dt.date, days: int,
                    centre_ids: Iterable[int] | None = None) -> int:
    """Add the missing slots from ``first`` for ``days`` days; returns how many were added.

    Each active centre gets the program's slot times on its open weekdays, with
    a capacity of its active seats. Safe to run again: existing slots are kept
    as they are (their bookings, capacity and status). One unit of work.
    """
    if days <= 0:
        return 0
    with unit_of_work(session):
        return _extend(session, program, first, days, centre_ids)


def _extend(session: Session, program: ExamProgram, first: dt.date, days: int, centre_ids: Iterable[int] | None) -> int:
    last = first + dt.timedelta(days=days - 1)
    query = (select(Centre.id, Centre.open_weekdays, func.count(Seat.id))
             .join(Seat, and_(Seat.centre_id == Centre.id, Seat.active.is_(True)))
             .where(Centre.active.is_(True)).group_by(Centre.id, Centre.open_weekdays))
    if centre_ids is not None:
        query = query.where(Centre.id.in_(list(centre_ids)))
    centres = session.execute(query).all()
    if not centres:
        return 0
    ids = [c[0] for c in centres]
    existing = set(session.execute(
        select(Slot.centre_id, Slot.starts_at).where(Slot.centre_id.in_(ids), Slot.date.between(first, last))
    ).all())
    closures = session.scalars(select(CalendarClosure).where(CalendarClosure.date.between(first, last))).all()
    rows = []
    for day in _days(first, last):
        starts = {t.kind: slot_start(program, day, t.starts) for t in program.booking.slots}
        for centre_id, weekdays, seats in centres:
            if str(day.weekday()) not in weekdays:
                continue
            for kind, starts_at in starts.items():
                if (centre_id, starts_at) in existing:
                    continue
                rows.append({
                    "centre_id": centre_id, "date": day, "kind": kind, "starts_at": starts_at, "capacity": seats,
                    "booked": 0,
                    "status": SlotStatus.CLOSED if _closed(closures, centre_id, day, kind) else SlotStatus.OPEN,
                })
    if rows:
        session.execute(insert(Slot), rows)
    return len(rows)


@dataclass(frozen=True)
class AffectedBooking:
    id: int
    admission_code: str
    candidate: str
    email: str | None
    slot_id: int


@dataclass(frozen=True)
class ClosureReport:
    slots: int  # slots whose status changed
    bookings: list[AffectedBooking]  # active bookings on the closed slots: their candidates must move


def _slot_filter(centre_ids: list[int] | None, first: dt.date, last: dt.date, kind: str | None):
    conditions = [Slot.date.between(first, last)]
    if centre_ids is not None:
        conditions.append(Slot.centre_id.in_(centre_ids))
    if kind is not None:
        conditions.append(Slot.kind == kind)
    return and_(*conditions)


def _check_range(program: ExamProgram, first: dt.date, last: dt.date, kind: str | None, reason: str | None) -> None:
    if last < first:
        raise CalendarError("The last date is before the first.")
    if (last - first).days > 366:
        raise CalendarError("Close at most a year at a time.")
    if kind is not None and kind not in {t.kind for t in program.booking.slots}:
        raise CalendarError("Unknown slot {kind}; choose one of {choices}.", kind=repr(kind),
                            choices=", ".join(t.kind for t in program.booking.slots))
    if reason is not None and not reason.strip():
        raise CalendarError("Give a reason for the closure (e.g. 'New Year holiday').")
    if reason is not None and len(reason.strip()) > REASON_LENGTH:
        raise CalendarError("Say why in at most {limit} characters.", limit=REASON_LENGTH)


def _record(session: Session, actor: Actor, action: str, centre_ids: list[int] | None, first: dt.date,
            last: dt.date, now: dt.datetime, *, reason: str = "", details: dict) -> None:
    """One audit record per centre concerned (one without a centre for the whole network)."""
    for centre_id in centre_ids if centre_ids is not None else [None]:
        actor.record(session, action, f"calendar:{first.isoformat()}..{last.isoformat()}", now=now,
                     centre_id=centre_id, reason=reason, details=details)


def close(session: Session, program: ExamProgram, *, centre_ids: list[int] | None, first: dt.date, last: dt.date,
          kind: str | None, reason: str, actor: Actor, now: dt.datetime) -> ClosureReport:
    """Close a centre (or every centre: ``centre_ids`` None) from ``first`` to ``last``.

    Bookings already on the closed slots stay valid, and are returned so that
    their candidates can be told; they may move free of the deadline and count rules.
    """
    _check_range(program, first, last, kind, reason)
    with unit_of_work(session):
        for day in _days(first, last):
            for centre_id in centre_ids if centre_ids is not None else [None]:
                session.add(CalendarClosure(centre_id=centre_id, date=day, kind=kind, reason=reason.strip(),
                                            closed_by=actor.name))
        where = _slot_filter(centre_ids, first, last, kind)
        # The slots' locks, in id order: a booking moving onto one of them waits, then finds it closed.
        lock_where(session, Slot, where)
        changed = session.execute(update(Slot).where(where, Slot.status == SlotStatus.OPEN)
                                  .values(status=SlotStatus.CLOSED).execution_options(synchronize_session=False)
                                  ).rowcount
        affected = [AffectedBooking(*row) for row in session.execute(
            select(Booking.id, Booking.admission_code, Candidate.name, Candidate.email, Booking.slot_id)
            .join(Booking.slot).join(Booking.candidate)
            .where(where, Booking.status.in_(ACTIVE_BOOKING)).order_by(Slot.starts_at, Booking.id))]
        _record(session, actor, "close_calendar", centre_ids, first, last, now, reason=reason.strip(),
                details={"slot": kind, "slots_closed": changed, "bookings_affected": len(affected)})
    _expire_slots(session)
    return ClosureReport(changed, affected)


def _expire_slots(session: Session) -> None:
    """Slots the session holds read their status again (an UPDATE changed it behind the ORM's back)."""
    for held in list(session.identity_map.values()):
        if isinstance(held, Slot):
            session.expire(held, ["status"])


def reopen(session: Session, program: ExamProgram, *, centre_ids: list[int] | None, first: dt.date, last: dt.date,
           kind: str | None, actor: Actor, now: dt.datetime, reason: str = "") -> int:
    """Lift the closures given exactly as they were made; returns how many slots opened again."""
    _check_range(program, first, last, kind, None)
    match = [CalendarClosure.date.between(first, last),
             CalendarClosure.kind.is_(None) if kind is None else CalendarClosure.kind == kind,
             CalendarClosure.centre_id.is_(None) if centre_ids is None else CalendarClosure.centre_id.in_(centre_ids)]
    with unit_of_work(session):
        removed = session.execute(delete(CalendarClosure).where(*match).execution_options(synchronize_session=False))
        if not removed.rowcount:
            raise CalendarError("No closure matches these centres, dates and slot.")
        where = _slot_filter(centre_ids, first, last, kind)
        lock_where(session, Slot, where, Slot.status == SlotStatus.CLOSED)
        remaining = session.scalars(select(CalendarClosure).where(CalendarClosure.date.between(first, last))).all()
        closed = session.scalars(select(Slot).where(where, Slot.status == SlotStatus.CLOSED)
                                 .execution_options(populate_existing=True))
        opened = 0
        for slot in closed:
            if not _closed(remaining, slot.centre_id, slot.date, slot.kind):
                slot.status, opened = SlotStatus.OPEN, opened + 1
        _record(session, actor, "reopen_calendar", centre_ids, first, last, now, reason=reason,
                details={"slot": kind, "slots_opened": opened})
    return opened


def closures(session: Session, first: dt.date, last: dt.date) -> list[tuple[CalendarClosure, str]]:
    """Closures between two dates with the centre's code ("all centres" for a network-wide one)."""
    rows = session.execute(
        select(CalendarClosure, Centre.code).outerjoin(Centre, Centre.id == CalendarClosure.centre_id)
        .where(CalendarClosure.date.between(first, last)).order_by(CalendarClosure.date, Centre.code)
    ).all()
    return [(closure, code or "all centres") for closure, code in rows]


def booking_window(program: ExamProgram, now: dt.datetime) -> tuple[dt.date, dt.date]:
    """The first and last dates a new booking can be made for, as of ``now``."""
    today = local_today(program, now)
    return (today + dt.timedelta(days=program.booking.book_until_days_before),
            today + dt.timedelta(days=program.booking.bookable_days_ahead))


def bookable_slots(session: Session, program: ExamProgram, centre_id: int, first: dt.date, last: dt.date,
                   now: dt.datetime) -> list[Slot]:
    """The centre's open slots in [first, last] within the booking window, free places or not."""
    earliest, latest = booking_window(program, now)
    first, last = max(first, earliest), min(last, latest)
    if last < first:
        return []
    return list(session.scalars(
        select(Slot).where(Slot.centre_id == centre_id, Slot.date.between(first, last), Slot.status == SlotStatus.OPEN,
                           Slot.kind.in_([t.kind for t in program.booking.slots]))
        .order_by(Slot.starts_at)
    ))


def centre_order(centre: Centre) -> tuple:
    """Where a centre comes in a list: by the postal order of its prefecture (北海道 ... 沖縄県), a
    prefecture not in it by its region; then by code."""
    region = REGIONS.index(centre.region) if centre.region in REGIONS else len(REGIONS)
    return postal_order(centre.prefecture), region, centre.code


def centres_by_region(session: Session) -> list[Centre]:
    """The active centres in the postal order of their prefectures (about 100: sorted here)."""
    return sorted(session.scalars(select(Centre).where(Centre.active.is_(True))), key=centre_order)


