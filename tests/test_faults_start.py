"""Faults at the start of a sitting: a full disk or an unreachable database at the candidate's
login (which creates the sitting and draws its form) and at the start (which starts the clock),
and at the server's own start. On every backend.

Each fault is real, not a stand-in for the product's code: the request goes through the app's
own engine and session, and the database itself refuses it.

- Disk full, SQLite: ``PRAGMA max_page_count`` set to the file's size on the app's connections,
  so the first statement that needs a new page fails with SQLITE_FULL "database or disk is full",
  exactly what SQLite returns when the disk has no room. At login that is the first write, the
  item exposure counts that drawing the form updates. The app works on a compacted copy
  (``VACUUM INTO``) of the test database with 512-byte pages, so the file has no free pages to
  reuse and a sitting's items cannot fit in the room left on the last page.
- Disk full, PostgreSQL: a trigger that raises SQLSTATE 53100 (disk_full), what the server sends
  when it cannot extend a table's file; psycopg maps it to ``psycopg.errors.DiskFull``. It fires
  on the sitting's items, after the exposure counts and the ``sittings`` row went in (a half-made
  sitting to undo), and on the update that starts the clock. Filling a real disk would take the shared server down.
- Unreachable, SQLite: the pool closed and the database's directory moved away: a new
  connection fails with "unable to open database file", as when the volume is gone.
- Unreachable, PostgreSQL: the database refuses new connections (``ALLOW_CONNECTIONS false``)
  and the open ones are cut, as when the server goes down, without stopping the server that
  other tests share.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.pool import NullPool

from centers.models import Booking
from delivery.models import Sitting, SittingItem
from delivery.web import StartupError, create_app
from delivery.web.errors import DATABASE_UNREACHABLE, STORAGE_FULL
from itembank.assembly_models import ItemExposure
from persistence import create_database_engine, session_factory
from tests.conftest import EnglishReader
from tests.helpers import booked_candidate, csrf_token, login_candidate

FAULTS = {
    # fault: (what the candidate reads, Retry-After, the log level of the one line logged)
    "disk_full": (STORAGE_FULL, "30", logging.ERROR),
    "unreachable": (DATABASE_UNREACHABLE, "1", logging.WARNING),
}


class Faults:
    """An app on an engine of its own, and the faults a test puts on its database."""

    def __init__(self, engine, tmp_path: Path, clock):
        self.shared = engine
        self.backend = engine.dialect.name
        if self.backend == "sqlite":
            self.directory = tmp_path / "own-database"
            self.directory.mkdir()
            path = self.directory / "cbt.sqlite3"
            source = sqlite3.connect(engine.url.database)
            try:
                # The smallest page: a sitting's items (some 3 KB) then always need new pages,
                # whatever room the last page of their table still has.
                source.execute("PRAGMA page_size = 512")
                source.execute(f"VACUUM INTO '{path}'")
            finally:
                source.close()
            self.engine = create_database_engine(f"sqlite:///{path}")
        else:
            self.engine = create_database_engine(engine.url.render_as_string(hide_password=False))
        self.sessions = session_factory(self.engine)
        self.app = create_app({"ENGINE": self.engine, "SECRET_KEY": "test-secret", "TESTING": True,
                               "CLOCK": clock})
        self.app.test_client_class = EnglishReader  # the messages compared are the English ones

    def close(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def __call__(self, fault: str):
        with getattr(self, fault)():
            yield

    @contextlib.contextmanager
    def disk_full(self):
        if self.backend == "sqlite":
            def full(dbapi_connection, _record):
                size = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
                dbapi_connection.execute(f"PRAGMA max_page_count = {size}")

            self.engine.dispose()
            event.listen(self.engine, "connect", full)
            try:
                yield
            finally:
                event.remove(self.engine, "connect", full)
                self.engine.dispose()
            return
        with self.shared.begin() as connection:
            connection.execute(text(
                "CREATE FUNCTION test_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "RAISE EXCEPTION 'could not extend file \"base/1/2\": No space left on device' "
                "USING ERRCODE = 'disk_full', "
                "HINT = 'Check free disk space.'; END $$"))
            connection.execute(text("CREATE TRIGGER test_disk_full BEFORE INSERT ON sitting_items "
                                    "FOR EACH STATEMENT EXECUTE FUNCTION test_disk_full()"))
            connection.execute(text("CREATE TRIGGER test_disk_full BEFORE UPDATE ON sittings "
                                    "FOR EACH STATEMENT EXECUTE FUNCTION test_disk_full()"))
        try:
            yield
        finally:
            with self.shared.begin() as connection:
                connection.execute(text("DROP TRIGGER test_disk_full ON sitting_items"))
                connection.execute(text("DROP TRIGGER test_disk_full ON sittings"))
                connection.execute(text("DROP FUNCTION test_disk_full()"))

    @contextlib.contextmanager
    def unreachable(self):
        if self.backend == "sqlite":
            self.engine.dispose()
            away = self.directory.with_name("moved-away")
            self.directory.rename(away)
            try:
                yield
            finally:
                away.rename(self.directory)
            return
        name = self.shared.url.database
        # From the server's maintenance database: a database cannot shut itself off.
        server = create_engine(self.shared.url.set(database="postgres"), poolclass=NullPool,
                               isolation_level="AUTOCOMMIT")
        try:
            with server.connect() as admin:
                admin.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
                admin.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
                              {"name": name})
                try:
                    yield
                finally:
                    admin.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        finally:
            server.dispose()
            # The cut connections of the test session's own engine: not the app's, whose
            # recovery is what the tests check.
            self.shared.dispose()


@pytest.fixture
def faults(engine, tmp_path, clock):
    faults = Faults(engine, tmp_path, clock)
    yield faults
    faults.close()


def booked_now(faults, program, clock):
    """A checked-in candidate whose slot starts now, on the app's own database."""
    with faults.sessions() as session:
        return booked_candidate(session, program, clock.now)


