"""Faults mid-load, and proof that no acknowledged answer is lost: ``python -m loadtests.faults``.

Candidates sit behind the stack's nginx (HTTPS, loadtests.stack) in front of two gunicorn
instances sharing PostgreSQL, saving answers as the page does: every answer is sent until
the server acknowledges it; a 502, 503, 504, a 429, a refused or cut connection or a timeout
is retried, anything else is a failure. Meanwhile the script

1. kills one worker with SIGKILL (its master starts another),
2. kills a whole instance (master and workers) with SIGKILL, then starts it again (nginx
   sends the requests to the other one),
3. restarts PostgreSQL,
4. opens 200 slow connections to nginx (half sending headers, half a body, a byte every
   half second: loadtests.slowclients) while the candidates go on: their requests must
   stay fast (p99 under 1 s) and none may fail. For comparison, 16 such connections then
   go to one gunicorn instance directly, with nobody sitting, and a probe tells how long
   that instance takes to answer meanwhile.

After each fault the clients hold still while every answer they saw acknowledged is
compared with the database, answer by answer; then every candidate logs in again (as at
a new seat) and must get the right remaining time and see their acknowledged answers.
Exits non-zero on any lost answer, wrong clock, non-retryable error or slow-client p99
over the limit. ``--short`` is the form CI runs.
"""
from __future__ import annotations

import argparse
import datetime as dt
import http.client
import http.cookiejar
import json
import random
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import psycopg

from loadtests.slowclients import SlowClients
from loadtests.stack import (
    CSRF_FIELD,
    CSRF_META,
    REPO,
    Stack,
    drop_database,
    move_slot_start,
    prepare,
    recreate_database,
    restart_postgresql,
)

RETRYABLE_STATUS = {429, 502, 503, 504}
# The slow-client scenario: the candidates' requests meanwhile, to the last acknowledgement.
SLOW_CLIENTS = 200
SLOW_P99_LIMIT_MS = 1000.0
SLOW_HEADER = ("| attack | connections held (opened, dropped by the server) | candidates' requests meanwhile | "
               "p50 ms | p99 ms | max ms | failed | result |\n|---|---|---:|---:|---:|---:|---:|---|")
# Allowed difference between the remaining time a candidate is shown and the time the clock
# started with minus the time since: request latency and the retries of a restart.
CLOCK_TOLERANCE_SECONDS = 3.0


HEADER = ("| scenario | fault | saves acknowledged (so far) | answers compared | lost | wrong clocks | "
          "answers not shown | retried (as the page does) | other errors | result |\n"
          "|---|---|---:|---:|---:|---:|---:|---|---:|---|")


class Refused(Exception):
    """A response the page would not retry."""


