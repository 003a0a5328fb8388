"""Staff accounts: creation, sign-in, password changes, closing an account; and who acts.

Passwords are scrypt hashes (:mod:`centers.passwords`); a sign-in is held on the server
(:mod:`centers.sign_ins`), so a password change or a closed account ends every sign-in
of the account at once.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from centers import sign_ins
from centers.models import STAFF_ROLES, StaffAccount
from centers.passwords import MAX_LENGTH, MIN_LENGTH, WrongPassword, hash_password, password_matches
from persistence import audit
from persistence.errors import InvalidInput, NotFound, NotSignedIn
from persistence.unit_of_work import unit_of_work


@dataclass(frozen=True)
class Actor:
    """Who acts, as the audit trail names them: every service takes one."""

    name: str  # a staff username, "candidate:<id>", an operator's name, or "system"
    role: str  # "proctor", "psychometrician", "candidate", "operations", "system"
    account_id: int | None = None  # the staff account
    centre_id: int | None = None  # a proctor's own centre
    candidate_id: int | None = None  # a registered candidate acting on their bookings

    @classmethod
    def staff(cls, account: StaffAccount) -> Actor:
        return cls(account.username, account.role, account_id=account.id, centre_id=account.centre_id)

    @classmethod
    def candidate(cls, candidate_id: int) -> Actor:
        return cls(f"candidate:{candidate_id}", "candidate", candidate_id=candidate_id)

    @classmethod
    def operations(cls, name: str) -> Actor:
        return cls(name[:64], "operations")

    def record(self, session: Session, action: str, subject: str, *, now: dt.datetime, centre_id: int | None = None,
               reason: str = "", details: dict | None = None) -> audit.AuditEvent:
        """Append this actor's action to the audit trail, in the caller's unit of work."""
        return audit.record(session, actor=self.name, actor_role=self.role, action=action, subject=subject[:64],
                            centre_id=centre_id, reason=reason, details=details, at=now)


SYSTEM = Actor("system", "system")


class AccountError(InvalidInput):
    """An account that cannot be created or changed as asked."""


def _check_password(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise AccountError("A password needs at least {limit} characters.", field="password", limit=MIN_LENGTH)
    if len(password) > MAX_LENGTH:
        raise AccountError("A password has at most {limit} characters.", field="password", limit=MAX_LENGTH)


def create_staff(
    session: Session, *, username: str, display_name: str, password: str, role: str, centre_id: int | None = None
) -> StaffAccount:
    """A new staff account, in the caller's unit of work."""
    if role not in STAFF_ROLES:
        raise AccountError("Unknown role {role}; choose one of {choices}.", field="role", role=repr(role),
                           choices=", ".join(STAFF_ROLES))
    if role == "proctor" and centre_id is None:
        raise AccountError("A proctor belongs to a centre.", field="centre")
    _check_password(password)
    account = StaffAccount(username=username, display_name=display_name, password_hash=hash_password(password),
                           role=role, centre_id=centre_id)
    session.add(account)
    return account


def authenticate(session: Session, username: str, password: str) -> StaffAccount | None:
    """The active account with this username and password, or None."""
    account = session.scalar(select(StaffAccount).where(StaffAccount.username == username))
    usable = account is not None and account.active
    matches = password_matches(account.password_hash if usable else None, password)
    return account if usable and matches else None


def sign_in(session: Session, username: str, password: str, *, client: str, now: dt.datetime) -> tuple[StaffAccount, str]:
    """Sign a staff member in: the account and the new sign-in's token, the sign-in recorded
    in the audit trail with the client's address. Wrong credentials: :class:`NotSignedIn`."""
    with unit_of_work(session):
        account = authenticate(session, username, password)
        if account is None:
            raise NotSignedIn("Unknown username or wrong password.")
        token = sign_ins.open_sign_in(session, now, staff_id=account.id)
        # Not in a centre's own trail (its proctors' actions on sittings): a sign-in is the account's.
        Actor.staff(account).record(session, "staff.sign_in", f"staff:{account.username}", now=now,
                                    details={"client": client})
    return account, token


def sign_out(session: Session, account: StaffAccount | None, token: str | None, *, client: str,
             now: dt.datetime) -> None:
    """End this sign-in (every copy of its cookie), recorded in the audit trail."""
    with unit_of_work(session):
        sign_ins.close(session, token)
        if account is not None:
            Actor.staff(account).record(session, "staff.sign_out", f"staff:{account.username}", now=now,
                                        details={"client": client})


def _account(session: Session, username: str) -> StaffAccount:
    account = session.scalar(select(StaffAccount).where(StaffAccount.username == username).with_for_update())
    if account is None:
        raise NotFound("There is no staff account {username}.", username=repr(username))
    return account


def change_password(session: Session, username: str, password: str, *, actor: Actor, reason: str,
                    now: dt.datetime) -> int:
    """Give the account a new password and end every sign-in it has; returns how many ended."""
    _check_password(password)
    with unit_of_work(session):
        account = _account(session, username)
        account.password_hash = hash_password(password)
        ended = sign_ins.close_all(session, staff_id=account.id)
        actor.record(session, "staff.password_changed", f"staff:{account.username}", now=now, reason=reason,
                     details={"sign_ins_ended": ended})
    return ended


def change_own_password(session: Session, account_id: int, current: str, new: str, *, client: str,
                        now: dt.datetime) -> str:
    """A signed-in staff member's new password, given the current one: every sign-in of the account
    ends; returns the token of a fresh sign-in for the browser that asked."""
    _check_password(new)
    with unit_of_work(session):
        account = session.scalar(select(StaffAccount).where(StaffAccount.id == account_id).with_for_update())
        if account is None or not account.active or not password_matches(account.password_hash, current):
            raise WrongPassword()
        account.password_hash = hash_password(new)
        ended = sign_ins.close_all(session, staff_id=account.id)
        Actor.staff(account).record(session, "staff.password_changed", f"staff:{account.username}", now=now,
                                    details={"sign_ins_ended": ended, "client": client})
        return sign_ins.open_sign_in(session, now, staff_id=account.id)


def set_active(session: Session, username: str, active: bool, *, actor: Actor, reason: str, now: dt.datetime) -> int:
    """Close (or reopen) a staff account; closing ends every sign-in it has. Returns how many ended."""
    with unit_of_work(session):
        account = _account(session, username)
        account.active = active
        ended = 0 if active else sign_ins.close_all(session, staff_id=account.id)
        actor.record(session, "staff.reopened" if active else "staff.closed", f"staff:{account.username}", now=now,
                     reason=reason, details={"sign_ins_ended": ended})
    return ended
