"""The hot path: saving answers, marks and the current position.

These run about a hundred times per sitting, for thousands of candidates at
once, so each is one SQL statement on the driver connection, committed before
the caller answers the page. The statement itself checks that the login token
is current, that the sitting is in progress and that its deadline has not
passed; when it changes no row, :mod:`delivery.sittings` explains why.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Callable

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from delivery.models import SITTING, SittingStatus
from persistence import UTCDateTime
from persistence.errors import Unavailable

IN_PROGRESS = SittingStatus.IN_PROGRESS.value
WAITING = SittingStatus.WAITING.value
STARTED = SITTING.target(SittingStatus.WAITING, "start").value

# The login token is the seat's sign-in: checking it here is the whole of the session check.
_RUNNING = f"""EXISTS (SELECT 1 FROM sittings
                WHERE sittings.id = :sitting_id AND sittings.login_token_hash = :token_hash
                  AND sittings.status = '{IN_PROGRESS}' AND sittings.deadline_at > :now)"""

SAVE_ANSWER = f"""UPDATE sitting_items SET chosen_option = :option, answered_at = :now
WHERE sitting_id = :sitting_id AND position = :position AND {_RUNNING}"""

SAVE_MARK = f"""UPDATE sitting_items SET marked = :marked
WHERE sitting_id = :sitting_id AND position = :position AND {_RUNNING}"""

SAVE_POSITION = f"""UPDATE sittings SET current_position = :position
WHERE id = :sitting_id AND login_token_hash = :token_hash AND status = '{IN_PROGRESS}'
  AND deadline_at > :now AND :position BETWEEN 1 AND (SELECT MAX(position) FROM sitting_items WHERE sitting_id = :sitting_id)"""

READ_CLOCK = """SELECT status, deadline_at, remaining_seconds FROM sittings
WHERE id = :sitting_id AND login_token_hash = :token_hash"""

# The candidate's Start in two statements: what the start needs, then the start itself, guarded
# so that anything that changed the waiting sitting in between (a proctor's added time, another
# seat's Start) makes it change nothing; :func:`delivery.sittings.candidate_start` then decides.
READ_WAITING = f"""SELECT s.remaining_seconds, sl.starts_at FROM sittings s
JOIN bookings b ON b.id = s.booking_id JOIN slots sl ON sl.id = b.slot_id
WHERE s.id = :sitting_id AND s.login_token_hash = :token_hash AND s.status = '{WAITING}'"""

START = f"""UPDATE sittings SET status = '{STARTED}', started_at = :now, deadline_at = :deadline,
  remaining_seconds = NULL, current_position = 1
