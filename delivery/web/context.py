"""What a request works with: the database session, the program, the clock."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable

from flask import current_app, g
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from delivery.answers import AnswerStore
from itembank.program import ExamProgram


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


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
