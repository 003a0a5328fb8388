"""Centres and the calendar: sample centres, the rolling window of slots, closures,
accommodations, and each centre's end-of-day report."""
from __future__ import annotations

import datetime as dt

import click
from sqlalchemy import func, select

from persistence import create_database_engine, session_factory
from persistence.errors import DomainError


def _sessions():
    return session_factory(create_database_engine())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _date(text: str | None, default: dt.date) -> dt.date:
    if not text:
        return default
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a date like 2027-01-02") from None


def _centre_ids(session, codes: tuple[str, ...], every: bool) -> list[int] | None:
    from centers.models import Centre

    if every == bool(codes):
        raise click.UsageError("name the centres with --centre CODE (repeatable), or give --all")
    if every:
        return None
    found = dict(session.execute(select(Centre.code, Centre.id).where(Centre.code.in_(codes))).all())
    missing = sorted(set(codes) - set(found))
    if missing:
        raise click.BadParameter(f"no centre with code {', '.join(missing)}", param_hint="--centre")
    return list(found.values())


@click.group("centres")
def centres_group() -> None:
    """Test centres."""


@centres_group.command("load")
@click.option("--days", type=int, default=None, help="Days of calendar to open from today (default: the program's window).")
def centres_load(days: int | None) -> None:
    """Load the ~100 sample centres with their seats and demo staff, and open the calendar (safe to run again)."""
    from centers.calendar import extend_calendar, local_today
    from centers.demo import load_demo_centres
    from itembank.program import load_program

    program = load_program()
    with _sessions()() as session:
        added = load_demo_centres(session)
        slots = extend_calendar(session, program, local_today(program, _now()),
                                days if days is not None else program.booking.bookable_days_ahead + 1)
        session.commit()
    click.echo(f"centres: {added} added; calendar: {slots} slots added")


@centres_group.command("list")
@click.option("--region", default=None, help="Only this region.")
def centres_list(region: str | None) -> None:
    """Every centre with its region, prefecture and seats."""
    from centers.models import Centre, Seat

    with _sessions()() as session:
        query = (select(Centre.code, Centre.name, Centre.region, Centre.prefecture, func.count(Seat.id))
                 .outerjoin(Seat, (Seat.centre_id == Centre.id) & Seat.active.is_(True))
                 .group_by(Centre.id).order_by(Centre.region, Centre.prefecture, Centre.code))
        if region:
            query = query.where(Centre.region == region)
        rows = session.execute(query).all()
    for code, name, centre_region, prefecture, seats in rows:
        click.echo(f"{code:<8} {centre_region:<9} {prefecture:<10} {seats:>3} seats  {name}")
    click.echo(f"{len(rows)} centres")


@centres_group.command("report")
@click.argument("code")
@click.option("--date", "day", default=None, help="The day (default: today).")
def centres_report(code: str, day: str | None) -> None:
    """A centre's end-of-day report: sittings, no-shows, incidents and console actions."""
    from centers.calendar import local_today
    from centers.models import Centre
    from delivery.console import day_report
    from itembank.program import load_program

    program = load_program()
    now = _now()
    with _sessions()() as session:
        centre = session.scalar(select(Centre).where(Centre.code == code))
        if centre is None:
            raise click.BadParameter(f"no centre with code {code}", param_hint="CODE")
        report = day_report(session, program, centre.id, _date(day, local_today(program, now)), now)
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
@click.option("--days", type=int, default=None, help="How many days (default: the program's booking window).")
def calendar_extend(first: str | None, days: int | None) -> None:
    """Add the slots of every open day in a rolling window (run daily; safe to run again)."""
    from centers.calendar import extend_calendar, local_today
    from itembank.program import load_program

    program = load_program()
    with _sessions()() as session:
        added = extend_calendar(session, program, _date(first, local_today(program, _now())),
                                days if days is not None else program.booking.bookable_days_ahead + 1)
        session.commit()
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
    from centers.calendar import CalendarError, close
    from itembank.program import load_program
    from persistence import audit

    program = load_program()
    first_day = _date(first, dt.date.today())
    last_day = _date(last, first_day)
    with _sessions()() as session:
        ids = _centre_ids(session, codes, every)
        try:
            report = close(session, program, centre_ids=ids, first=first_day, last=last_day, kind=kind,
                           reason=reason, actor=actor)
        except CalendarError as error:
            raise click.UsageError(str(error)) from None
        for centre_id in ids if ids is not None else [None]:
            audit.record(session, actor=actor, actor_role="operations", action="close_calendar",
                         subject=f"calendar:{first_day.isoformat()}..{last_day.isoformat()}", centre_id=centre_id,
                         reason=reason, details={"slot": kind, "slots_closed": report.slots,
                                                 "bookings_affected": len(report.bookings)})
        session.commit()
    click.echo(f"{report.slots} slots closed; {len(report.bookings)} bookings on them must move "
               f"(their candidates may move free of the deadline and count rules):")
    for booking in report.bookings:
        click.echo(f"  {booking.admission_code}  {booking.candidate.name}  {booking.candidate.email or ''}")


