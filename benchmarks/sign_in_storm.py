"""A sign-in storm against sitting candidates: 200 simultaneous sign-ins while 100 candidates save answers.

Real HTTP against one gunicorn instance with the production settings (delivery.web.gunicorn_config:
a worker per core, 8 threads each, CBT_PASSWORD_HASH_SLOTS=2 per process) on PostgreSQL, with the
load run's population (loadtests.stack.prepare: 100 candidates checked in at the enrolled PCs of
their seats, a proctor per centre, applicants). Three processes apart from the server, so that
no client's own GIL counts in another's latency:

- the savers: 100 candidates log in at their seats, start, then each saves an answer about once
  a second (random question, random option) until told to stop, recording every save's latency;
- the storm: 200 sign-ins released at the same instant by a barrier (100 proctors at
  /staff/login, 100 registered candidates at /booking/sign-in, each a real scrypt check); one
  refused with 503 (the hashing bound) waits its Retry-After and tries again, as a person would;
- this process: a baseline window of saves, then the storm, then the figures.

Prints, for the baseline and for the storm window (from the release until the last sign-in
succeeds), the saves' count, p50, p95, p99 and max in milliseconds, and the sign-ins' outcomes.
The target (issue 13): the answer save's p99 stays under 200 ms during the storm.

Run: .venv/bin/python benchmarks/sign_in_storm.py [--savers 100] [--sign-ins 200] [--baseline 15]
(PostgreSQL on 127.0.0.1:5432; a database cbt_sign_in_storm of its own, dropped at the end.)
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loadtests.stack import (  # noqa: E402
    CSRF_FIELD,
    CSRF_META,
    Server,
    drop_database,
    environment,
    move_slot_start,
    prepare,
    recreate_database,
)

PORT = 8191
SAVE_EVERY = 1.0  # seconds between one candidate's saves, on average


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def summary(latencies: list[float]) -> dict:
    return {"count": len(latencies), "p50": percentile(latencies, 50), "p95": percentile(latencies, 95),
            "p99": percentile(latencies, 99), "max": max(latencies) if latencies else float("nan")}


# ---- the savers ------------------------------------------------------------------------------

def _seat_session(base: str, person: dict):
    import requests

    seat = requests.Session()
    seat.cookies.set("cbt_seat", person["seat_cookie"])
    page = seat.get(base + "/").text
    login = seat.post(base + "/login", data={"csrf_token": CSRF_FIELD.search(page).group(1),
                                             "admission_code": person["admission_code"],
                                             "date_of_birth": person["date_of_birth"]})
    if "/instructions" not in login.url:
        raise RuntimeError(f"seat login failed: {login.status_code} {login.url} {login.text[:300]}")
    return seat, login.text


def savers(base: str, people: list[dict], database: str, ready, stop, out: Path, questions: int) -> None:
    logged_in = []
    lock = threading.Lock()

    def log_in(person):
        session, page = _seat_session(base, person)
        with lock:
            logged_in.append((session, page))

    threads = [threading.Thread(target=log_in, args=(p,)) for p in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if len(logged_in) != len(people):
        raise RuntimeError(f"only {len(logged_in)} of {len(people)} candidates logged in")
    move_slot_start(database, dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1))
    seats = []
    for session, page in logged_in:
        started = session.post(base + "/start", data={"csrf_token": CSRF_FIELD.search(page).group(1), "agree": "yes"})
        if "/sitting" not in started.url:
            raise RuntimeError(f"start failed: {started.status_code} {started.url}")
        seats.append((session, {"X-CSRFToken": CSRF_META.search(started.text).group(1)}))
    records: list[tuple[float, float, int]] = []

    def save_loop(session, headers, rng):
        time.sleep(rng.uniform(0, SAVE_EVERY))
        while not stop.is_set():
            position, option = rng.randint(1, questions), rng.randint(0, 3)
            began = time.time()
            response = session.put(f"{base}/api/sitting/answers/{position}", json={"option": option}, headers=headers)
            ms = (time.time() - began) * 1e3
            with lock:
                records.append((began, ms, response.status_code))
            time.sleep(max(0.0, rng.uniform(0.5, 1.5) * SAVE_EVERY - ms / 1e3))

    workers = [threading.Thread(target=save_loop, args=(s, h, random.Random(n))) for n, (s, h) in enumerate(seats)]
    for w in workers:
        w.start()
    ready.set()
    for w in workers:
        w.join()
    out.write_text(json.dumps(records))


# ---- the storm ---------------------------------------------------------------------------------

def storm(base: str, accounts: list[tuple[str, dict]], go, out: Path) -> None:
    import requests

    barrier = threading.Barrier(len(accounts))
    results: list[dict] = []
    lock = threading.Lock()

    def sign_in(kind: str, account: dict):
        client = requests.Session()
        path, fields = (("/staff/login", {"username": account["username"], "password": account["password"]})
                        if kind == "staff" else
                        ("/booking/sign-in", {"email": account["email"], "password": account["password"]}))
        token = CSRF_FIELD.search(client.get(base + path).text).group(1)
        barrier.wait()
        go.wait()
        first = began = time.time()
        busy = 0
        while True:
            response = client.post(base + path, data={"csrf_token": token, **fields}, allow_redirects=False)
            if response.status_code == 503 and time.time() - first < 120:
                busy += 1
                time.sleep(float(response.headers.get("Retry-After", "1")))
                began = time.time()
                continue
            break
        with lock:
            results.append({"kind": kind, "status": response.status_code, "busy": busy, "first": first,
                            "done": time.time(), "last_ms": (time.time() - began) * 1e3})

    threads = [threading.Thread(target=sign_in, args=a) for a in accounts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.write_text(json.dumps(results))


# ---- the run ---------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--savers", type=int, default=100)
    parser.add_argument("--sign-ins", type=int, default=200)
    parser.add_argument("--baseline", type=float, default=15.0, help="seconds of saves before the storm")
    parser.add_argument("--database", default="cbt_sign_in_storm")
    args = parser.parse_args()
    staff_count = args.sign_ins // 2
    url = recreate_database(args.database)
    var_dir = Path(tempfile.mkdtemp(prefix="cbt-storm-"))
    server = None
    try:
        population = prepare(url, var_dir, candidates=args.savers, applicants=args.sign_ins - staff_count,
                             slot_starts_at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=10))
        proctors = population.proctors
        staff = [("staff", proctors[n % len(proctors)]) for n in range(staff_count)]
        accounts = staff + [("applicant", a) for a in population.applicants]
        env = environment(url, var_dir, CBT_LOG_LEVEL="warning", CBT_BIND=f"127.0.0.1:{PORT}")
        server = Server("storm", PORT, env, log_dir=var_dir / "logs")
        server.start()
        from itembank.program import load_program

        questions = load_program().items_per_sitting
        context = mp.get_context("fork")
        ready, stop, go = context.Event(), context.Event(), context.Event()
        saves_file, storm_file = var_dir / "saves.json", var_dir / "storm.json"
        saver = context.Process(target=savers, args=(server.url, population.candidates, url, ready, stop, saves_file,
                                                     questions))
        saver.start()
        if not ready.wait(300):
            raise RuntimeError("the savers did not get going")
        stormer = context.Process(target=storm, args=(server.url, accounts, go, storm_file))
        stormer.start()
        baseline_from = time.time()
        time.sleep(args.baseline)
        released = time.time()
        go.set()
        stormer.join()
        time.sleep(2.0)
        stop.set()
        saver.join()
        saves = json.loads(saves_file.read_text())
        sign_ins = json.loads(storm_file.read_text())
    finally:
        if server is not None:
            server.stop()
        drop_database(args.database)
    storm_end = max(s["done"] for s in sign_ins)
    before = [ms for at, ms, _ in saves if baseline_from + 1 <= at < released]
    during = [ms for at, ms, _ in saves if released <= at <= storm_end]
    failed = [code for at, _, code in saves if code != 200]
    outcomes: dict[str, int] = {}
    for s in sign_ins:
        key = f"{s['kind']} {s['status']}"
        outcomes[key] = outcomes.get(key, 0) + 1
    print(f"machine: {platform.node()}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"{args.savers} candidates saving about once a second; {len(sign_ins)} sign-ins released at once "
          f"({staff_count} staff, {len(sign_ins) - staff_count} applicants)")
    for name, values in (("baseline", before), ("storm", during)):
        figures = summary(values)
        print(f"  answer saves, {name:8}: {figures['count']:5d} saves, p50 {figures['p50']:7.1f} ms, "
              f"p95 {figures['p95']:7.1f} ms, p99 {figures['p99']:7.1f} ms, max {figures['max']:7.1f} ms")
    print(f"  saves that failed: {len(failed)} {sorted(set(failed))}")
    print(f"  storm: last sign-in done {storm_end - released:.1f} s after the release; outcomes {outcomes}; "
          f"503 busy answers retried: {sum(s['busy'] for s in sign_ins)}")
    p99 = summary(during)["p99"]
    print(f"  target p99 < 200 ms during the storm: {'met' if p99 < 200 else 'NOT met'} ({p99:.1f} ms)")


if __name__ == "__main__":
    main()