@dataclass
class Seat:
    """One candidate's browser: a cookie jar, the hosts it may reach, and its acknowledgement log."""

    person: dict
    hosts: list[str]
    host_index: int
    context: ssl.SSLContext | None = None
    opener: urllib.request.OpenerDirector = field(init=False)
    csrf: str = ""
    sitting_key: int | None = None
    clock_started: float = 0.0  # this machine's time.time() when the clock read ``remaining_at_start``
    remaining_at_start: float = 0.0
    acknowledged: dict[int, int] = field(default_factory=dict)  # position -> option the server confirmed
    acks: int = 0  # every acknowledgement, changes of an answer included
    retries: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    timings: list[tuple[float, float]] = field(default_factory=list)  # (started, ms to the final answer)

    def __post_init__(self):
        jar = http.cookiejar.CookieJar()
        if self.person.get("seat_cookie"):
            # The seat's PC, enrolled by the centre's proctor: it carries the seat cookie.
            for host in {urllib.parse.urlsplit(h).hostname for h in self.hosts}:
                jar.set_cookie(http.cookiejar.Cookie(
                    0, "cbt_seat", self.person["seat_cookie"], None, False, host, False, False, "/", True, False,
                    None, False, None, None, {}))
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar),
                                                  urllib.request.HTTPSHandler(context=self.context))

    @property
    def host(self) -> str:
        return self.hosts[self.host_index % len(self.hosts)]

    def request(self, method: str, path: str, *, form: dict | None = None, body: dict | None = None,
                deadline: float = 120.0) -> tuple[int, str, str]:
        """Send until a response the page would not retry; returns (status, final URL, text)."""
        started = time.time()
        try:
            return self._send(method, path, form=form, body=body, deadline=deadline)
        finally:
            self.timings.append((started, (time.time() - started) * 1e3))

    def _send(self, method: str, path: str, *, form: dict | None, body: dict | None,
              deadline: float) -> tuple[int, str, str]:
        give_up = time.monotonic() + deadline
        while True:
            headers = {"Accept": "application/json"} if body is not None else {}
            # As a browser does: over HTTPS the CSRF check wants the request to come from a page of the site.
            headers["Referer"] = self.host + "/"
            data = None
            if form is not None:
                data = urllib.parse.urlencode(form).encode()
            elif body is not None:
                data = json.dumps(body).encode()
                headers.update({"Content-Type": "application/json", "X-CSRFToken": self.csrf})
            request = urllib.request.Request(self.host + path, data=data, method=method, headers=headers)
            try:
                with self.opener.open(request, timeout=10) as response:
                    return response.status, response.url, response.read().decode()
            except urllib.error.HTTPError as error:
                text = error.read().decode(errors="replace")
                if error.code not in RETRYABLE_STATUS:
                    return error.code, error.url, text
                self.retries[f"HTTP {error.code}"] += 1
                if error.code == 503 and "error" not in text:
                    self.failures.append(f"{method} {path}: 503 without a message: {text[:200]}")
            except (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError, http.client.HTTPException) as error:
                reason = getattr(error, "reason", error)
                self.retries[type(reason).__name__] += 1
                self.host_index += 1  # that host does not answer: the balancer sends us to the other
            if time.monotonic() > give_up:
                raise Refused(f"{method} {path}: no answer within {deadline:.0f} s")
            time.sleep(random.uniform(0.2, 1.0))

    def log_in(self) -> str:
        status, _, page = self.request("GET", "/")
        status, url, page = self.request("POST", "/login", form={
            "csrf_token": CSRF_FIELD.search(page).group(1), "admission_code": self.person["admission_code"],
            "date_of_birth": self.person["date_of_birth"]})
        if status != 200:
            raise Refused(f"login: {status} {page[:200]}")
        if "/instructions" in url:
            status, url, page = self.request("POST", "/start", form={
                "csrf_token": CSRF_FIELD.search(page).group(1), "agree": "yes"})
        if "/sitting" not in url:
            raise Refused(f"login did not reach the sitting: {status} {url}")
        self.csrf = CSRF_META.search(page).group(1)
        return page

    def state(self) -> dict:
        status, _, text = self.request("GET", "/api/sitting")
        if status != 200:
            raise Refused(f"GET /api/sitting: {status} {text[:200]}")
        return json.loads(text)

    def start(self) -> None:
        self.log_in()
        asked = time.time()
        state = self.state()
        self.sitting_key = state["sitting_key"]
        self.clock_started, self.remaining_at_start = asked, state["remaining_seconds"]

    def save(self, position: int, option: int) -> None:
        status, _, text = self.request("PUT", f"/api/sitting/answers/{position}", body={"option": option})
        if status == 200 and json.loads(text).get("saved"):
            self.acknowledged[position] = option
            self.acks += 1
        else:
            self.failures.append(f"PUT answer {position}: {status} {text[:200]}")

    def expected_remaining(self) -> float:
        return self.remaining_at_start - (time.time() - self.clock_started)


