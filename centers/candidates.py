"""Candidate registration and sign-in to the booking pages."""
from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from centers import sign_ins
from centers.models import COMPANY_TYPES, OCCUPATIONS, Candidate
from centers.passwords import MAX_LENGTH, MIN_LENGTH, WrongPassword, hash_password, password_matches
from persistence.errors import InvalidInput, NotSignedIn
from persistence.personal import lookup_hash
from persistence.unit_of_work import unit_of_work

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# The form's own limits (maxlength), enforced here as well.
NAME_LENGTH = 128
EMAIL_LENGTH = 256
PASSWORD_LENGTH = MAX_LENGTH


class RegistrationError(InvalidInput):
    """A registration form with mistakes; ``problems`` maps each field to what is wrong with it."""

    def __init__(self, problems: dict[str, str]):
        super().__init__("; ".join(problems.values()), field=next(iter(problems)))
        self.problems = problems


def normalise_email(email: str) -> str:
    return email.strip().lower()


def by_email(email: str):
    """The condition that finds the candidate with this e-mail address: addresses are encrypted,
    so the look-up goes through their keyed hash."""
    return Candidate.email_hash == lookup_hash(normalise_email(email))


def register(session: Session, *, name: str, date_of_birth: dt.date | None, email: str, password: str,
             occupation: str, company_type: str | None, today: dt.date) -> Candidate:
    """A new candidate, with every problem of the form reported at once (in the caller's unit of work)."""
    problems: dict[str, str] = {}
    name, email = name.strip(), normalise_email(email)
    if not name:
        problems["name"] = "Enter your name as on your photo ID."
    elif len(name) > NAME_LENGTH:
        problems["name"] = f"Enter at most {NAME_LENGTH} characters."
    if date_of_birth is None:
        problems["date_of_birth"] = "Enter your date of birth."
    elif not dt.date(1900, 1, 1) <= date_of_birth <= today - dt.timedelta(days=365 * 6):
        problems["date_of_birth"] = "Enter a real date of birth."
    if len(email) > EMAIL_LENGTH or not _EMAIL.match(email):
        problems["email"] = "Enter an e-mail address like name@example.com."
    elif session.scalar(select(func.count(Candidate.id)).where(by_email(email))):
        problems["email"] = "This e-mail address is already registered; sign in instead."
    if len(password) < MIN_LENGTH:
        problems["password"] = f"Choose a password of at least {MIN_LENGTH} characters."
    elif len(password) > PASSWORD_LENGTH:
        problems["password"] = f"Choose a password of at most {PASSWORD_LENGTH} characters."
    if occupation not in OCCUPATIONS:
        problems["occupation"] = "Choose whether you are working or a student."
    if occupation == "working" and company_type not in COMPANY_TYPES:
        problems["company_type"] = "Choose whether your company is an IT company."
    if problems:
        raise RegistrationError(problems)
    candidate = Candidate(name=name, date_of_birth=date_of_birth, email=email,
                          password_hash=hash_password(password), occupation=occupation,
                          company_type=company_type if occupation == "working" else None)
    session.add(candidate)
    session.flush()
    return candidate


def register_and_sign_in(session: Session, *, name: str, date_of_birth: dt.date | None, email: str, password: str,
                         occupation: str, company_type: str | None, today: dt.date,
                         now: dt.datetime) -> tuple[Candidate, str]:
    """Register a candidate and sign them in to their bookings: the candidate and the sign-in's token."""
    with unit_of_work(session):
        candidate = register(session, name=name, date_of_birth=date_of_birth, email=email, password=password,
                             occupation=occupation, company_type=company_type, today=today)
        return candidate, sign_ins.open_sign_in(session, now, candidate_id=candidate.id)


def authenticate(session: Session, email: str, password: str) -> Candidate | None:
    """The registered candidate with this e-mail and password, or None."""
    candidate = session.scalar(select(Candidate).where(by_email(email)))
    stored = candidate.password_hash if candidate is not None else None
    return candidate if password_matches(stored, password) else None


def sign_in(session: Session, email: str, password: str, *, now: dt.datetime) -> tuple[Candidate, str]:
    """Sign a registered candidate in: the candidate and the new sign-in's token.
    Wrong credentials: :class:`NotSignedIn`."""
    with unit_of_work(session):
        candidate = authenticate(session, email, password)
        if candidate is None:
            raise NotSignedIn("Unknown e-mail address or wrong password.")
        return candidate, sign_ins.open_sign_in(session, now, candidate_id=candidate.id)


def sign_out(session: Session, token: str | None) -> None:
    sign_ins.close(session, token)


def change_password(session: Session, candidate_id: int, current: str, new: str, *, now: dt.datetime) -> str:
    """A new password for a signed-in candidate who knows the current one: every other sign-in
    ends; returns the token of a fresh sign-in for the browser that asked."""
    if not MIN_LENGTH <= len(new) <= MAX_LENGTH:
        raise InvalidInput(f"Choose a password of {MIN_LENGTH} to {MAX_LENGTH} characters.", field="password")
    with unit_of_work(session):
        candidate = session.scalar(select(Candidate).where(Candidate.id == candidate_id).with_for_update())
        if candidate is None or not password_matches(candidate.password_hash, current):
            raise WrongPassword()
        candidate.password_hash = hash_password(new)
        sign_ins.close_all(session, candidate_id=candidate.id)
        return sign_ins.open_sign_in(session, now, candidate_id=candidate.id)
