"""Centres and the calendar: sample centres, the rolling window of slots, closures,
accommodations, moving and cancelling bookings, the slots' counters, and each centre's
end-of-day report. Each command parses its options, calls one service and prints the
outcome; a refusal is the service's message with exit status 1."""
from __future__ import annotations

import datetime as dt

import click
from sqlalchemy import func, select

from persistence import create_database_engine, session_factory, utcnow


def _sessions():
    return session_factory(create_database_engine())


def _program():
    from itembank.program import load_program

    return load_program()


def _today(program) -> dt.date:
    from centers.calendar import local_today

    return local_today(program, utcnow())


def _date(text: str | None, default: dt.date) -> dt.date:
    if not text:
        return default
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a date like 2027-01-02") from None


def _centre_ids(session, codes: tuple[str, ...], every: bool) -> list[int] | None:
    if every == bool(codes):
        raise click.UsageError("name the centres with --centre CODE (repeatable), or give --all")
    if every:
        return None
    return _codes(session, codes)


def _codes(session, codes: tuple[str, ...]) -> list[int]:
    from centers.models import Centre

    found = dict(session.execute(select(Centre.code, Centre.id).where(Centre.code.in_(codes))).all())
    missing = sorted(set(codes) - set(found))
    if missing:
        raise click.BadParameter(f"no centre with code {', '.join(missing)}", param_hint="--centre")
    return list(found.values())


def _operator(name: str):
    from centers.accounts import Actor

    return Actor.operations(name)


@click.group("centres")
def centres_group() -> None:
    """Test centres."""


@centres_group.command("load")
@click.option("--days", type=click.IntRange(min=0), default=None,
              help="Days of calendar to open from today (default: the program's window).")
def centres_load(days: int | None) -> None:
    """Load the ~100 sample centres with their seats and demo staff, and open the calendar (safe to run again)."""
    from centers.demo import load_sample_centres

    program = _program()
    with _sessions()() as session:
        added, slots = load_sample_centres(session, program, _today(program),
                                           days if days is not None else program.booking.bookable_days_ahead + 1)
    click.echo(f"centres: {added} added; calendar: {slots} slots added")


@centres_group.command("list")
@click.option("--region", default=None, help="Only this region.")
def centres_list(region: str | None) -> None:
    """Every centre with its region, prefecture and seats, in the postal order of prefectures."""
    from centers.models import Centre, Seat
    from centers.prefectures import postal_order

    with _sessions()() as session:
        query = (select(Centre.code, Centre.name, Centre.region, Centre.prefecture, func.count(Seat.id))
                 .outerjoin(Seat, (Seat.centre_id == Centre.id) & Seat.active.is_(True))
                 .group_by(Centre.id))
        if region:
            query = query.where(Centre.region == region)
        rows = sorted(session.execute(query).all(), key=lambda row: (postal_order(row[3]), row[0]))
    for code, name, centre_region, prefecture, seats in rows:
        click.echo(f"{code:<8} {centre_region:<9} {prefecture:<10} {seats:>3} seats  {name}")
    click.echo(f"{len(rows)} centres")


@centres_group.command("report")
@click.argument("code")
@click.option("--date", "day", default=None, help="The day (default: today).")
def centres_report(code: str, day: str | None) -> None:
    """A centre's end-of-day report: sittings, no-shows, incidents and console actions."""
    from centers.models import Centre
    from delivery.console import day_report

    program = _program()
    now = utcnow()
    with _sessions()() as session:
        centre = session.scalar(select(Centre).where(Centre.code == code))
        if centre is None:
            raise click.BadParameter(f"no centre with code {code}", param_hint="CODE")
        report = day_report(session, program, centre.id, _date(day, _today(program)), now)
        click.echo(f"{centre.name} ({centre.code}), {report.day.isoformat()}")
        click.echo(f"{'slot':<12}{'booked':>8}{'checked in':>12}{'sat':>6}{'finished':>10}{'ended':>7}{'no-shows':>10}")
        for s in report.slots:
            click.echo(f"{s.slot.kind:<12}{s.booked:>8}{s.checked_in:>12}{s.sat:>6}{s.finished:>10}{s.ended:>7}"
                       f"{s.no_shows:>10}")
        t = report.totals
        click.echo(f"{'day':<12}{t['booked']:>8}{t['checked_in']:>12}{t['sat']:>6}{t['finished']:>10}{t['ended']:>7}"
                   f"{t['no_shows']:>10}")
        click.echo(f"incidents: {len(report.incidents)}")
        for incident, by in report.incidents:
            click.echo(f"  {incident.at.isoformat(timespec='minutes')} {incident.kind}: {incident.description} ({by})")
        for action, count in report.actions:
            click.echo(f"  {action}: {count}")


