"""What each request of a sitting costs the server, in CPU time, through the Flask app.

Builds a PostgreSQL database of its own with the load run's population (loadtests.population),
then drives the app in process (test client, no network, no gunicorn) through a slot: the
check-in login (which assembles the form), the start, the questions, the clock, an answer,
a move, the proctor's sign-in and board. Prints each as CPU milliseconds per request and as a
ratio to the baseline: the clock poll, one primary-key read on the driver connection.
From these and a rate, the cores a scenario needs: see docs/loadtests.md.

The questions are prepared at login (delivery.prepared): the start is two guarded statements,
the questions one stored row. Then a prototype of a lean answer save, in the same process and
database (a route of this script's own on the same app): the seat's token in a header, no
session cookie, no flask-wtf check.

Run: .venv/bin/python benchmarks/request_costs.py [--candidates 60]
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
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
        app.register_blueprint(lean_save_blueprint())
        seats = [app.test_client() for _ in range(n)]
        pages, headers = {}, {}

        def log_in(i):
            person = population.candidates[i]
            seats[i].set_cookie("cbt_seat", person["seat_cookie"])
            token = CSRF_FIELD.search(seats[i].get("/").get_data(as_text=True)).group(1)
            pages[i] = seats[i].post("/login", follow_redirects=True, data={
                "csrf_token": token, "admission_code": person["admission_code"],
                "date_of_birth": person["date_of_birth"]}).get_data(as_text=True)
            assert "agree" in pages[i], re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", pages[i]))[-600:]

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
        costs["GET /api/sitting (state: the answers so far)"] = cpu_ms(lambda i: seats[i % n].get("/api/sitting"), n)
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
        lean = measure_lean_save(seats, n)
        costs["POST /api/sitting/finish (scores the sitting)"] = cpu_ms(lambda i: seats[i].post(
            "/api/sitting/finish", json={}, headers=headers[i]), n)
    finally:
        drop_database(args.database)

    baseline = costs["baseline: GET /api/sitting/clock"]
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"PostgreSQL on loopback, {n} candidates; CPU of this process per request")
    for name, ms in costs.items():
        print(f"  {name:76s} {ms:7.2f} ms  {ms / baseline:6.1f}x")
    start = (costs["start: POST /start"] + costs["GET /api/sitting (state: the answers so far)"]
             + costs["GET /api/sitting/questions (prepared at login)"])
    print(f"  {'start + state + questions':76s} {start:7.2f} ms  {start / baseline:6.1f}x   (target: under 3x)")
    page = start + costs["the sitting page: GET /sitting"]
    print(f"  {'... and the sitting page from the app':76s} {page:7.2f} ms  {page / baseline:6.1f}x")
    today_save = costs["PUT /api/sitting/answers/<n>"]
    print(f"  answer save: {today_save:.2f} ms today, {lean:.2f} ms on a lean path: token header, no session "
          f"cookie, no flask-wtf ({lean / today_save:.2f} of it)")


def lean_save_blueprint():
    from flask import Blueprint, Response, abort, request

    from delivery.sittings import token_hash
    from delivery.web import csrf
    from delivery.web.context import answers, now

    blueprint = Blueprint("prototype", __name__)

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
    return blueprint


def measure_lean_save(seats, n: int) -> float:
    """CPU ms of an answer save on the lean route, by a browser that sends no session cookie on it."""
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

    return cpu_ms(lean_save, 5 * n)


if __name__ == "__main__":
    main()
