"""Users who behave like the real ones, for ``python -m loadtests.run`` (which sets the
environment below and reads the request log this writes).

- Candidates log in during check-in, wait on the instructions page, click Start at the
  slot's minute (within a reaction time), then answer the 100 questions with think time
  as the page does it: each answer saved, the position saved on every move, some
  questions marked, some answers changed on review, the clock read every few seconds;
  then finish and read the score.
- Proctors sign in and keep their centre's live board open (it refreshes every few seconds).
- Applicants in a booking rush sign in, look for a slot and book it.

Environment: LOAD_POPULATION (the JSON from loadtests.population), LOAD_HOSTS (base URLs,
comma-separated, each user keeps to one; loadtests.run gives one, the stack's nginx, which
balances over the instances without stickiness), LOAD_MODE
("sitting", or "save": answer saves without pause), LOAD_BASELINE (1: the same requests
to the bare baseline, nothing parsed from its answers), LOAD_START_AT (epoch seconds of the slot's start), LOAD_LOGIN_WINDOW,
LOAD_REACTION, LOAD_THINK (mean seconds per question), LOAD_CLOCK_POLL, LOAD_BOARD_POLL,
LOAD_REQUEST_LOG (where to write every request: start time, name, ms, failed).
"""
from __future__ import annotations

import itertools
import json
import os
import random
import re
import time

import gevent
from locust import FastHttpUser, events, task
from locust.exception import StopUser

from loadtests.stack import CSRF_FIELD, CSRF_META

MODE = os.environ.get("LOAD_MODE", "sitting")
# Against the bare baseline: the same requests, nothing read from the answers.
BASELINE = os.environ.get("LOAD_BASELINE") == "1"
HOSTS = os.environ.get("LOAD_HOSTS", "http://127.0.0.1:8101").split(",")
POPULATION = json.loads(open(os.environ["LOAD_POPULATION"]).read()) if os.environ.get("LOAD_POPULATION") else {}
START_AT = float(os.environ.get("LOAD_START_AT", "0"))
LOGIN_WINDOW = float(os.environ.get("LOAD_LOGIN_WINDOW", "60"))
REACTION = float(os.environ.get("LOAD_REACTION", "20"))
THINK = float(os.environ.get("LOAD_THINK", "3"))
CLOCK_POLL = float(os.environ.get("LOAD_CLOCK_POLL", "15"))
BOARD_POLL = float(os.environ.get("LOAD_BOARD_POLL", "5"))
RUSH_AFTER = float(os.environ.get("LOAD_RUSH_AFTER", "0"))
QUESTIONS = 100
OPTIONS = 4

_log: list[tuple[float, str, float, int]] = []


@events.request.add_listener
def _record(request_type, name, response_time, response_length, exception=None, start_time=None, **_):
    _log.append((start_time or time.time(), name, response_time, 1 if exception else 0))


@events.quitting.add_listener
def _write_log(environment, **_):
    path = os.environ.get("LOAD_REQUEST_LOG")
    if path:
        with open(path, "w") as out:
            for row in _log:
                out.write("%.4f\t%s\t%.2f\t%d\n" % row)


def _sleep_until(moment: float) -> None:
    delay = moment - time.time()
    if delay > 0:
        gevent.sleep(delay)


def _token(pattern: re.Pattern, text: str) -> str:
    found = pattern.search(text or "")
    if not found:
        raise RuntimeError("no CSRF token on the page")
    return found.group(1)


class Person(FastHttpUser):
    """A user of the population (``people``: its key in the JSON), kept to one host."""

    abstract = True
    people = ""
    host = HOSTS[0]
    connection_timeout = 60.0
    network_timeout = 60.0
    # As a browser sends it: over HTTPS (loadtests.run --tls) the CSRF check wants a Referer of the site.
    default_headers = {"Referer": HOSTS[0] + "/"}

    def __init__(self, environment):
        number = next(self.numbers)
        self.host = HOSTS[number % len(HOSTS)]
        super().__init__(environment)
        everyone = POPULATION.get(self.people) or [{}]
        self.person = everyone[number % len(everyone)]


