"""What each request of a sitting costs the server, in CPU time, through the Flask app.

Builds a PostgreSQL database of its own with the load run's population (loadtests.population),
then drives the app in process (test client, no network, no gunicorn) through a slot: the
check-in login (which assembles the form), the start, the questions, the clock, an answer,
a move, the proctor's sign-in and board. Prints each as CPU milliseconds per request and as a
ratio to the baseline: the clock poll, one primary-key read on the driver connection.
From these and a rate, the cores a scenario needs: see docs/loadtests.md.

Then a prototype of issue 14's prepared start, in the same process and database, without
changing the product's views (routes of this script's own on the same app): at check-in the
100 questions' JSON is rendered once, gzip-compressed and stored with the sitting; the start
is one UPDATE that flips the status and stamps the deadline (late start deducted, in SQL);
the sitting page is a static file (nginx serves it); the questions are one indexed read of
the stored bytes. Its costs print against the same clock poll.

Run: .venv/bin/python benchmarks/request_costs.py [--candidates 60]
"""
from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from loadtests.stack import CSRF_FIELD, CSRF_META, drop_database, move_slot_start, prepare, recreate_database  # noqa: E402


def cpu_ms(action, count: int) -> float:
    started = time.process_time()
    for i in range(count):
        action(i)
    return (time.process_time() - started) / count * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=60)
    parser.add_argument("--database", default="cbt_request_costs")
    args = parser.parse_args()
    n = args.candidates
    url = recreate_database(args.database)
    try:
        population = prepare(url, Path(tempfile.mkdtemp()), candidates=n,
                             slot_starts_at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=10))
        os.environ["CBT_DATABASE_URL"] = url
        from delivery.web import create_app

        app = create_app()
        app.register_blueprint(prototype_blueprint())
        seats = [app.test_client() for _ in range(n)]
        pages, headers = {}, {}

        def log_in(i):
            person = population.candidates[i]
            seats[i].set_cookie("cbt_seat", person["seat_cookie"])
            token = CSRF_FIELD.search(seats[i].get("/").get_data(as_text=True)).group(1)
            pages[i] = seats[i].post("/login", follow_redirects=True, data={
                "csrf_token": token, "admission_code": person["admission_code"],
                "date_of_birth": person["date_of_birth"]}).get_data(as_text=True)

        def start(i):
            response = seats[i].post("/start", data={"csrf_token": CSRF_FIELD.search(pages[i]).group(1), "agree": "yes"})
            assert response.status_code == 302, response.status_code

        def sitting_page(i):
            page = seats[i].get("/sitting").get_data(as_text=True)
            headers[i] = {"X-CSRFToken": CSRF_META.search(page).group(1)}

        costs = {"check-in login: GET /, POST /login, the instructions (assembles the form)": cpu_ms(log_in, n)}
        move_slot_start(url, dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1))
        costs["start: POST /start"] = cpu_ms(start, n)
        costs["the sitting page: GET /sitting"] = cpu_ms(sitting_page, n)
        costs["GET /api/sitting (the 100 questions)"] = cpu_ms(lambda i: seats[i % n].get("/api/sitting"), n)
        costs["GET /api/sitting/questions (prepared at login)"] = cpu_ms(
            lambda i: seats[i % n].get("/api/sitting/questions", headers={"Accept-Encoding": "gzip"}), n)
        costs["baseline: GET /api/sitting/clock"] = cpu_ms(lambda i: seats[i % n].get("/api/sitting/clock"), 5 * n)
        costs["PUT /api/sitting/answers/<n>"] = cpu_ms(lambda i: seats[i % n].put(
            f"/api/sitting/answers/{i % 100 + 1}", json={"option": i % 4}, headers=headers[i % n]), 5 * n)
        costs["PUT /api/sitting/position"] = cpu_ms(lambda i: seats[i % n].put(
            "/api/sitting/position", json={"position": i % 100 + 1}, headers=headers[i % n]), 5 * n)
        proctor = app.test_client()
        account = population.proctors[0]
        token = CSRF_FIELD.search(proctor.get("/staff/login").get_data(as_text=True)).group(1)
        costs["staff sign-in (scrypt)"] = cpu_ms(lambda i: proctor.post("/staff/login", data={
            "csrf_token": token, "username": account["username"], "password": account["password"]}), 3)
        costs["GET /proctor/board/live"] = cpu_ms(
            lambda i: proctor.get(f"/proctor/board/live?slot={account['slot_id']}"), 30)
        prototype = measure_prototype(url, seats, pages, n)
        costs["POST /api/sitting/finish (scores the sitting)"] = cpu_ms(lambda i: seats[i].post(
            "/api/sitting/finish", json={}, headers=headers[i]), n)
    finally:
        drop_database(args.database)

    baseline = costs["baseline: GET /api/sitting/clock"]
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"PostgreSQL on loopback, {n} candidates; CPU of this process per request")
    for name, ms in costs.items():
        print(f"  {name:76s} {ms:7.2f} ms  {ms / baseline:6.1f}x")
    today = (costs["start: POST /start"] + costs["the sitting page: GET /sitting"]
             + costs["GET /api/sitting/questions (prepared at login)"])
    print(f"  {'start + sitting page + questions':76s} {today:7.2f} ms  {today / baseline:6.1f}x   (target: under 3x)")
    print("prototype of the prepared start (this script's routes; the product's views unchanged):")
    for name, ms in prototype.items():
        print(f"  {name:76s} {ms:7.2f} ms  {ms / baseline:6.1f}x")
    fast = prototype["prototype start: one UPDATE, redirect to the static page"] + prototype[
        "prototype questions: the stored gzip payload, one read"]
    print(f"  {'prototype: start + questions (the sitting page from nginx)':76s} {fast:7.2f} ms  {fast / baseline:6.1f}x"
          f"   (target: under 3x)")
    print(f"  payload: {prototype_sizes['json']:,} bytes of JSON, {prototype_sizes['gzip']:,} gzip-compressed")
    lean = prototype["lean answer save: token header, no session cookie, no flask-wtf"]
    today_save = costs["PUT /api/sitting/answers/<n>"]
    print(f"  answer save: {today_save:.2f} ms today, {lean:.2f} ms on the lean path ({lean / today_save:.2f} of it)")