@click.group("calendar")
def calendar_group() -> None:
    """The year-round calendar: slots, closures."""


@calendar_group.command("extend")
@click.option("--from", "first", default=None, help="First day (default: today).")
@click.option("--days", type=click.IntRange(min=0), default=None,
              help="How many days (default: the program's booking window).")
def calendar_extend(first: str | None, days: int | None) -> None:
    """Add the slots of every open day in a rolling window (run daily; safe to run again)."""
    from centers.calendar import extend_calendar

    program = _program()
    with _sessions()() as session:
        added = extend_calendar(session, program, _date(first, _today(program)),
                                days if days is not None else program.booking.bookable_days_ahead + 1)
    click.echo(f"calendar: {added} slots added")


def _closure_options(command):
    for option in reversed([
        click.option("--centre", "codes", multiple=True, help="A centre code (repeatable)."),
        click.option("--all", "every", is_flag=True, help="Every centre."),
        click.option("--from", "first", required=True, help="First day closed."),
        click.option("--to", "last", default=None, help="Last day closed (default: the first)."),
        click.option("--slot", "kind", default=None, help="Only this slot (default: the whole day)."),
        click.option("--by", "actor", default="operations", show_default=True, help="Who decided it, for the audit trail."),
    ]):
        command = option(command)
    return command


@calendar_group.command("close")
@_closure_options
@click.option("--reason", required=True, help="Why, e.g. 'New Year holiday' or 'network maintenance'.")
def calendar_close(codes, every, first, last, kind, actor, reason) -> None:
    """Close centres for a holiday or maintenance; lists the bookings that must move."""
    from centers.calendar import close

    program = _program()
    first_day = _date(first, _today(program))
    last_day = _date(last, first_day)
    with _sessions()() as session:
        report = close(session, program, centre_ids=_centre_ids(session, codes, every), first=first_day, last=last_day,
                       kind=kind, reason=reason, actor=_operator(actor), now=utcnow())
    click.echo(f"{report.slots} slots closed; {len(report.bookings)} bookings on them must move "
               f"(their candidates may move free of the deadline and count rules):")
    for booking in report.bookings:
        click.echo(f"  {booking.admission_code}  {booking.candidate}  {booking.email or ''}")


@calendar_group.command("reopen")
@_closure_options
@click.option("--reason", default="", help="Why (kept in the audit trail).")
def calendar_reopen(codes, every, first, last, kind, actor, reason) -> None:
    """Lift a closure, given as it was made."""
    from centers.calendar import reopen

    program = _program()
    first_day = _date(first, _today(program))
    last_day = _date(last, first_day)
    with _sessions()() as session:
        opened = reopen(session, program, centre_ids=_centre_ids(session, codes, every), first=first_day,
                        last=last_day, kind=kind, actor=_operator(actor), now=utcnow(), reason=reason)
    click.echo(f"{opened} slots open again")


@calendar_group.command("closures")
@click.option("--from", "first", default=None)
@click.option("--to", "last", default=None)
def calendar_closures(first: str | None, last: str | None) -> None:
    """The closures between two dates (default: the next year)."""
    from centers.calendar import closures

    first_day = _date(first, _today(_program()))
    with _sessions()() as session:
        rows = closures(session, first_day, _date(last, first_day + dt.timedelta(days=366)))
    for closure, code in rows:
        click.echo(f"{closure.date.isoformat()}  {code:<12} {closure.kind or 'all day':<10} {closure.reason}"
                   f"  (by {closure.closed_by})")
    click.echo(f"{len(rows)} closures")


@click.group("bookings")
def bookings_group() -> None:
    """Bookings."""


def _booking_id(session, admission_code: str) -> int:
    from centers.bookings import normalise_admission_code
    from centers.models import Booking

    found = session.scalar(select(Booking.id).where(Booking.admission_code == normalise_admission_code(admission_code)))
    if found is None:
        raise click.BadParameter("no booking with this admission code", param_hint="ADMISSION_CODE")
    return found