def rows_of(faults, booking_id: int) -> dict:
    with faults.sessions() as session:
        sittings = session.scalars(select(Sitting).where(Sitting.booking_id == booking_id)).all()
        return {
            "sittings": sittings,
            "items": [session.scalar(select(func.count()).select_from(SittingItem)
                                     .where(SittingItem.sitting_id == s.id)) for s in sittings],
            "all_items": session.scalar(select(func.count()).select_from(SittingItem)),
            # Exposure counts go up in the login's own transaction: a failed login must not count.
            "exposure": session.scalar(select(func.sum(ItemExposure.scored + ItemExposure.pretest))) or 0,
            "booking_status": session.get(Booking, booking_id).status,
        }


def assert_clear_503(response, fault: str, caplog) -> None:
    message, retry_after, level = FAULTS[fault]
    body = response.get_data(as_text=True)
    assert response.status_code == 503, body
    assert response.headers["Retry-After"] == retry_after
    assert message in body.replace("&#39;", "'")
    assert "Traceback" not in body and "sqlalchemy" not in body.lower()
    # Logged once, on one line, without a trace.
    logged = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(logged) == 1, [r.getMessage() for r in logged]
    line = logged[0].getMessage()
    assert logged[0].levelno == level and logged[0].exc_info is None and "\n" not in line
    if fault == "disk_full":  # the database's own words, as SQLite and PostgreSQL say them on a full disk
        assert "database or disk is full" in line or "No space left on device" in line


@pytest.mark.parametrize("fault", FAULTS)
def test_a_fault_at_login_leaves_no_half_created_sitting_and_a_retry_creates_one(
        faults, program, clock, caplog, fault):
    booked = booked_now(faults, program, clock)
    before = rows_of(faults, booked.booking_id)
    client = faults.app.test_client()

    with faults(fault):
        caplog.clear()
        refused = login_candidate(client, booked)
    assert_clear_503(refused, fault, caplog)
    # The login form posts a page, and gets a page back.
    assert refused.mimetype == "text/html" and "Back to the start page" in refused.get_data(as_text=True)

    after = rows_of(faults, booked.booking_id)
    assert after["sittings"] == [] and after["all_items"] == before["all_items"]
    assert after["exposure"] == before["exposure"]
    assert after["booking_status"] == before["booking_status"] == "checked_in"

    retried = login_candidate(client, booked)
    assert retried.status_code == 302 and retried.headers["Location"].endswith("/instructions")
    done = rows_of(faults, booked.booking_id)
    assert len(done["sittings"]) == 1 and done["sittings"][0].status == "waiting"
    assert done["items"] == [program.items_per_sitting]