PAYLOADS = "CREATE TABLE IF NOT EXISTS prototype_payloads (sitting_id integer PRIMARY KEY, body bytea NOT NULL)"
# The start as one statement: status, start, deadline (a late start deducted from the time left), position.
FLIP = """UPDATE sittings s SET status = 'in_progress', started_at = %(now)s, current_position = 1,
  deadline_at = %(now)s + make_interval(secs => GREATEST(0, s.remaining_seconds
                                          - GREATEST(0, EXTRACT(EPOCH FROM (%(now)s - sl.starts_at))))),
  remaining_seconds = NULL
FROM bookings b JOIN slots sl ON sl.id = b.slot_id
WHERE s.id = %(id)s AND s.login_token_hash = %(hash)s AND s.status = 'waiting' AND b.id = s.booking_id
  AND sl.starts_at <= %(now)s"""
READ = """SELECT p.body FROM prototype_payloads p JOIN sittings s ON s.id = p.sitting_id
WHERE s.id = %(id)s AND s.login_token_hash = %(hash)s AND s.status IN ('in_progress', 'paused')"""
prototype_sizes: dict[str, int] = {}


def _driver(statement: str, params: dict, fetch: bool):
    """One statement in autocommit on a pooled driver connection, as delivery.answers does."""
    from delivery.web.context import resources

    connection = resources().engine.raw_connection()
    try:
        driver = connection.driver_connection
        driver.autocommit = True
        cursor = driver.cursor()
        cursor.execute(statement, params)
        return cursor.fetchone() if fetch else cursor.rowcount
    finally:
        driver.autocommit = False
        connection.close()


