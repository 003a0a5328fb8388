"""Expensive and odd requests: throttled sign-ins checked at most the limit's number of times
however many arrive at once, bounded password hashing, throttled registrations and sign-ins,
ids past the database's range, simultaneous finishes, the forms' length limits, added time."""
from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest
from sqlalchemy import func, select

from centers import calendar, passwords
from centers.accounts import create_staff
from centers.models import Booking, Slot
from delivery.models import Sitting
from delivery.throttle import Rule, ThrottlePolicy
from delivery.web import create_app
from scoring.models import ScoreResult
from tests.centre_helpers import applicant_browsers, frozen_clock
from tests.helpers import (
    api,
    booked_candidate,
    csrf_token,
    login_candidate,
    login_staff,
    new_centre,
    registered_candidate,
    start_sitting,
)
from tests.test_booking_concurrency import race

HUGE = "99999999999999999999"


@pytest.fixture
def clock():
    return frozen_clock()


def address() -> str:
    n = uuid.uuid4().int % (2 ** 16 - 2) + 1
    return f"198.19.{n >> 8}.{n & 255}"


def staff_account(session, role: str = "psychometrician") -> str:
    name = f"hard-{uuid.uuid4().hex[:8]}"
    create_staff(session, username=name, display_name="Hardening", password="right-password-1", role=role)
    session.commit()
    return name


@pytest.fixture
def hash_slots():
    """Restore the process's bound on password hashing after a test changes it."""
    yield passwords.set_slots
    passwords.set_slots(2)


def test_simultaneous_wrong_passwords_get_no_more_checks_than_the_limit(app, session, hash_slots):
    hash_slots(30)  # the bound on hashing (and on sign-ins under way) is not what this test is about
    name = staff_account(session)
    client_address = address()
    browsers = []
    for _ in range(30):
        browser = app.test_client()
        browser.environ_base["REMOTE_ADDR"] = client_address
        browsers.append((browser, csrf_token(browser, "/staff/login")))

    def attempt(n: int):
        browser, token = browsers[n]
        return browser.post("/staff/login", data={"csrf_token": token, "username": name, "password": "wrong-guess"})

    responses = race(30, attempt)
    statuses = sorted(r.status_code for r in responses)
    limit = ThrottlePolicy().pair.limit
    assert statuses == [401] * limit + [429] * (30 - limit)


def test_password_hashing_is_bounded_and_a_full_server_says_so_at_once(app, session, hash_slots):
    hash_slots(1)
    name = staff_account(session)
    browser = app.test_client()
    browser.environ_base["REMOTE_ADDR"] = address()
    token = csrf_token(browser, "/staff/login")
    held = passwords._semaphore()
    assert held.acquire(timeout=1)
    try:
        started = time.monotonic()
        busy = browser.post("/staff/login", data={"csrf_token": token, "username": name,
                                                  "password": "right-password-1"})
        waited = time.monotonic() - started
    finally:
        held.release()
    assert busy.status_code == 503 and busy.headers["Retry-After"] == str(passwords.RETRY_AFTER_SECONDS)
    assert waited < passwords.WAIT_SECONDS + 1.5
    assert "busy" in busy.get_data(as_text=True)
    # Nothing was counted against the account: it signs in at once.
    assert browser.post("/staff/login", data={"csrf_token": token, "username": name,
                                              "password": "right-password-1"}).status_code == 302


def test_a_sign_in_beyond_those_under_way_is_refused_before_it_touches_the_database(app, session, hash_slots):
    """A storm of sign-ins from one address must not hold the server's threads waiting on the
    throttle's row of that address: past the bound, a fast 503 that reads and locks nothing."""
    from delivery.throttle import LoginThrottle

    hash_slots(1)
    name = staff_account(session)
    browser = app.test_client()
    browser.environ_base["REMOTE_ADDR"] = address()
    token = csrf_token(browser, "/staff/login")
    rows = session.scalar(select(func.count()).select_from(LoginThrottle))
    with passwords.sign_in_gate():  # one sign-in under way in this process
        started = time.monotonic()
        busy = browser.post("/staff/login", data={"csrf_token": token, "username": name,
                                                  "password": "right-password-1"})
        waited = time.monotonic() - started
    assert busy.status_code == 503 and busy.headers["Retry-After"] == str(passwords.RETRY_AFTER_SECONDS)
    assert waited < passwords.WAIT_SECONDS
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(LoginThrottle)) == rows
    assert browser.post("/staff/login", data={"csrf_token": token, "username": name,
                                              "password": "right-password-1"}).status_code == 302


POLICY = ThrottlePolicy(signin=Rule(limit=3, window_seconds=600, block_seconds=120, max_block_seconds=120),
                        register=Rule(limit=2, window_seconds=600, block_seconds=300, max_block_seconds=300))


@pytest.fixture
def strict_app(engine, clock):
    return create_app({"ENGINE": engine, "SECRET_KEY": "test-secret", "TESTING": True, "CLOCK": clock,
                       "LOGIN_THROTTLE": POLICY})


