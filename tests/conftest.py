"""Test fixtures: a fresh database per backend, the app, a controllable clock.

Every test that takes ``engine`` (directly or through ``app``) runs once on
SQLite and, when a PostgreSQL URL is given (``CBT_TEST_POSTGRES_URL``, or
``CBT_DATABASE_URL`` when it names PostgreSQL), once more on a PostgreSQL
database of its own, created for this run and dropped at its end.
"""
from __future__ import annotations

import datetime as dt
import os
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from centers.demo import ensure_demo_centre
from itembank.program import load_program
from itembank.sample import load_sample_bank
from persistence import create_database_engine, session_factory, upgrade_database


def postgres_url() -> str | None:
    url = os.environ.get("CBT_TEST_POSTGRES_URL") or os.environ.get("CBT_DATABASE_URL") or ""
    return url if url.startswith(("postgresql", "postgres:")) else None


BACKENDS = ["sqlite"] + (["postgresql"] if postgres_url() else [])


@pytest.fixture(scope="session")
def program():
    return load_program()


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request, tmp_path_factory):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'cbt.sqlite3'}"
        return
    server = make_url(postgres_url()).set(drivername="postgresql+psycopg")
    name = f"cbt_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def keys_of_database(database_url, tmp_path_factory):
    # Private signing keys belong with the database that holds their public halves.
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(autouse=True)
def key_directory(request, monkeypatch):
    if "engine" not in request.fixturenames:
        return None
    directory = request.getfixturevalue("keys_of_database")
    monkeypatch.setenv("CBT_KEY_DIR", str(directory))
    return directory


@pytest.fixture(scope="session")
def engine(database_url, program):
    engine = create_database_engine(database_url)
    upgrade_database(engine)
    with session_factory(engine)() as session:
        load_sample_bank(session, program)
        ensure_demo_centre(session)
        session.commit()
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine):
    with session_factory(engine)() as session:
        yield session


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: dt.datetime):
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def clock():
    return Clock(dt.datetime.now(dt.timezone.utc).replace(microsecond=0))


@pytest.fixture
def app(engine, clock):
    from delivery.web import create_app

    return create_app({"ENGINE": engine, "SECRET_KEY": "test-secret", "TESTING": True, "CLOCK": clock})


@pytest.fixture
def client(app):
    return app.test_client()
