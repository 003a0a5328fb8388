"""Test fixtures: a database of its own for every test, the app, a frozen clock.

Every test that takes ``engine`` (directly or through ``app``) runs once on
SQLite and, when a PostgreSQL URL is given (``CBT_TEST_POSTGRES_URL``, or
``CBT_DATABASE_URL`` when it names PostgreSQL), once more on PostgreSQL. Each
backend's template database is migrated and loaded with the sample bank once per
run; each test then works on a copy of it (a file copy on SQLite, ``CREATE
DATABASE ... TEMPLATE`` on PostgreSQL), so no test depends on another's rows.
"""
from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from pathlib import Path

import pytest
from flask.testing import FlaskClient
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


def fresh_database_url(backend: str, tmp_path: Path):
    """A new, empty database on ``backend``; yields its URL and drops it afterwards (PostgreSQL)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / f'cbt-{uuid.uuid4().hex[:8]}.sqlite3'}"
        return
    server = make_url(postgres_url()).set(drivername="postgresql+psycopg")
    name = f"cbt_fresh_{uuid.uuid4().hex[:12]}"
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
def program():
    return load_program()


def _checkpointed(engine) -> None:
    """Fold SQLite's write-ahead log into the main file, so that a copy of the file is the database."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def template_url(request, tmp_path_factory, program):
    """A database migrated and loaded with the sample bank and the demo centre, once per backend
    and run: every test gets a copy of it (``database_url``), so no test sees another's rows."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('template') / 'cbt.sqlite3'}"
        admin = None
    else:
        server = make_url(postgres_url()).set(drivername="postgresql+psycopg")
        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        name = f"cbt_template_{uuid.uuid4().hex[:12]}"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = server.set(database=name).render_as_string(hide_password=False)
    keys = tmp_path_factory.mktemp("keys")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CBT_KEY_DIR", str(keys))
        engine = create_database_engine(url)
        upgrade_database(engine)
        with session_factory(engine)() as session:
            load_sample_bank(session, program)
            ensure_demo_centre(session)
            session.commit()
        _checkpointed(engine)
    try:
        yield url, keys
    finally:
        if admin is not None:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
            admin.dispose()


@pytest.fixture
def database_url(template_url, tmp_path):
    """This test's own database: a fresh copy of the template, dropped afterwards."""
    url, _keys = template_url
    if url.startswith("sqlite"):
        copy = tmp_path / "cbt.sqlite3"
        shutil.copyfile(make_url(url).database, copy)
        yield f"sqlite:///{copy}"
        return
    template = make_url(url)
    name = f"cbt_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(make_url(postgres_url()).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template.database}"'))
    try:
        yield template.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def keys_of_database(template_url):
    # Private signing keys belong with the database that holds their public halves: the
    # template's, which every copy shares.
    return template_url[1]


@pytest.fixture(autouse=True)
def key_directory(request, monkeypatch):
    if "engine" not in request.fixturenames and "database_url" not in request.fixturenames:
        return None
    directory = request.getfixturevalue("keys_of_database")
    monkeypatch.setenv("CBT_KEY_DIR", str(directory))
    return directory


@pytest.fixture
def engine(database_url):
    engine = create_database_engine(database_url)
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


# A Wednesday, 10:00 in Tokyo: every test starts at the same instant, whatever the day it runs.
FROZEN_NOW = dt.datetime(2026, 6, 3, 1, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def clock():
    return Clock(FROZEN_NOW)


class EnglishReader(FlaskClient):
    """A test client that has chosen English with the language switch: most tests read the
    English messages. A test of the Japanese pages forgets the choice
    (``client.delete_cookie("cbt_language")``) or chooses ``ja``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.set_cookie("cbt_language", "en")


@pytest.fixture
def app(engine, clock):
    from delivery.web import create_app

    app = create_app({"ENGINE": engine, "SECRET_KEY": "test-secret", "TESTING": True, "CLOCK": clock})
    app.test_client_class = EnglishReader
    return app


@pytest.fixture
def client(app):
    return app.test_client()