def test_successful_sign_ins_and_registrations_are_throttled_per_client(strict_app, session, clock):
    name = staff_account(session)
    here = address()
    outcomes = []
    for _ in range(4):
        browser = strict_app.test_client()
        browser.environ_base["REMOTE_ADDR"] = here
        outcomes.append(login_staff(browser, name, "right-password-1").status_code)
    assert outcomes == [302, 302, 302, 429]
    elsewhere = strict_app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = address()
    assert login_staff(elsewhere, name, "right-password-1").status_code == 302

    registrations = []
    for n in range(3):
        browser = strict_app.test_client()
        browser.environ_base["REMOTE_ADDR"] = here
        registrations.append(browser.post("/booking/register", data={
            "csrf_token": csrf_token(browser, "/booking/register"), "name": f"Registrant {n}",
            "date_of_birth": "1990-01-01", "email": f"{uuid.uuid4().hex[:10]}@example.com",
            "password": "a-long-password", "occupation": "student"}))
    assert [r.status_code for r in registrations] == [302, 302, 429]
    assert registrations[-1].headers["Retry-After"] == "300"
    clock.advance(seconds=300)
    browser = strict_app.test_client()
    browser.environ_base["REMOTE_ADDR"] = here
    assert browser.post("/booking/register", data={
        "csrf_token": csrf_token(browser, "/booking/register"), "name": "Later", "date_of_birth": "1990-01-01",
        "email": f"{uuid.uuid4().hex[:10]}@example.com", "password": "a-long-password",
        "occupation": "student"}).status_code == 302


def test_ids_past_the_database_s_range_get_a_clear_4xx(app, session, program, clock):
    booked = booked_candidate(session, program, clock.now)
    proctor = app.test_client()
    login_staff(proctor, booked.proctor, booked.password)
    token = csrf_token(proctor, "/proctor/")
    for path, expected in [(f"/proctor/?slot={HUGE}", 404), (f"/proctor/board/live?slot={HUGE}", 404),
                           ("/proctor/?slot=-3", 422), ("/proctor/?slot=abc", 422),
                           (f"/proctor/bookings/{HUGE}", 404)]:
        assert proctor.get(path).status_code == expected, path
    for path, form in [(f"/proctor/bookings/{booked.booking_id}/check-in", {"seat_id": HUGE,
                                                                           "identity_verified": "yes"}),
                       ("/proctor/incidents", {"slot_id": HUGE, "kind": "other", "description": "x"}),
                       ("/proctor/incidents", {"booking_id": HUGE, "kind": "other", "description": "x"}),
                       (f"/proctor/bookings/{booked.booking_id}/move-seat", {"seat_id": HUGE, "reason": "x"})]:
        response = proctor.post(path, data={"csrf_token": token, **form})
        assert response.status_code in (404, 409, 422), (path, response.status_code)

    person = registered_candidate(session)
    session.commit()
    (browser, token), = applicant_browsers(app, session, person.id, 1, clock.now)
    for path in (f"/booking/find?centre={HUGE}", f"/booking/find?move={HUGE}", f"/booking/{HUGE}/slip"):
        assert browser.get(path).status_code == 404, path
    assert browser.get("/booking/find?centre=１２").status_code == 422  # full-width digits: not an id
    refused = browser.post("/booking/book", data={"csrf_token": token, "slot_id": HUGE})
    assert refused.status_code == 302 and "no such slot" in browser.get(refused.headers["Location"]).get_data(
        as_text=True)
    assert browser.post(f"/booking/{HUGE}/cancel", data={"csrf_token": token, "confirm": "yes"}).status_code == 404


def test_simultaneous_finishes_of_one_sitting_answer_alike(app, session, program, clock):
    booked = booked_candidate(session, program, clock.now)
    seat = app.test_client()
    login_candidate(seat, booked)
    start_sitting(seat)
    api(seat, "PUT", "/api/sitting/answers/1", {"option": 1})
    cookie = seat.get_cookie("session").value
    copies = []
    for _ in range(10):
        copy = app.test_client()
        copy.set_cookie("session", cookie)
        copies.append((copy, csrf_token(copy, "/sitting")))

    def attempt(n: int):
        copy, token = copies[n]
        return copy.post("/api/sitting/finish", json={}, headers={"X-CSRFToken": token})

    responses = race(10, attempt)
    assert [r.status_code for r in responses] == [200] * 10, [r.get_data(as_text=True) for r in responses]
    assert {r.get_data(as_text=True) for r in responses} == {responses[0].get_data(as_text=True)}
    assert responses[0].get_json() == {"status": "finished", "result_url": "/result"}
    sitting = session.scalar(select(Sitting).where(Sitting.booking_id == booked.booking_id))
    assert session.scalar(select(func.count(ScoreResult.id)).where(ScoreResult.sitting_id == sitting.id)) == 1
    # Exactly one of the ten carried the new token: that browser sees the score.
    assert sum(copy.get("/result").status_code == 200 for copy, _ in copies) == 1


