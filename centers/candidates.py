"""Candidate registration and sign-in to the booking pages."""
from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from centers.models import COMPANY_TYPES, OCCUPATIONS, Candidate
from persistence.errors import InvalidInput

# Verifying against this keeps an unknown e-mail as slow as a wrong password.
_DUMMY_HASH = generate_password_hash("not a password")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class RegistrationError(InvalidInput):
    """A registration form with mistakes; ``problems`` maps each field to what is wrong with it."""

    def __init__(self, problems: dict[str, str]):
        super().__init__("; ".join(problems.values()))
        self.problems = problems


def normalise_email(email: str) -> str:
    return email.strip().lower()


def register(session: Session, *, name: str, date_of_birth: dt.date | None, email: str, password: str,
             occupation: str, company_type: str | None, today: dt.date) -> Candidate:
    """A new candidate, with every problem of the form reported at once."""
    problems: dict[str, str] = {}
    name, email = name.strip(), normalise_email(email)
    if not name:
        problems["name"] = "Enter your name as on your photo ID."
    if date_of_birth is None:
        problems["date_of_birth"] = "Enter your date of birth."
    elif not dt.date(1900, 1, 1) <= date_of_birth <= today - dt.timedelta(days=365 * 6):
        problems["date_of_birth"] = "Enter a real date of birth."
    if not _EMAIL.match(email):
        problems["email"] = "Enter an e-mail address like name@example.com."
    elif session.scalar(select(func.count(Candidate.id)).where(Candidate.email == email)):
        problems["email"] = "This e-mail address is already registered; sign in instead."
    if len(password) < 10:
        problems["password"] = "Choose a password of at least 10 characters."
    if occupation not in OCCUPATIONS:
        problems["occupation"] = "Choose whether you are working or a student."
    if occupation == "working" and company_type not in COMPANY_TYPES:
        problems["company_type"] = "Choose whether your company is an IT company."
    if problems:
        raise RegistrationError(problems)
    candidate = Candidate(name=name, date_of_birth=date_of_birth, email=email,
                          password_hash=generate_password_hash(password), occupation=occupation,
                          company_type=company_type if occupation == "working" else None)
    session.add(candidate)
    session.flush()
    return candidate


def authenticate(session: Session, email: str, password: str) -> Candidate | None:
    """The registered candidate with this e-mail and password, or None."""
    candidate = session.scalar(select(Candidate).where(Candidate.email == normalise_email(email)))
    if candidate is None or candidate.password_hash is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    return candidate if check_password_hash(candidate.password_hash, password) else None