@bookings_group.command("accommodate")
@click.argument("admission_code")
@click.option("--time-multiplier", type=float, default=None, help="e.g. 1.5 for half as much time again.")
@click.option("--large-text/--normal-text", default=None, help="Open the sitting at a larger display size.")
@click.option("--seat", "seat_need", default=None, help="Seat placement: wheelchair, front, near_exit, or none.")
@click.option("--reason", required=True, help="The evidence or decision, for the audit trail.")
@click.option("--by", "actor", default="operations", show_default=True)
def bookings_accommodate(admission_code, time_multiplier, large_text, seat_need, reason, actor) -> None:
    """Record approved accommodations on a booking; the sitting applies them by itself."""
    from centers.bookings import accommodate

    if time_multiplier is None and large_text is None and seat_need is None:
        raise click.UsageError("nothing to change: give --time-multiplier, --large-text or --seat")
    with _sessions()() as session:
        booking, changed = accommodate(
            session, admission_code, actor=_operator(actor), reason=reason, now=utcnow(),
            time_multiplier=time_multiplier, large_text=large_text,
            seat_need=False if seat_need is None else (None if seat_need == "none" else seat_need))
    click.echo(f"booking {booking.admission_code}: " + ", ".join(f"{k} {v[0]} -> {v[1]}" for k, v in changed.items()))


@bookings_group.command("move")
@click.argument("admission_code")
@click.option("--slot", "slot_id", type=click.IntRange(1, 2**31 - 1), required=True, help="The slot's id.")
@click.option("--reason", required=True, help="Why (e.g. the candidate's call), for the audit trail.")
@click.option("--by", "actor", default="operations", show_default=True)
def bookings_move(admission_code, slot_id, reason, actor) -> None:
    """Move a booking to another slot for its candidate, under the same rules as the booking pages."""
    from centers.bookings import move

    program = _program()
    with _sessions()() as session:
        booking = move(session, program, _booking_id(session, admission_code), slot_id, utcnow(),
                       actor=_operator(actor), reason=reason)
        click.echo(f"booking {booking.admission_code}: now slot {booking.slot_id} ({booking.slot.date.isoformat()} "
                   f"{booking.slot.kind}); {booking.changes} move(s) so far")


@bookings_group.command("cancel")
@click.argument("admission_code")
@click.option("--reason", required=True, help="Why (e.g. the candidate's call), for the audit trail.")
@click.option("--by", "actor", default="operations", show_default=True)
def bookings_cancel(admission_code, reason, actor) -> None:
    """Cancel a booking for its candidate, under the same rules as the booking pages."""
    from centers.bookings import cancel

    program = _program()
    with _sessions()() as session:
        booking = cancel(session, program, _booking_id(session, admission_code), utcnow(), actor=_operator(actor),
                         reason=reason)
    click.echo(f"booking {booking.admission_code}: cancelled")


@bookings_group.command("check")
@click.option("--centre", "codes", multiple=True, help="Only this centre (repeatable; default: every centre).")
@click.option("--fix", is_flag=True, help="Set each drifted counter to the bookings holding a place (audited).")
@click.option("--reason", default=None, help="With --fix: why, for the audit trail.")
@click.option("--by", "actor", default="operations", show_default=True)
def bookings_check(codes, fix, reason, actor) -> None:
    """Compare every slot's counter of places with the bookings holding one; exit 1 on drift (unless fixed)."""
    from centers.bookings import repair_drift, slot_drift

    if fix and not reason:
        raise click.UsageError("give --reason with --fix")
    with _sessions()() as session:
        ids = _codes(session, codes) if codes else None
        if fix:
            drifted = repair_drift(session, actor=_operator(actor), reason=reason, now=utcnow(), centre_ids=ids)
        else:
            drifted = slot_drift(session, ids)
    for drift in drifted:
        click.echo(f"  slot {drift.slot_id}: counted {drift.counted}, bookings holding a place {drift.holding}")
    click.echo(f"drift: {len(drifted)} slot(s)" + (" repaired" if fix and drifted else ""))
    if drifted and not fix:
        raise SystemExit(1)


COMMANDS = [centres_group, calendar_group, bookings_group]