def test_the_server_keeps_the_forms_length_limits(app, session, program, clock):
    browser = app.test_client()
    page = browser.get("/booking/register").get_data(as_text=True)
    assert 'maxlength="128"' in page and 'maxlength="256"' in page
    long_name = browser.post("/booking/register", data={
        "csrf_token": csrf_token(browser, "/booking/register"), "name": "山" * 129, "date_of_birth": "1990-01-01",
        "email": f"{uuid.uuid4().hex[:10]}@example.com", "password": "a-long-password", "occupation": "student"})
    assert long_name.status_code == 422 and "at most 128 characters" in long_name.get_data(as_text=True)

    booked = booked_candidate(session, program, clock.now)
    proctor = app.test_client()
    login_staff(proctor, booked.proctor, booked.password)
    token = csrf_token(proctor, "/proctor/")
    assert 'maxlength="1000"' in proctor.get("/proctor/").get_data(as_text=True)
    too_long = proctor.post("/proctor/incidents", data={"csrf_token": token, "kind": "other",
                                                        "booking_id": booked.booking_id, "description": "x" * 1001})
    assert too_long.status_code == 422
    assert proctor.post("/proctor/incidents", data={"csrf_token": token, "kind": "other", "booking_id":
                                                    booked.booking_id, "description": "x" * 1000}).status_code == 302
    login_candidate(app.test_client(), booked)
    assert proctor.post(f"/proctor/bookings/{booked.booking_id}/end",
                        data={"csrf_token": token, "reason": "y" * 501, "confirm": "yes"}).status_code == 422


def test_added_minutes_are_whole_and_capped_by_the_program(app, session, program, clock):
    booked = booked_candidate(session, program, clock.now)
    seat = app.test_client()
    login_candidate(seat, booked)
    start_sitting(seat)
    proctor = app.test_client()
    login_staff(proctor, booked.proctor, booked.password)
    token = csrf_token(proctor, "/proctor/")

    def add(minutes: str):
        return proctor.post(f"/proctor/bookings/{booked.booking_id}/add-time",
                            data={"csrf_token": token, "minutes": minutes, "reason": "PC failure"})

    for wrong in ("1.5", "0", "-5", "lots", "１０", HUGE):
        assert add(wrong).status_code == 422, wrong
    # The cap is the program file's [admission] max_added_minutes, not the sitting's length.
    cap = program.admission.max_added_minutes
    assert cap == 60 < program.duration_minutes
    assert add(str(cap - 20)).status_code == 302
    over = add("21")
    assert over.status_code == 422 and "20 are left" in over.get_data(as_text=True)
    assert add("20").status_code == 302
    assert api(seat, "GET", "/api/sitting/clock").get_json()["remaining_seconds"] == (120 + cap) * 60
    assert 'max="0"' in proctor.get(f"/proctor/bookings/{booked.booking_id}").get_data(as_text=True)


def test_the_booking_page_shows_what_the_service_allows(app, session, program, clock):
    """A booking out of moves shows none; one whose slot was closed shows the free move the service makes."""
    from centers import bookings
    from centers.accounts import Actor

    centre = new_centre(session)
    today = calendar.local_today(program, clock.now)
    calendar.extend_calendar(session, program, today + dt.timedelta(days=5), 10, [centre.id])
    slots = session.scalars(select(Slot).where(Slot.centre_id == centre.id).order_by(Slot.starts_at)).all()
    person = registered_candidate(session)
    session.commit()
    booking = bookings.reserve(session, program, slots[0].id, clock.now, candidate_id=person.id,
                               actor=Actor.candidate(person.id))
    booking.changes = program.booking.max_changes
    session.commit()
    (browser, token), = applicant_browsers(app, session, person.id, 1, clock.now)
    page = browser.get("/booking/").get_data(as_text=True)
    assert "Move this booking" not in page and "the most allowed" in page and "Cancel the booking" in page

    calendar.close(session, program, centre_ids=[centre.id], first=slots[0].date, last=slots[0].date, kind=None,
                   reason="Maintenance", actor=Actor.operations("ops"), now=clock.now)
    page = browser.get("/booking/").get_data(as_text=True)
    assert "Move this booking" in page and "slot was closed" in page and "0 moves left" in page
    moved = browser.post(f"/booking/{booking.id}/move", data={"csrf_token": token, "slot_id": slots[-1].id})
    assert moved.headers["Location"] == "/booking/"
    session.expire_all()
    moved_booking = session.get(Booking, booking.id)
    assert (moved_booking.slot_id, moved_booking.changes) == (slots[-1].id, program.booking.max_changes)


def test_guessing_the_current_password_on_the_change_page_is_throttled(app, session):
    name = staff_account(session)
    browser = app.test_client()
    browser.environ_base["REMOTE_ADDR"] = address()
    assert login_staff(browser, name, "right-password-1").status_code == 302
    token = csrf_token(browser, "/staff/password")
    guesses = [browser.post("/staff/password", data={"csrf_token": token, "current_password": f"guess-{n:04d}",
                                                     "password": "a-new-long-password"}).status_code
               for n in range(ThrottlePolicy().pair.limit + 1)]
    assert guesses == [422] * ThrottlePolicy().pair.limit + [429]
