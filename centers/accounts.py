"""Staff accounts: creation and password checks (scrypt, a memory-hard hash)."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from centers.models import STAFF_ROLES, StaffAccount
from persistence.errors import InvalidInput

# Verifying against this keeps an unknown username as slow as a wrong password.
_DUMMY_HASH = generate_password_hash("not a password")


class AccountError(InvalidInput):
    """An account that cannot be created as asked."""


def create_staff(
    session: Session, *, username: str, display_name: str, password: str, role: str, centre_id: int | None = None
) -> StaffAccount:
    if role not in STAFF_ROLES:
        raise AccountError(f"unknown role {role!r}; one of {', '.join(STAFF_ROLES)}")
    if role == "proctor" and centre_id is None:
        raise AccountError("a proctor belongs to a centre")
    if len(password) < 10:
        raise AccountError("a password needs at least 10 characters")
    account = StaffAccount(
        username=username,
        display_name=display_name,
        password_hash=generate_password_hash(password),
        role=role,
        centre_id=centre_id,
    )
    session.add(account)
    return account


def authenticate(session: Session, username: str, password: str) -> StaffAccount | None:
    """The active account with this username and password, or None."""
    account = session.scalar(select(StaffAccount).where(StaffAccount.username == username))
    if account is None or not account.active:
        check_password_hash(_DUMMY_HASH, password)
        return None
    return account if check_password_hash(account.password_hash, password) else None
