"""What each request of a sitting costs the server, in CPU time, through the Flask app.

Builds a PostgreSQL database of its own with the load run's population (loadtests.population),
then drives the app in process (test client, no network, no gunicorn) through a slot: the
check-in login (which assembles the form), the start, the questions, the clock, an answer,
a move, the proctor's sign-in and board. Prints each as CPU milliseconds per request and as a
ratio to the baseline: the clock poll, one primary-key read on the driver connection.
From these and a rate, the cores a scenario needs: see docs/loadtests.md.

Run: .venv/bin/python benchmarks/request_costs.py [--candidates 60]
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from loadtests.stack import (CSRF_FIELD, CSRF_META, drop_database, move_slot_start, prepare,  # noqa: E402
                             recreate_database)



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
        seats = [app.test_client() for _ in range(n)]
        pages, headers = {}, {}

        def log_in(i):
            person = population.candidates[i]
            token = CSRF_FIELD.search(seats[i].get("/").get_data(as_text=True)).group(1)
            pages[i] = seats[i].post("/login", follow_redirects=True, data={
                "csrf_token": token, "admission_code": person["admission_code"],
                "date_of_birth": person["date_of_birth"]}).get_data(as_text=True)

        def start(i):
            page = seats[i].post("/start", follow_redirects=True, data={
                "csrf_token": CSRF_FIELD.search(pages[i]).group(1), "agree": "yes"}).get_data(as_text=True)
            headers[i] = {"X-CSRFToken": CSRF_META.search(page).group(1)}

        costs = {"check-in login: GET /, POST /login, the instructions (assembles the form)": cpu_ms(log_in, n)}
        move_slot_start(url, dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1))
        costs["start: POST /start, the sitting page"] = cpu_ms(start, n)
        costs["GET /api/sitting (the 100 questions)"] = cpu_ms(lambda i: seats[i % n].get("/api/sitting"), n)
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
        costs["POST /api/sitting/finish (scores the sitting)"] = cpu_ms(lambda i: seats[i].post(
            "/api/sitting/finish", json={}, headers=headers[i]), n)
    finally:
        drop_database(args.database)

    baseline = costs["baseline: GET /api/sitting/clock"]
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"PostgreSQL on loopback, {n} candidates; CPU of this process per request")
    for name, ms in costs.items():
        print(f"  {name:76s} {ms:7.2f} ms  {ms / baseline:6.1f}x")


if __name__ == "__main__":
    main()