class Clients:
    """Seats answering in threads until told to hold still."""

    def __init__(self, seats: list[Seat]):
        self.seats = seats
        self.running = threading.Event()
        self.stopping = threading.Event()
        self.idle = threading.Semaphore(0)
        self.threads = [threading.Thread(target=self._sit, args=(seat,), daemon=True) for seat in seats]

    def _sit(self, seat: Seat) -> None:
        while not self.stopping.is_set():
            if not self.running.is_set():
                self.idle.release()
                self.running.wait()
                continue
            try:
                seat.save(random.randint(1, 100), random.randrange(4))
            except Refused as refused:
                seat.failures.append(str(refused))
            time.sleep(random.uniform(0.05, 0.3))

    def go(self) -> None:
        self.running.set()
        for thread in self.threads:
            if not thread.is_alive():
                thread.start()

    def hold(self) -> None:
        """Let every seat finish the answer it is sending (until acknowledged), then wait."""
        self.running.clear()
        for _ in self.seats:
            self.idle.acquire()

    def stop(self) -> None:
        self.stopping.set()
        self.running.set()


def check(url: str, seats: list[Seat]) -> dict:
    """Every acknowledged answer against the database, then a fresh login's clock and answers."""
    keys = [s.sitting_key for s in seats]
    with psycopg.connect(url) as db:
        rows = db.execute("SELECT sitting_id, position, chosen_option FROM sitting_items WHERE sitting_id = ANY(%s)",
                          (keys,)).fetchall()
    stored = {(sitting, position): option for sitting, position, option in rows}
    lost = [(s.sitting_key, p, o, stored.get((s.sitting_key, p))) for s in seats for p, o in s.acknowledged.items()
            if stored.get((s.sitting_key, p)) != o]
    clock_errors, unseen = [], 0
    for seat in seats:
        seat.log_in()  # a new login, as at another seat: the old page is locked out
        expected = seat.expected_remaining()
        state = seat.state()
        if abs(state["remaining_seconds"] - expected) > CLOCK_TOLERANCE_SECONDS:
            clock_errors.append((seat.sitting_key, state["remaining_seconds"], expected))
        shown = {item["position"]: item["answer"] for item in state["items"]}
        unseen += sum(1 for p, o in seat.acknowledged.items() if shown.get(p) != o)
    return {"acknowledged": sum(s.acks for s in seats), "answers": sum(len(s.acknowledged) for s in seats), "lost": lost, "clock_errors": clock_errors,
            "not_shown": unseen}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=15.0, help="load before and after each fault (s)")
    parser.add_argument("--short", action="store_true", help="the CI form: 20 candidates, 4 s phases")
    parser.add_argument("--database", default="cbt_faults")
    parser.add_argument("--first-port", type=int, default=8111, help="the instances' ports: this one and the next")
    parser.add_argument("--http-port", type=int, default=8180, help="nginx's plain HTTP port (redirects)")
    parser.add_argument("--https-port", type=int, default=8543, help="nginx's HTTPS port")
    args = parser.parse_args(argv)
    if args.short:
        args.candidates, args.seconds = 20, 4.0

    out_dir = REPO / "var" / "faults"
    var_dir = out_dir / "var"
    url = recreate_database(args.database)
    population = prepare(url, var_dir, candidates=args.candidates,
                         slot_starts_at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1))
    stack = Stack(url, var_dir, out_dir, instances=2, first_port=args.first_port, http_port=args.http_port,
                  https_port=args.https_port, env={"CBT_WORKERS": "2", "CBT_THREADS": "4"})
    servers = stack.servers
    report, slow_report, ok = [], [], True
    clients = None
    try:
        stack.up()
        move_slot_start(url, dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1))
        context = stack.nginx.ssl_context()
        seats = [Seat(person, [stack.front], i, context) for i, person in enumerate(population.candidates)]
        for seat in seats:
            seat.start()
        clients = Clients(seats)

        def scenario(name: str, fault) -> None:
            nonlocal ok
            clients.go()
            time.sleep(args.seconds)
            before = Counter()
            for seat in seats:
                before.update(seat.retries)
            what = fault()
            time.sleep(args.seconds)
            clients.hold()
            result = check(url, seats)
            retried = Counter()
            for seat in seats:
                retried.update(seat.retries)
            retried.subtract(before)
            failures = [f for seat in seats for f in seat.failures]
            for seat in seats:
                seat.failures.clear()
            passed = not result["lost"] and not result["clock_errors"] and not result["not_shown"] and not failures
            ok = ok and passed
            retries = ", ".join(f"{k} x{v}" for k, v in sorted(retried.items()) if v > 0) or "none"
            report.append(f"| {name} | {what} | {result['acknowledged']} | {result['answers']} | {len(result['lost'])} | "
                          f"{len(result['clock_errors'])} | {result['not_shown']} | {retries} | "
                          f"{len(failures)} | {'pass' if passed else 'FAIL'} |")
            print(report[-1], flush=True)
            for line in failures[:10] + [str(x) for x in result["lost"][:10] + result["clock_errors"][:10]]:
                print("   ", line, flush=True)

        def kill_worker():
            return f"SIGKILL worker {servers[0].kill_worker()} of host1"

        def kill_server():
            servers[0].kill()
            time.sleep(args.seconds)
            servers[0].start()
            return "SIGKILL host1 (master and workers), restarted after the pause"

        def restart_database():
            restart_postgresql()
            return "PostgreSQL restarted (fast shutdown)"

        def slow_clients():
            """200 slow connections to nginx while the candidates go on; their requests timed."""
            nonlocal ok
            with SlowClients(stack.front, SLOW_CLIENTS, context=context) as attack:
                held_from = time.time()
                time.sleep(2 * args.seconds)
                held_until = time.time()
            ms = np.array([t for seat in seats for started, t in seat.timings if held_from <= started < held_until])
            failures = sum(len(seat.failures) for seat in seats)
            p99 = float(np.percentile(ms, 99)) if len(ms) else float("inf")
            passed = p99 < SLOW_P99_LIMIT_MS and failures == 0
            ok = ok and passed
            slow_report.append(
                f"| {SLOW_CLIENTS} slow connections to nginx, candidates saving | {attack.opened}, {attack.dropped} | "
                f"{len(ms)} | {np.percentile(ms, 50):.0f} | {p99:.0f} | {ms.max():.0f} | {failures} | "
                f"{'pass' if passed else 'FAIL'} (p99 < {SLOW_P99_LIMIT_MS:.0f} ms) |")
            return f"{SLOW_CLIENTS} slow connections to nginx for {2 * args.seconds:g} s (header and body, a byte per 0.5 s)"

        def slow_clients_direct():
            """For comparison, with nobody sitting: 16 slow connections to one instance, no nginx."""
            target = servers[1]
            probes = []
            with SlowClients(target.url, 16) as attack:
                until = time.monotonic() + args.seconds
                while time.monotonic() < until:
                    asked = time.monotonic()
                    try:
                        with urllib.request.urlopen(target.url + "/healthz", timeout=args.seconds):
                            pass
                    except (urllib.error.URLError, OSError):
                        pass
                    probes.append((time.monotonic() - asked) * 1e3)
                    time.sleep(0.2)
            ms = np.array(probes)
            slow_report.append(
                f"| for comparison: 16 slow connections to {target.name} directly (2 workers x 4 threads), nobody sitting "
                f"| {attack.opened}, {attack.dropped} | {len(ms)} probes of /healthz | {np.percentile(ms, 50):.0f} | "
                f"{np.percentile(ms, 99):.0f} | {ms.max():.0f} | - | (what nginx prevents) |")

        print(HEADER,
              flush=True)
        scenario("no fault", lambda: "none")
        scenario("worker killed", kill_worker)
        scenario("server killed", kill_server)
        scenario("database restarted", restart_database)
        scenario("slow clients", slow_clients)
        slow_clients_direct()
        print("\n" + SLOW_HEADER + "\n" + "\n".join(slow_report), flush=True)
    finally:
        if clients is not None:
            clients.stop()
        stack.down()
        drop_database(args.database)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"results-{dt.datetime.now():%Y%m%d-%H%M%S}.md").write_text(
        HEADER + "\n" + "\n".join(report) + "\n\n" + SLOW_HEADER + "\n" + "\n".join(slow_report) + "\n")
    print("all scenarios passed: no acknowledged answer lost" if ok else "FAILED", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
