"""Sign-ins from the shell: lift a block an operator has judged wrong, drop old counts and
sign-ins, give a staff account a new password, close or reopen it (every sign-in of the
account ends with a new password or a closed account)."""
from __future__ import annotations

import click

from persistence import create_database_engine, session_factory, utcnow


def _sessions():
    return session_factory(create_database_engine())


@click.group("logins")
def logins_group() -> None:
    """Login throttling (see docs/security.md)."""


@logins_group.command("unblock")
@click.option("--staff", "username", help="A staff username.")
@click.option("--email", help="A registered candidate's e-mail address.")
@click.option("--admission-code", help="An admission code (the seat login).")
@click.option("--client", "client", help="A client address (an IPv6 address counts by its /64).")
@click.option("--by", "actor", default="operations", show_default=True, help="Who decided it, for the audit trail.")
@click.option("--reason", required=True, help="Why (kept in the audit trail).")
def unblock(username, email, admission_code, client, actor, reason) -> None:
    """Forget the failed attempts and blocks of an account (from every address) or of an address."""
    from centers.bookings import normalise_admission_code
    from centers.candidates import normalise_email
    from delivery import throttle

    targets = []
    if username:
        targets.append(("staff", username.strip()))
    if email:
        targets.append(("applicant", normalise_email(email)))
    if admission_code:
        targets.append(("seat", normalise_admission_code(admission_code)))
    if client:
        client = throttle.client_of(client)
        if client == "unknown":
            raise click.BadParameter("not an IP address", param_hint="--client")
        targets.append(("client", client))
    if not targets:
        raise click.UsageError("name an account (--staff, --email, --admission-code) or a --client address")
    with _sessions()() as session:
        removed = throttle.unblock_targets(session, targets, actor=actor, reason=reason, now=utcnow())
    click.echo(f"{removed} count(s) cleared for {', '.join(f'{k} {a}' for k, a in targets)}")


@logins_group.command("prune")
def prune() -> None:
    """Drop counts that no longer block or count, and sign-ins that have timed out (run it daily)."""
    from centers import sign_ins
    from delivery import throttle
    from persistence.settings import load_settings

    now = utcnow()
    with _sessions()() as session:
        removed = throttle.prune(session, throttle.ThrottlePolicy(), now)
        ended = sign_ins.prune(session, now, sign_ins.Timeouts.of(load_settings()))
    click.echo(f"{removed} old count(s) dropped; {ended} timed-out sign-in(s) dropped")


@click.group("staff")
def staff_group() -> None:
    """Staff accounts: a new password, closing and reopening an account."""


def _operator(name: str):
    from centers.accounts import Actor

    return Actor.operations(name)


def account_change(command):
    """A staff account change: the account's username, and who decided it and why (audited)."""
    command = click.option("--by", "actor", default="operations", show_default=True)(command)
    command = click.option("--reason", required=True, help="Why (kept in the audit trail).")(command)
    return click.argument("username")(command)


@staff_group.command("password")
@account_change
@click.password_option("--password", prompt="New password", help="The new password (asked for if not given).")
def staff_password(username, password, reason, actor) -> None:
    """Give a staff account a new password; every sign-in it has ends."""
    from centers.accounts import change_password

    with _sessions()() as session:
        ended = change_password(session, username, password, actor=_operator(actor), reason=reason, now=utcnow())
    click.echo(f"{username}: new password; {ended} sign-in(s) ended")


@staff_group.command("close")
@account_change
def staff_close(username, reason, actor) -> None:
    """Close a staff account: it can no longer sign in, and every sign-in it has ends now."""
    _set_active(username, False, reason, actor)


@staff_group.command("reopen")
@account_change
def staff_reopen(username, reason, actor) -> None:
    """Reopen a closed staff account."""
    _set_active(username, True, reason, actor)


def _set_active(username: str, active: bool, reason: str, actor: str) -> None:
    from centers.accounts import set_active

    with _sessions()() as session:
        ended = set_active(session, username, active, actor=_operator(actor), reason=reason, now=utcnow())
    click.echo(f"{username}: closed; {ended} sign-in(s) ended" if not active else f"{username}: open again")


COMMANDS = [logins_group, staff_group]
