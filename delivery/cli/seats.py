"""Seat PCs from the shell: a proctor of the centre issues a one-time enrolment link for a seat
(opened once in the seat PC's browser), lists the centre's enrolled PCs, or revokes a seat's
enrolment. The same services as the proctor's web page, audited the same (docs/security.md)."""
from __future__ import annotations

import click

from persistence import create_database_engine, session_factory, utcnow


def _sessions():
    return session_factory(create_database_engine())


def _proctor(session, username: str | None):
    from sqlalchemy import select

    from centers.accounts import Actor
    from centers.models import StaffAccount
    from persistence.settings import load_settings

    username = username or load_settings().actor
    if not username:
        raise click.UsageError("say who acts: --as USERNAME (a proctor of the centre; or set CBT_ACTOR)")
    account = session.scalar(select(StaffAccount).where(StaffAccount.username == username))
    if account is None or not account.active:
        raise click.ClickException(f"no active staff account {username!r}")
    return Actor.staff(account)


def enrolment_url(code: str) -> str:
    """The one-time link of an enrolment code, at the site's public address (CBT_PUBLIC_URL)."""
    from persistence.settings import load_settings

    return f"{load_settings().public_url}/seat/enrol/{code}"


as_option = click.option("--as", "username", metavar="USERNAME",
                         help="The proctor acting, of the seat's centre (default $CBT_ACTOR).")


@click.group("seats")
def seats_group() -> None:
    """Seat PCs: candidates log in only at a PC enrolled as a seat of their booking's centre."""


@seats_group.command("enrol")
@click.option("--centre", "centre", required=True, help="The centre's code.")
@click.option("--seat", "seat", required=True, help="The seat's label, e.g. S-01.")
@click.option("--reason", default="", help="A note for the audit trail.")
@as_option
def enrol(centre, seat, reason, username) -> None:
    """Print a one-time link that enrols the browser opening it as this seat (valid 24 hours)."""
    from centers import seats

    with _sessions()() as session:
        actor = _proctor(session, username)
        target = seats.seat_by_label(session, centre, seat)
        code, enrolled = seats.issue_enrolment_link(session, target.id, actor=actor, reason=reason, now=utcnow())
    click.echo(f"Open this link once in the browser of seat {enrolled.seat_label} ({enrolled.centre_name}), "
               f"within {seats.LINK_VALID_FOR.total_seconds() / 3600:.0f} hours:")
    click.echo(f"  {enrolment_url(code)}")


@seats_group.command("revoke")
@click.option("--centre", "centre", required=True, help="The centre's code.")
@click.option("--seat", "seat", required=True, help="The seat's label.")
@click.option("--reason", required=True, help="Why (kept in the audit trail).")
@as_option
def revoke(centre, seat, reason, username) -> None:
    """End the seat's enrolment: its PC can no longer be used for a login until enrolled again."""
    from centers import seats

    with _sessions()() as session:
        actor = _proctor(session, username)
        target = seats.seat_by_label(session, centre, seat)
        ended = seats.revoke(session, target.id, actor=actor, reason=reason, now=utcnow())
    click.echo(f"seat {seat} of {centre}: {ended} enrolment(s) ended")


@seats_group.command("list")
@click.option("--centre", "centre", required=True, help="The centre's code.")
def list_enrolments(centre) -> None:
    """The centre's enrolled PCs and unused links."""
    from sqlalchemy import select

    from centers import seats
    from centers.models import Centre

    with _sessions()() as session:
        found = session.scalar(select(Centre).where(Centre.code == centre))
        if found is None:
            raise click.ClickException(f"no centre {centre!r}")
        for enrolment in seats.enrolments(session, found.id):
            state = (f"PC enrolled {enrolment.claimed_at:%Y-%m-%d %H:%M}" if enrolment.token_hash
                     else f"link unused, expires {enrolment.link_expires_at:%Y-%m-%d %H:%M}")
            click.echo(f"  {enrolment.seat.label:8} {state}  by {enrolment.enrolled_by}")


COMMANDS = [seats_group]