WHERE id = :sitting_id AND login_token_hash = :token_hash AND status = '{WAITING}' AND remaining_seconds = :waiting"""

# The questions are shown from the start until the end: not while the candidate waits for the slot.
READ_QUESTIONS = f"""SELECT q.etag, q.body FROM sitting_questions q JOIN sittings s ON s.id = q.sitting_id
WHERE s.id = :sitting_id AND s.login_token_hash = :token_hash
  AND s.status IN ('{IN_PROGRESS}', '{SittingStatus.PAUSED.value}')"""


class StorageUnavailable(Unavailable):
    """The database did not take the statement; the client may retry."""


@dataclass(frozen=True)
class Clock:
    status: str
    deadline_at: dt.datetime | None
    remaining_seconds: float | None


class AnswerStore:
    """Runs the hot-path statements on ``engine``'s pooled driver connections."""

    def __init__(self, engine: Engine):
        self.engine = engine
        dialect = engine.dialect
        dbapi = dialect.dbapi
        self._unavailable = (dbapi.OperationalError, dbapi.InterfaceError)
        # The dialect's own form of the type: on SQLite it writes and parses the same
        # text format as the ORM, so the statements compare like with like.
        moment = UTCDateTime().dialect_impl(dialect)
        self._time_in = moment.bind_processor(dialect) or (lambda v: v)
        self._time_out = moment.result_processor(dialect, None) or (lambda v: v)
        self._single_statement = dialect.name == "postgresql"
        # sqlite3 takes :name placeholders; psycopg takes %(name)s.
        named = dialect.paramstyle == "named" or dialect.name == "sqlite"
        self._sql = {
            name: sql if named else re.sub(r":(\w+)", r"%(\1)s", sql)
            for name, sql in {
                "answer": SAVE_ANSWER, "mark": SAVE_MARK, "position": SAVE_POSITION, "clock": READ_CLOCK,
                "questions": READ_QUESTIONS, "waiting": READ_WAITING, "start": START,
            }.items()
        }

    def _run(self, name: str, params: dict, fetch: bool):
        try:
            connection = self.engine.raw_connection()
        except (SQLAlchemyError, *self._unavailable) as error:  # no connection to be had: the pool, the server
            raise StorageUnavailable(str(error)) from error
        driver = connection.driver_connection
        # On PostgreSQL the statement runs in autocommit: one round trip instead of three
        # (BEGIN, the statement, COMMIT), and it is just as durable once it returns.
        single = self._single_statement
        try:
            if single:
                driver.autocommit = True
            cursor = driver.cursor()
            cursor.execute(self._sql[name], params)
            result = cursor.fetchone() if fetch else cursor.rowcount == 1
            if not single:
                driver.commit()
            return result
        except self._unavailable as error:
            if self.engine.dialect.is_disconnect(error, driver, None):
                # The server went away (restarted, failed over): every pooled connection is as
                # dead as this one, so start a fresh pool rather than fail once per connection.
                connection.invalidate()
                self.engine.dispose(close=False)
            else:  # e.g. a full disk or a deadlock: the connection itself is fine
                connection.rollback()
            raise StorageUnavailable(str(error)) from error
        except BaseException:
            connection.rollback()
            raise
        finally:
            if single and not driver.closed:
                driver.autocommit = False
            connection.close()

    def _write(self, name: str, params: dict) -> bool:
        return self._run(name, params, fetch=False)

    def save_answer(self, sitting_id: int, token_hash: str, position: int, option: int | None,
                    now: dt.datetime) -> bool:
        """Record the chosen option (None clears it); False if the sitting refused it."""
        return self._write("answer", {
            "option": option, "now": self._time_in(now), "sitting_id": sitting_id,
            "token_hash": token_hash, "position": position,
        })

    def save_mark(self, sitting_id: int, token_hash: str, position: int, marked: bool, now: dt.datetime) -> bool:
        return self._write("mark", {
            "marked": marked, "now": self._time_in(now), "sitting_id": sitting_id,
            "token_hash": token_hash, "position": position,
        })

    def save_position(self, sitting_id: int, token_hash: str, position: int, now: dt.datetime) -> bool:
        return self._write("position", {
            "position": position, "now": self._time_in(now), "sitting_id": sitting_id, "token_hash": token_hash,
        })

    def read_clock(self, sitting_id: int, token_hash: str) -> Clock | None:
        row = self._run("clock", {"sitting_id": sitting_id, "token_hash": token_hash}, fetch=True)
        if row is None:
            return None
        return Clock(row[0], self._time_out(row[1]), row[2])

    def read_questions(self, sitting_id: int, token_hash: str) -> tuple[str, bytes] | None:
        """The ETag and sealed body of a running sitting's prepared questions (``delivery.prepared``);
        None if the token is not current, the sitting is not running, or none are prepared."""
        row = self._run("questions", {"sitting_id": sitting_id, "token_hash": token_hash}, fetch=True)
        return None if row is None else (row[0], bytes(row[1]))

    def start(self, sitting_id: int, token_hash: str, now: dt.datetime,
              seconds_at_start: Callable[[float | None, dt.datetime], float]) -> bool:
        """Start a waiting sitting whose slot has begun: ``seconds_at_start(waiting seconds, slot start)``
        gives its time. False when it cannot be started this way (not waiting, too early, no time
        left, changed meanwhile): the service then starts it or says why not."""
        row = self._run("waiting", {"sitting_id": sitting_id, "token_hash": token_hash}, fetch=True)
        if row is None:
            return False
        waiting, slot_start = row[0], self._time_out(row[1])
        if now < slot_start:
            return False
        seconds = seconds_at_start(waiting, slot_start)
        if seconds <= 0:
            return False
        return self._write("start", {
            "now": self._time_in(now), "deadline": self._time_in(now + dt.timedelta(seconds=seconds)),
            "sitting_id": sitting_id, "token_hash": token_hash, "waiting": waiting,
        })