class Candidate(Person):
    """One candidate at a seat, from login to score."""

    people, numbers = "candidates", itertools.count()
    fixed_count = int(os.environ.get("LOAD_CANDIDATES", "0"))

    def __init__(self, environment):
        super().__init__(environment)
        self.json_headers = {}
        self.answers: dict[int, int] = {}

    def on_start(self):
        if BASELINE:
            return
        _sleep_until(time.time() + random.uniform(0, LOGIN_WINDOW) if MODE == "sitting" else 0)
        if self.person.get("seat_cookie"):
            # The seat's PC, enrolled by the centre's proctor: it carries the seat cookie.
            self.client.cookies.set("cbt_seat", self.person["seat_cookie"])
        page = self.client.get("/", name="GET / (login form)")
        login = self.client.post("/login", name="POST /login", data={
            "csrf_token": _token(CSRF_FIELD, page.text), "admission_code": self.person["admission_code"],
            "date_of_birth": self.person["date_of_birth"]})
        if login.status_code != 200:
            raise StopUser()
        if MODE == "save":
            if "/instructions" in (login.url or ""):  # not started in the sitting run
                login = self.client.post("/start", name="POST /start (to the sitting page)", data={
                    "csrf_token": _token(CSRF_FIELD, login.text), "agree": "yes"})
            self.json_headers = {"X-CSRFToken": _token(CSRF_META, login.text)}
            return
        _sleep_until(START_AT + random.uniform(0, REACTION))
        clicked = time.time()
        with self.client.post("/start", name="POST /start (to the sitting page)", catch_response=True, data={
                "csrf_token": _token(CSRF_FIELD, login.text), "agree": "yes"}) as started:
            if "/sitting" not in (started.url or ""):
                started.failure(f"Start did not open the sitting (at {started.url})")
                raise StopUser()
        self.json_headers = {"X-CSRFToken": _token(CSRF_META, started.text)}
        with self.client.get("/api/sitting", name="GET /api/sitting", catch_response=True) as state:
            if state.status_code != 200 or len(state.json().get("items", [])) != QUESTIONS:
                state.failure("the sitting did not arrive with its questions")
                raise StopUser()
        events.request.fire(request_type="START", name="start: click to first question", response_time=(
            time.time() - clicked) * 1000.0, response_length=0, exception=None, context={}, start_time=clicked)
        gevent.spawn(self._poll_clock)

    def _put(self, path: str, body: dict, name: str):
        return self.client.put(path, json=body, headers=self.json_headers, name=name)

    def _poll_clock(self):
        gevent.sleep(random.uniform(0, CLOCK_POLL))
        while True:
            self.client.get("/api/sitting/clock", name="GET /api/sitting/clock")
            gevent.sleep(CLOCK_POLL)

    def _think(self):
        if MODE != "save":
            gevent.sleep(random.expovariate(1.0 / THINK))

    @task
    def sit(self):
        if MODE == "save":
            while True:
                self._put(f"/api/sitting/answers/{random.randint(1, QUESTIONS)}",
                          {"option": random.randrange(OPTIONS)}, "PUT /api/sitting/answers/[n]")
        if BASELINE:
            _sleep_until(START_AT + random.uniform(0, REACTION))
            gevent.spawn(self._poll_clock)
        marked = []
        for position in range(1, QUESTIONS + 1):
            self._think()
            option = random.randrange(OPTIONS)
            self._put(f"/api/sitting/answers/{position}", {"option": option}, "PUT /api/sitting/answers/[n]")
            self.answers[position] = option
            if random.random() < 0.1:
                self._put(f"/api/sitting/marks/{position}", {"marked": True}, "PUT /api/sitting/marks/[n]")
                marked.append(position)
            if position < QUESTIONS:
                self._put("/api/sitting/position", {"position": position + 1}, "PUT /api/sitting/position")
        # Review: back to the marked questions, change some answers, clear the marks.
        self.client.get("/api/sitting", name="GET /api/sitting (review)")
        for position in marked:
            self._think()
            self._put("/api/sitting/position", {"position": position}, "PUT /api/sitting/position")
            if random.random() < 0.5:
                self._put(f"/api/sitting/answers/{position}", {"option": (self.answers[position] + 1) % OPTIONS},
                          "PUT /api/sitting/answers/[n]")
            self._put(f"/api/sitting/marks/{position}", {"marked": False}, "PUT /api/sitting/marks/[n]")
        self.client.post("/api/sitting/finish", json={}, headers=self.json_headers, name="POST /api/sitting/finish")
        self.client.get("/result", name="GET /result")
        raise StopUser()


class Proctor(Person):
    """A proctor with the centre's live board open."""

    people, numbers = "proctors", itertools.count()
    fixed_count = int(os.environ.get("LOAD_PROCTORS", "0"))

    def on_start(self):
        # Proctors sign in during the check-in window, as the candidates log in.
        gevent.sleep(random.uniform(0, LOGIN_WINDOW if MODE == "sitting" and not BASELINE else BOARD_POLL))
        if BASELINE:
            return
        page = self.client.get("/staff/login", name="GET /staff/login")
        self.client.post("/staff/login", name="POST /staff/login", data={
            "csrf_token": _token(CSRF_FIELD, page.text), "username": self.person["username"],
            "password": self.person["password"]})

    @task
    def watch(self):
        self.client.get(f"/proctor/board/live?slot={self.person.get('slot_id', 0)}", name="GET /proctor/board/live")
        gevent.sleep(BOARD_POLL)


class Applicant(Person):
    """An applicant in a booking rush: sign in, find a slot, book it."""

    people, numbers = "applicants", itertools.count()
    fixed_count = int(os.environ.get("LOAD_APPLICANTS", "0"))

    def __init__(self, environment):
        super().__init__(environment)
        self.slot_id = random.choice(POPULATION["booking_slot_ids"]) if POPULATION else 0

    @task
    def book(self):
        _sleep_until(START_AT + RUSH_AFTER + random.uniform(0, 60))
        page = self.client.get("/booking/sign-in", name="GET /booking/sign-in")
        if not BASELINE:
            page = self.client.post("/booking/sign-in", name="POST /booking/sign-in", data={
                "csrf_token": _token(CSRF_FIELD, page.text), "email": self.person["email"],
                "password": self.person["password"], "next": "/booking/find"})
        found = self.client.get("/booking/find", name="GET /booking/find")
        token = _token(CSRF_FIELD, found.text) if not BASELINE else ""
        with self.client.post("/booking/book", name="POST /booking/book", catch_response=True,
                              data={"csrf_token": token, "slot_id": self.slot_id}) as booked:
            if not BASELINE and "/slip" not in (booked.url or ""):
                booked.failure("the booking was refused")
        raise StopUser()
