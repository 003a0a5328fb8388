"""Migration 0900 on both backends: a database at 0400 with rows in it goes up (its data made to
fit the new rules), refuses statuses outside the enums and a second booking of a candidate,
goes down and up again."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from persistence import create_database_engine, upgrade_database
from persistence.migrate import alembic_config
from tests.conftest import postgres_url

BEFORE = "0400"
TODAY = dt.date.today()


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh(request, tmp_path):
    """An empty database of its own on each backend (PostgreSQL when a server is given)."""
    if request.param == "sqlite":
        engine = create_database_engine(f"sqlite:///{tmp_path / 'migrate.sqlite3'}")
        yield engine
        engine.dispose()
        return
    if not postgres_url():
        pytest.skip("no PostgreSQL server given")
    server = make_url(postgres_url()).set(drivername="postgresql+psycopg")
    name = f"cbt_migrate_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine = create_database_engine(server.set(database=name).render_as_string(hide_password=False))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def insert(connection, table: str, **values) -> int:
    columns = ", ".join(values)
    marks = ", ".join(f":{key}" for key in values)
    return connection.execute(sa.text(f"INSERT INTO {table} ({columns}) VALUES ({marks}) RETURNING id"),
                              values).scalar_one()


def rows_at_0400(connection) -> dict:
    """A centre, a past and a future slot, and bookings the new rules do not allow: a past one never
    taken up, two upcoming ones of one candidate, a no-show still counted, and a sitting."""
    now = dt.datetime(2026, 1, 5, 1, 0)
    centre = insert(connection, "centres", code="MIG-1", name="Migration Centre", prefecture="Tokyo")
    seat = insert(connection, "seats", centre_id=centre, label="S-1", active=True)
    past = insert(connection, "slots", centre_id=centre, date=TODAY - dt.timedelta(days=3), kind="morning",
                  starts_at=now, capacity=4, booked=2)
    future = insert(connection, "slots", centre_id=centre, date=TODAY + dt.timedelta(days=9), kind="morning",
                    starts_at=now + dt.timedelta(days=30), capacity=4, booked=2)
    people = [insert(connection, "candidates", name=f"Person {n}", date_of_birth=dt.date(1990, 1, 1), created_at=now)
              for n in range(3)]

    def booking(candidate, slot, status, code):
        return insert(connection, "bookings", candidate_id=candidate, slot_id=slot, seat_id=seat if status == "booked"
                      and slot == past else None, admission_code=code, status=status, time_multiplier=1.0,
                      created_at=now)

    ids = {
        "stale": booking(people[0], past, "booked", "AAAA-AAAA-AAAA"),
        "absent": booking(people[1], past, "no_show", "BBBB-BBBB-BBBB"),
        "first": booking(people[2], future, "booked", "CCCC-CCCC-CCCC"),
        "second": booking(people[2], future, "booked", "DDDD-DDDD-DDDD"),
    }
    insert(connection, "sittings", booking_id=ids["absent"], program_code="it-passport", status="finished",
           login_token_hash="0" * 64, current_position=1, created_at=now)
    return {"past": past, "future": future, "people": people, **ids}


def test_0900_goes_up_with_rows_refuses_what_the_rules_forbid_and_comes_back_down(fresh):
    from alembic import command

    upgrade_database(fresh, BEFORE)
    with fresh.begin() as connection:
        made = rows_at_0400(connection)
    upgrade_database(fresh)

    with fresh.connect() as connection:
        status = dict(connection.execute(sa.text("SELECT id, status FROM bookings")).all())
        assert (status[made["stale"]], status[made["absent"]]) == ("no_show", "no_show")
        assert (status[made["first"]], status[made["second"]]) == ("booked", "cancelled")
        counters = dict(connection.execute(sa.text("SELECT id, booked FROM slots")).all())
        assert (counters[made["past"]], counters[made["future"]]) == (0, 1)
        assert set(connection.execute(sa.text("SELECT program_code FROM bookings")).scalars()) == {"it-passport"}
        assert connection.execute(sa.text("SELECT added_minutes FROM sittings")).scalar_one() == 0

    bad = [
        ("UPDATE slots SET status = 'maybe' WHERE id = :id", {"id": made["past"]}),
        ("UPDATE bookings SET status = 'lost' WHERE id = :id", {"id": made["first"]}),
        ("UPDATE sittings SET status = 'asleep'", {}),
        # A second booking not yet taken up for the same candidate and program.
        ("UPDATE bookings SET status = 'booked' WHERE id = :id", {"id": made["second"]}),
    ]
    for statement, values in bad:
        with pytest.raises(IntegrityError), fresh.begin() as connection:
            connection.execute(sa.text(statement), values)
    with fresh.begin() as connection:  # a checked-in booking beside a new one is fine
        connection.execute(sa.text("UPDATE bookings SET status = 'checked_in' WHERE id = :id"), {"id": made["first"]})
        connection.execute(sa.text("UPDATE bookings SET status = 'booked' WHERE id = :id"), {"id": made["second"]})

    command.downgrade(alembic_config(fresh), BEFORE)
    with fresh.begin() as connection:
        connection.execute(sa.text("UPDATE bookings SET status = 'lost' WHERE id = :id"), {"id": made["first"]})
        connection.execute(sa.text("UPDATE bookings SET status = 'booked' WHERE id = :id"), {"id": made["first"]})
        assert "sign_ins" not in sa.inspect(connection).get_table_names()
    upgrade_database(fresh)
    with fresh.connect() as connection:
        assert "sign_ins" in sa.inspect(connection).get_table_names()
        if fresh.dialect.name == "sqlite":
            assert connection.execute(sa.text("PRAGMA foreign_keys")).scalar_one() == 1
            assert connection.execute(sa.text("PRAGMA foreign_key_check")).all() == []
