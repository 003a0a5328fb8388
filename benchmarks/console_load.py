"""What the live board and the candidate's clock poll cost, at the scale of the whole network.

Builds a database with the ~100 sample centres, every seat of one slot booked,
checked in and sitting (every centre starting the slot at the same minute),
then times, in the same process:

- the baseline: the candidate's clock poll, GET /api/sitting/clock (one primary-key
  read on the driver connection), which every candidate's page makes every few seconds;
- GET /proctor/board/live: the proctor's board of a whole centre (one query + the template);
- console.board() alone: the query and row building without the web layer.

and prints each as milliseconds per request and as a ratio to the baseline, with
the CPU share that 100 proctors polling every 3 s and every seated candidate
polling every 5 s would take.

    .venv/bin/python benchmarks/console_load.py                      # SQLite in a temp dir
    .venv/bin/python benchmarks/console_load.py --database postgresql://postgres@127.0.0.1:5432/test
"""
from __future__ import annotations

import argparse
import datetime as dt
import re
import secrets
import statistics
import tempfile
import time
import uuid

from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from centers import calendar
from centers.accounts import create_staff
from centers.bookings import book
from centers.demo import load_demo_centres
from centers.models import Candidate, Centre, Slot
from delivery import console
from delivery.models import Sitting
from delivery.sittings import token_hash
from itembank.program import load_program
from persistence import create_database_engine, session_factory, upgrade_database


def build(url: str, program, now: dt.datetime) -> tuple[list[tuple[int, int]], list[tuple[int, str]]]:
    """The network with one full slot; returns (centre id, slot id) pairs and (sitting id, token) pairs."""
    engine = create_database_engine(url)
    upgrade_database(engine)
    sessions = session_factory(engine)
    with sessions() as session:
        load_demo_centres(session)
        calendar.extend_calendar(session, program, calendar.local_today(program, now), 1)
        session.commit()
        centres, tokens = [], []
        for centre in session.scalars(select(Centre).order_by(Centre.id)):
            slot = session.scalar(select(Slot).where(Slot.centre_id == centre.id).order_by(Slot.starts_at))
            create_staff(session, username=f"bench-{centre.code}", display_name="Bench", password="bench-password",
                         role="proctor", centre_id=centre.id)
            for n, seat in enumerate(centre.seats):
                candidate = Candidate(name=f"Candidate {centre.code}-{n}", date_of_birth=dt.date(2000, 1, 1))
                booking = book(session, candidate, slot, seat_id=seat.id)
                booking.status, booking.checked_in_at = "checked_in", now
                token = secrets.token_urlsafe(24)
                session.flush()
                session.add(Sitting(booking_id=booking.id, seat_id=seat.id, program_code=program.code,
                                    status="in_progress", login_token_hash=token_hash(token), started_at=now,
                                    deadline_at=now + dt.timedelta(minutes=100 + n), current_position=1 + n * 3))
                session.flush()
                tokens.append((session.scalar(select(Sitting.id).where(Sitting.booking_id == booking.id)), token))
            centres.append((centre.id, slot.id, f"bench-{centre.code}"))
        session.commit()
    engine.dispose()
    return centres, tokens


def per_call_ms(fn, calls: int) -> float:
    for _ in range(min(20, calls)):
        fn()
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls // 5):
            fn()
        samples.append((time.perf_counter() - start) * 1000 / (calls // 5))
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", help="a PostgreSQL URL (a scratch database is created and dropped)")
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    program = load_program()
    now = dt.datetime.now(dt.timezone.utc)

    scratch = None
    if args.database:
        server = make_url(args.database).set(drivername="postgresql+psycopg")
        scratch = f"cbt_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{scratch}"'))
        url = server.set(database=scratch).render_as_string(hide_password=False)
    else:
        url = f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3"
    try:
        started = time.perf_counter()
        centres, tokens = build(url, program, now)
        print(f"database: {make_url(url).get_backend_name()}; {len(centres)} centres, {len(tokens)} candidates "
              f"sitting one slot ({time.perf_counter() - started:.1f} s to build)")

        from delivery.web import create_app

        engine = create_database_engine(url)
        app = create_app({"ENGINE": engine, "SECRET_KEY": "bench", "TESTING": True, "WTF_CSRF_ENABLED": False,
                          "CLOCK": lambda: now})
        candidate = app.test_client()
        sitting_id, token = tokens[len(tokens) // 2]
        with candidate.session_transaction() as cookie:
            cookie.update(role="candidate", sitting_id=sitting_id, token=token)
        centre_id, slot_id, username = max(centres, key=lambda c: c[0])
        proctor = app.test_client()
        proctor.post("/staff/login", data={"username": username, "password": "bench-password"})

        def clock_poll():
            assert candidate.get("/api/sitting/clock").status_code == 200

        def board_poll():
            response = proctor.get(f"/proctor/board/live?slot={slot_id}")
            assert response.status_code == 200 and b"in progress" in response.data

        # The query on an open session and connection, as within a request.
        session = session_factory(engine)()

        def board_query():
            console.board(session, centre_id, slot_id, now)
            session.rollback()

        board_rows = len(re.findall(rb"<tr id=", proctor.get(f"/proctor/board/live?slot={slot_id}").data))
        baseline = per_call_ms(clock_poll, args.calls)
        board_ms = per_call_ms(board_poll, args.calls // 2)
        query_ms = per_call_ms(board_query, args.calls)
        print(f"candidate clock poll  GET /api/sitting/clock     {baseline:7.3f} ms/request  (baseline, 1.00x)")
        print(f"proctor board poll    GET /proctor/board/live     {board_ms:7.3f} ms/request  ({board_ms / baseline:.2f}x, "
              f"{board_rows} seats)")
        print(f"board query alone     console.board()             {query_ms:7.3f} ms/call     ({query_ms / baseline:.2f}x)")
        proctors = len(centres) * board_ms / 3.0 / 1000
        seated = len(tokens) * baseline / 5.0 / 1000
        print(f"load: {len(centres)} proctors polling every 3 s: {proctors:.3f} CPU cores; "
              f"{len(tokens)} candidates polling every 5 s: {seated:.3f} CPU cores")
        session.close()
        engine.dispose()
    finally:
        if scratch:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
