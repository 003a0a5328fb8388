"""What a request works with: the database session, the program, the clock."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable

from flask import current_app, g, request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from delivery.answers import AnswerStore
from itembank.program import ExamProgram
from persistence import utcnow
from persistence.errors import InvalidInput, NotFound

# The application's clock unless a test hands in its own (the CLOCK setting).
system_clock = utcnow


@dataclass(frozen=True)
class Resources:
    engine: Engine
    sessions: sessionmaker[Session]
    program: ExamProgram
    answers: AnswerStore
    clock: Callable[[], dt.datetime]


def resources() -> Resources:
    return current_app.extensions["cbt"]


def db() -> Session:
    """The request's database session, opened on first use."""
    if "db" not in g:
        g.db = resources().sessions()
    return g.db


def close_session(_exception=None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()


def program() -> ExamProgram:
    return resources().program


def now() -> dt.datetime:
    return resources().clock()


def answers() -> AnswerStore:
    return resources().answers


# The largest id a row can have (the databases' 32-bit integer columns).
MAX_ID = 2**31 - 1


def _record_id(text: str | None, name: str, what: str, missing: type) -> int | None:
    text = (text or "").strip()
    if not text:
        return None
    if not text.isascii() or not text.isdigit():
        raise InvalidInput(f"{name}: give the {what}'s number.", field=name)
    value = int(text)
    if not 1 <= value <= MAX_ID:
        raise missing(f"There is no such {what}.", field=name)
    return value


def query_id(name: str, what: str) -> int | None:
    """The id a query-string parameter names (None if absent); a clear 4xx for anything but a
    whole number a row could have, however large."""
    return _record_id(request.args.get(name), name, what, NotFound)


def form_id(name: str, what: str) -> int | None:
    """The id a form field names (None if absent); a clear 4xx for anything else."""
    return _record_id(request.form.get(name), name, what, NotFound)