@calendar_group.command("reopen")
@_closure_options
def calendar_reopen(codes, every, first, last, kind, actor) -> None:
    """Lift a closure, given as it was made."""
    from centers.calendar import CalendarError, reopen
    from itembank.program import load_program
    from persistence import audit

    program = load_program()
    first_day = _date(first, dt.date.today())
    last_day = _date(last, first_day)
    with _sessions()() as session:
        ids = _centre_ids(session, codes, every)
        try:
            opened = reopen(session, program, centre_ids=ids, first=first_day, last=last_day, kind=kind)
        except CalendarError as error:
            raise click.UsageError(str(error)) from None
        for centre_id in ids if ids is not None else [None]:
            audit.record(session, actor=actor, actor_role="operations", action="reopen_calendar",
                         subject=f"calendar:{first_day.isoformat()}..{last_day.isoformat()}", centre_id=centre_id,
                         details={"slot": kind, "slots_opened": opened})
        session.commit()
    click.echo(f"{opened} slots open again")


@calendar_group.command("closures")
@click.option("--from", "first", default=None)
@click.option("--to", "last", default=None)
def calendar_closures(first: str | None, last: str | None) -> None:
    """The closures between two dates (default: the next year)."""
    from centers.calendar import closures

    first_day = _date(first, dt.date.today())
    with _sessions()() as session:
        rows = closures(session, first_day, _date(last, first_day + dt.timedelta(days=366)))
    for closure, code in rows:
        click.echo(f"{closure.date.isoformat()}  {code:<12} {closure.kind or 'all day':<10} {closure.reason}"
                   f"  (by {closure.closed_by})")
    click.echo(f"{len(rows)} closures")


@click.group("bookings")
def bookings_group() -> None:
    """Bookings."""


@bookings_group.command("accommodate")
@click.argument("admission_code")
@click.option("--time-multiplier", type=float, default=None, help="e.g. 1.5 for half as much time again.")
@click.option("--large-text/--normal-text", default=None, help="Open the sitting at a larger display size.")
@click.option("--seat", "seat_need", default=None, help="Seat placement: wheelchair, front, near_exit, or none.")
@click.option("--reason", required=True, help="The evidence or decision, for the audit trail.")
@click.option("--by", "actor", default="operations", show_default=True)
def bookings_accommodate(admission_code, time_multiplier, large_text, seat_need, reason, actor) -> None:
    """Record approved accommodations on a booking; the sitting applies them by itself."""
    from centers.bookings import normalise_admission_code, set_accommodations
    from centers.models import Booking
    from persistence import audit

    with _sessions()() as session:
        booking = session.scalar(select(Booking).where(Booking.admission_code == normalise_admission_code(admission_code)))
        if booking is None:
            raise click.BadParameter("no booking with this admission code", param_hint="ADMISSION_CODE")
        try:
            changed = set_accommodations(
                session, booking, time_multiplier=time_multiplier, large_text=large_text,
                seat_need=False if seat_need is None else (None if seat_need == "none" else seat_need))
        except DomainError as error:
            raise click.UsageError(str(error)) from None
        if not changed:
            raise click.UsageError("nothing to change: give --time-multiplier, --large-text or --seat")
        audit.record(session, actor=actor, actor_role="operations", action="accommodate",
                     subject=f"booking:{booking.id}", centre_id=booking.slot.centre_id, reason=reason, details=changed)
        session.commit()
    click.echo(f"booking {booking.admission_code}: " + ", ".join(f"{k} {v[0]} -> {v[1]}" for k, v in changed.items()))


COMMANDS = [centres_group, calendar_group, bookings_group]
