"""Candidate registration and sign-in to the booking pages."""
from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from centers import sign_ins
from centers.models import COMPANY_TYPES, OCCUPATIONS, Candidate
from centers.passwords import MAX_LENGTH, MIN_LENGTH, WrongPassword, hash_password, password_matches
from persistence import typed_input
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

    def __init__(self, problems: dict[str, InvalidInput]):
        super().__init__("; ".join(p.message for p in problems.values()), field=next(iter(problems)))
        self.problems = problems


def normalise_email(email: str) -> str:
    """The address as stored: full-width forms folded (:func:`persistence.typed_input.email`)."""
    return typed_input.email(email)


def by_email(email: str):
    """The condition that finds the candidate with this e-mail address: addresses are encrypted,
    so the look-up goes through their keyed hash."""
    return Candidate.email_hash == lookup_hash(normalise_email(email))


def register(session: Session, *, name: str, date_of_birth: dt.date | None, email: str, password: str,
             occupation: str, company_type: str | None, today: dt.date, name_kana: str = "") -> Candidate:
    """A new candidate, with every problem of the form reported at once (in the caller's unit of work).

    ``name_kana`` is the name's reading in full-width katakana (フリガナ; hiragana and half-width
    kana are accepted and converted). It is required for a name written in kanji or kana, whose
    reading the proctor cannot otherwise know at the identity check; a name in Latin letters
    is read as written, and its reading may be left empty.

    Each problem is an :class:`InvalidInput`: a message template and its values, so the page can show
    it in the reader's language."""
    problems: dict[str, InvalidInput] = {}
    name, email = " ".join(name.split()), normalise_email(email)
    name_kana = typed_input.kana(name_kana)
    if not name:
        problems["name"] = InvalidInput("Enter your name as on your photo ID.")
    elif len(name) > NAME_LENGTH:
        problems["name"] = InvalidInput("Enter at most {limit} characters.", limit=NAME_LENGTH)
    if not name_kana:
        if name and typed_input.in_japanese_script(name):
            problems["name_kana"] = InvalidInput("Enter the reading of your name in katakana (フリガナ).")
    elif len(name_kana) > NAME_LENGTH:
        problems["name_kana"] = InvalidInput("Enter at most {limit} characters.", limit=NAME_LENGTH)
    elif not typed_input.is_katakana(name_kana):
        problems["name_kana"] = InvalidInput("Write the reading in full-width katakana, like ヤマダ ハナコ.")
    if date_of_birth is None:
        problems["date_of_birth"] = InvalidInput("Enter your date of birth, like 2000/04/01.")
    elif not dt.date(1900, 1, 1) <= date_of_birth <= today - dt.timedelta(days=365 * 6):
        problems["date_of_birth"] = InvalidInput("Enter a real date of birth.")
    if len(email) > EMAIL_LENGTH or not _EMAIL.match(email):
        problems["email"] = InvalidInput("Enter an e-mail address like name@example.com.")
    elif session.scalar(select(func.count(Candidate.id)).where(by_email(email))):
        problems["email"] = InvalidInput("This e-mail address is already registered; sign in instead.")
    if len(password) < MIN_LENGTH:
        problems["password"] = InvalidInput("Choose a password of at least {limit} characters.", limit=MIN_LENGTH)
    elif len(password) > PASSWORD_LENGTH:
        problems["password"] = InvalidInput("Choose a password of at most {limit} characters.", limit=PASSWORD_LENGTH)
    if occupation not in OCCUPATIONS:
        problems["occupation"] = InvalidInput("Choose whether you are working or a student.")
    if occupation == "working" and company_type not in COMPANY_TYPES:
        problems["company_type"] = InvalidInput("Choose whether your company is an IT company.")
    if problems:
        raise RegistrationError(problems)
    candidate = Candidate(name=name, name_kana=name_kana or None, date_of_birth=date_of_birth, email=email,
                          password_hash=hash_password(password), occupation=occupation,
                          company_type=company_type if occupation == "working" else None)
    session.add(candidate)
    session.flush()
    return candidate


def register_and_sign_in(session: Session, *, name: str, date_of_birth: dt.date | None, email: str, password: str,
                         occupation: str, company_type: str | None, today: dt.date,
                         now: dt.datetime, name_kana: str = "") -> tuple[Candidate, str]:
    """Register a candidate and sign them in to their bookings: the candidate and the sign-in's token."""
    with unit_of_work(session):
        candidate = register(session, name=name, date_of_birth=date_of_birth, email=email, password=password,
                             occupation=occupation, company_type=company_type, today=today, name_kana=name_kana)
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
        raise InvalidInput("Choose a password of {shortest} to {longest} characters.", field="password",
                           shortest=MIN_LENGTH, longest=MAX_LENGTH)
    with unit_of_work(session):
        candidate = session.scalar(select(Candidate).where(Candidate.id == candidate_id).with_for_update())
        if candidate is None or not password_matches(candidate.password_hash, current):
            raise WrongPassword()
        candidate.password_hash = hash_password(new)
        sign_ins.close_all(session, candidate_id=candidate.id)
        return sign_ins.open_sign_in(session, now, candidate_id=candidate.id)