def prototype_blueprint():
    from flask import Blueprint, Response, abort, redirect, request

    from delivery.sittings import token_hash
    from delivery.web import csrf
    from delivery.web.auth import candidate_credentials
    from delivery.web.context import answers, now

    blueprint = Blueprint("prototype", __name__)

    @blueprint.post("/prototype/start")
    def start():
        sitting_id, token = candidate_credentials()
        if request.form.get("agree") != "yes":
            abort(422)
        if _driver(FLIP, {"id": sitting_id, "hash": token_hash(token), "now": now()}, fetch=False) != 1:
            abort(409)
        return redirect("/static/sitting.html")  # the page, static: nginx serves it and may cache it

    @blueprint.put("/prototype/api/sitting/answers/<int:position>")
    def lean_save(position: int):
        # The lean path: no session cookie (none is sent), no flask-wtf check; the seat's token in a
        # header a cross-site form cannot set, checked by the save statement itself.
        sitting_id, _, token = request.headers.get("X-Sitting-Token", "").partition(".")
        body = request.get_json(silent=True) or {}
        option = body.get("option")
        if not sitting_id.isdigit() or type(option) is not int or not 1 <= position <= 100:
            abort(422)
        if not answers().save_answer(int(sitting_id), token_hash(token), position, option, now()):
            abort(409)
        return Response(b'{"saved": true}', content_type="application/json")

    csrf.exempt(lean_save)

    @blueprint.get("/prototype/api/sitting")
    def questions():
        sitting_id, token = candidate_credentials()
        row = _driver(READ, {"id": sitting_id, "hash": token_hash(token)}, fetch=True)
        if row is None:
            abort(404)
        return Response(bytes(row[0]), headers={"Content-Type": "application/json", "Content-Encoding": "gzip",
                                                "Vary": "Accept-Encoding"})

    return blueprint


def measure_prototype(url: str, seats, pages, n: int) -> dict[str, float]:
    """Prepare every seat's payload (as at check-in), put the sittings back to waiting, then start
    them the prototype's way and read the payload."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        db.execute(PAYLOADS)
        sitting_ids = [row[0] for row in db.execute("SELECT id FROM sittings ORDER BY id")]

    store = psycopg.connect(url, autocommit=True)

    def prepare(i):
        # At check-in: the render that GET /api/sitting does today, once, compressed and stored.
        body = seats[i].get("/api/sitting").get_data()
        packed = gzip.compress(body, compresslevel=6)
        prototype_sizes.update(json=len(body), gzip=len(packed))
        store.execute("INSERT INTO prototype_payloads VALUES (%s, %s) ON CONFLICT (sitting_id) DO UPDATE "
                      "SET body = excluded.body", (json.loads(body)["sitting_key"], packed))

    costs = {"prototype check-in extra: render, gzip, store the payload (moved out of the start)": cpu_ms(prepare, n)}
    store.close()
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("UPDATE sittings SET status = 'waiting', started_at = NULL, deadline_at = NULL, "
                   "remaining_seconds = 7200 WHERE id = ANY(%s)", (sitting_ids,))

    def start(i):
        response = seats[i].post("/prototype/start", data={"csrf_token": CSRF_FIELD.search(pages[i]).group(1),
                                                           "agree": "yes"})
        assert response.status_code == 302, response.status_code

    costs["prototype start: one UPDATE, redirect to the static page"] = cpu_ms(start, n)

    def questions(i):
        response = seats[i % n].get("/prototype/api/sitting")
        assert response.status_code == 200, response.status_code

    costs["prototype questions: the stored gzip payload, one read"] = cpu_ms(questions, n)

    # The answer save both ways, now, on the same sittings: today's route, and the lean one from a
    # browser that sends no session cookie on it (a cookie scoped to the pages, not the API).
    app = seats[0].application
    serializer = app.session_interface.get_signing_serializer(app)
    lean = app.test_client()
    tokens = []
    for seat in seats:
        signed = serializer.loads(seat.get_cookie(app.config["SESSION_COOKIE_NAME"]).value)
        tokens.append({"X-Sitting-Token": f"{signed['sitting_id']}.{signed['token']}"})

    def lean_save(i):
        response = lean.put(f"/prototype/api/sitting/answers/{i % 100 + 1}", json={"option": i % 4},
                            headers=tokens[i % n])
        assert response.status_code == 200, response.status_code

    costs["lean answer save: token header, no session cookie, no flask-wtf"] = cpu_ms(lean_save, 5 * n)
    return costs


if __name__ == "__main__":
    main()
