"""Login throttling from the shell: lift a block an operator has judged wrong, drop old counts."""
from __future__ import annotations

import click

from delivery.cli.operations import _now, _sessions


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
    from persistence import audit

    targets = []
    if username:
        targets.append(("staff", username.strip()))
    if email:
        targets.append(("applicant", normalise_email(email)))
    if admission_code:
        targets.append(("seat", normalise_admission_code(admission_code)))
    keys = [throttle.account_key(kind, account) for kind, account in targets]
    if client:
        client = throttle.client_of(client)
        if client == "unknown":
            raise click.BadParameter("not an IP address", param_hint="--client")
        keys.append(throttle.client_key(client))
        targets.append(("client", client))
    if not keys:
        raise click.UsageError("name an account (--staff, --email, --admission-code) or a --client address")
    with _sessions()() as session:
        removed = throttle.unblock(session, keys)
        for kind, account in targets:
            audit.record(session, actor=actor, actor_role="operations", action="login.unblock",
                         subject=f"{kind}:{account}"[:64], reason=reason, at=_now())
        session.commit()
    click.echo(f"{removed} count(s) cleared for {', '.join(f'{k} {a}' for k, a in targets)}")


@logins_group.command("prune")
def prune() -> None:
    """Drop counts that no longer block or count (run it daily)."""
    from delivery import throttle

    with _sessions()() as session:
        removed = throttle.prune(session, throttle.ThrottlePolicy(), _now())
        session.commit()
    click.echo(f"{removed} old count(s) dropped")


COMMANDS = [logins_group]