@pytest.mark.parametrize("fault", FAULTS)
def test_a_fault_at_the_start_leaves_the_clock_stopped_and_a_retry_starts_it(
        faults, program, clock, caplog, fault):
    if fault == "disk_full" and faults.backend == "sqlite":
        pytest.skip("the start rewrites one row of a page in place; a file held at its size by "
                    "max_page_count still takes that (a full disk would not, as SQLite writes the page to the WAL)")
    booked = booked_now(faults, program, clock)
    client = faults.app.test_client()
    assert login_candidate(client, booked).status_code == 302
    token = csrf_token(client)

    with faults(fault):
        caplog.clear()
        refused = client.post("/start", data={"csrf_token": token, "agree": "yes"})
        assert_clear_503(refused, fault, caplog)
        if fault == "unreachable":
            # The sitting page's API calls get the same answer, as JSON.
            caplog.clear()
            state = client.get("/api/sitting", headers={"Accept": "application/json"})
            assert_clear_503(state, fault, caplog)
            assert state.get_json() == {"error": DATABASE_UNREACHABLE, "status": 503}

    (sitting,) = rows_of(faults, booked.booking_id)["sittings"]
    assert sitting.status == "waiting" and sitting.started_at is None and sitting.deadline_at is None

    started = client.post("/start", data={"csrf_token": token, "agree": "yes"})
    assert started.status_code == 302 and started.headers["Location"].endswith("/sitting")
    done = rows_of(faults, booked.booking_id)
    assert [s.status for s in done["sittings"]] == ["in_progress"]
    assert done["items"] == [program.items_per_sitting]
    assert done["sittings"][0].deadline_at == clock.now + dt.timedelta(minutes=program.duration_minutes)


# The server's own start.

DEAD_POSTGRES = "postgresql://postgres@127.0.0.1:1/test"  # port 1: nothing listens there


def dead_urls(tmp_path: Path) -> dict[str, str]:
    # A SQLite "file" that is a directory: SQLite cannot open it, as when the volume is gone.
    (tmp_path / "not-a-file.sqlite3").mkdir()
    return {"postgresql": DEAD_POSTGRES, "sqlite": f"sqlite:///{tmp_path / 'not-a-file.sqlite3'}"}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_app_refuses_to_start_on_an_unreachable_database_with_one_clear_line(tmp_path, backend):
    url = dead_urls(tmp_path)[backend]
    with pytest.raises(StartupError) as refused:
        create_app({"DATABASE_URL": url, "SECRET_KEY": "test-secret"})
    message = str(refused.value)
    assert "\n" not in message
    if backend == "postgresql":
        assert message.startswith("cannot reach the database at postgresql+psycopg://postgres@127.0.0.1:1/test "
                                  "(connection failed: ")
        assert "Connection refused" in message
        assert message.endswith("; check that the database server is running and reachable from here, "
                                "and that CBT_DATABASE_URL names it")
    else:
        assert message == (f"cannot reach the database at {url} (unable to open database file); "
                           "check that the file can be opened and written here, and that CBT_DATABASE_URL names it")


def test_the_app_refuses_to_start_on_a_database_not_migrated(tmp_path):
    with pytest.raises(StartupError, match="schema is at revision none .* run `cbt db upgrade`"):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}", "SECRET_KEY": "test-secret"})


def test_cbt_serve_prints_the_reason_and_exits_non_zero(monkeypatch):
    from delivery.cli import main

    monkeypatch.setenv("CBT_DATABASE_URL", DEAD_POSTGRES)
    monkeypatch.setenv("CBT_SECRET_KEY", "test-secret")
    result = CliRunner().invoke(main, ["serve", "--port", "1"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot start: cannot reach the database at postgresql+psycopg://"
                                    "postgres@127.0.0.1:1/test")
    assert result.output.count("\n") == 1 and "Traceback" not in result.output


def test_gunicorn_stops_with_the_reason_not_a_traceback(tmp_path):
    import gunicorn.config

    gunicorn_bin = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
    options = ["-w", "1", "-b", "127.0.0.1:0"]
    if any(setting.name == "control_socket_disable" for setting in gunicorn.config.KNOWN_SETTINGS):
        options.append("--no-control-socket")  # gunicorn 24+: keep clear of a gunicorn running here
    env = {**os.environ, "CBT_DATABASE_URL": DEAD_POSTGRES, "CBT_SECRET_KEY": "test-secret"}
    finished = subprocess.run([gunicorn_bin, *options, "delivery.web:create_app()"], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)
    assert finished.returncode != 0
    assert "Traceback" not in finished.stderr
    reasons = [line for line in finished.stderr.splitlines() if line.startswith("cannot reach the database at ")]
    assert reasons and reasons[0].startswith("cannot reach the database at postgresql+psycopg://postgres@127.0.0.1:1/test")
    assert "App failed to load" in finished.stderr
