"""Sign-ins that end when they should: a copy of the session cookie taken before the end does not
outlive it, for staff, applicants and candidates at the seat; idle and absolute timeouts."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from centers import candidates
from centers.accounts import create_staff
from centers.models import SignIn
from delivery.cli import main
from persistence.audit import AuditEvent
from tests.centre_helpers import frozen_clock
from tests.helpers import api, booked_candidate, csrf_token, login_candidate, login_staff, start_sitting

PASSWORD = "a-long-staff-password"


@pytest.fixture
def clock():
    return frozen_clock()


@pytest.fixture
def cbt(engine, monkeypatch):
    monkeypatch.setenv("CBT_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    runner = CliRunner()

    def run(*args: str):
        result = runner.invoke(main, list(args), catch_exceptions=False)
        return result.exit_code, result.output

    return run


def copy_of(app, client):
    """Another browser holding a copy of ``client``'s session cookie."""
    other = app.test_client()
    other.set_cookie("session", client.get_cookie("session").value)
    return other


def psychometrician(session) -> str:
    name = f"psy-{uuid.uuid4().hex[:8]}"
    create_staff(session, username=name, display_name="Session Test", password=PASSWORD, role="psychometrician")
    session.commit()
    return name


def signed_in(app, username: str):
    client = app.test_client()
    assert login_staff(client, username, PASSWORD).status_code == 302
    assert client.get("/bank/").status_code == 200
    return client


def to_login(response) -> bool:
    return response.status_code == 302 and response.headers["Location"].startswith("/staff/login")


def test_a_copy_of_a_staff_cookie_ends_with_the_logout(app, session):
    user = signed_in(app, psychometrician(session))
    stolen = copy_of(app, user)
    assert stolen.get("/bank/").status_code == 200
    user.post("/staff/logout", data={"csrf_token": csrf_token(user, "/bank/")})
    assert to_login(stolen.get("/bank/")) and to_login(user.get("/bank/"))


def test_a_new_password_and_a_closed_account_end_every_sign_in(app, session, cbt):
    name = psychometrician(session)
    office, home = signed_in(app, name), signed_in(app, name)
    stolen = copy_of(app, office)
    code, output = cbt("staff", "password", name, "--password", "another-long-password", "--reason", "leaked",
                       "--by", "ops")
    assert code == 0 and "2 sign-in(s) ended" in output
    assert all(to_login(browser.get("/bank/")) for browser in (office, home, stolen))
    assert login_staff(app.test_client(), name, PASSWORD).status_code == 401
    again = app.test_client()
    assert login_staff(again, name, "another-long-password").status_code == 302

    code, output = cbt("staff", "close", name, "--reason", "left the team", "--by", "ops")
    assert code == 0 and "1 sign-in(s) ended" in output
    assert to_login(again.get("/bank/"))
    assert login_staff(app.test_client(), name, "another-long-password").status_code == 401
    assert cbt("staff", "reopen", name, "--reason", "back", "--by", "ops")[0] == 0
    assert login_staff(app.test_client(), name, "another-long-password").status_code == 302
    actions = session.scalars(select(AuditEvent.action).where(AuditEvent.subject == f"staff:{name}")
                              .order_by(AuditEvent.id)).all()
    assert [a for a in actions if not a.startswith("staff.sign_")] == [
        "staff.password_changed", "staff.closed", "staff.reopened"]


def test_a_copy_of_an_applicant_cookie_ends_with_the_sign_out_and_a_new_password(app, session, clock):
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    browser = app.test_client()
    response = browser.post("/booking/register", data={
        "csrf_token": csrf_token(browser, "/booking/register"), "name": "Session Applicant",
        "date_of_birth": "1990-01-01", "email": email, "password": "applicant-password", "occupation": "student"})
    assert response.status_code == 302
    stolen = copy_of(app, browser)
    assert stolen.get("/booking/").status_code == 200
    browser.post("/booking/sign-out", data={"csrf_token": csrf_token(browser, "/booking/sign-in")})
    assert stolen.get("/booking/").headers["Location"].startswith("/booking/sign-in")

    phone, laptop = app.test_client(), app.test_client()
    for client in (phone, laptop):
        assert client.post("/booking/sign-in", data={"csrf_token": csrf_token(client, "/booking/sign-in"),
                                                     "email": email, "password": "applicant-password"}
                           ).status_code == 302
    person = candidates.authenticate(session, email, "applicant-password")
    candidates.change_password(session, person.id, "applicant-password", "a-new-applicant-password", now=clock.now)
    assert phone.get("/booking/").headers["Location"].startswith("/booking/sign-in")
    assert laptop.get("/booking/").headers["Location"].startswith("/booking/sign-in")


def test_the_seat_s_sign_in_ends_with_logout_a_new_login_and_the_end_of_the_sitting(app, session, program, clock):
    booked = booked_candidate(session, program, clock.now)
    seat = app.test_client()
    login_candidate(seat, booked)
    stolen = copy_of(app, seat)
    assert api(stolen, "GET", "/api/sitting").status_code == 200
    seat.post("/logout", data={"csrf_token": csrf_token(seat)})
    assert api(stolen, "GET", "/api/sitting").status_code == 401

    # A new login at another seat: the first seat's copies end.
    first = app.test_client()
    login_candidate(first, booked)
    start_sitting(first)
    stolen = copy_of(app, first)
    second = app.test_client()
    login_candidate(second, booked)
    assert api(stolen, "GET", "/api/sitting").status_code == 401
    assert api(first, "GET", "/api/sitting").status_code == 401

    # The end of the sitting: the seat that finished sees its score, the copies do not.
    stolen = copy_of(app, second)
    assert api(second, "POST", "/api/sitting/finish", {}).status_code == 200
    assert second.get("/result").status_code == 200
    assert stolen.get("/result").status_code == 401
    assert api(stolen, "GET", "/api/sitting").status_code == 401


def test_idle_and_absolute_timeouts(app, session, clock):
    name = psychometrician(session)
    user = signed_in(app, name)
    for _ in range(3):  # in use: the idle timeout never comes
        clock.advance(minutes=50)
        assert user.get("/bank/").status_code == 200
    clock.advance(minutes=61)
    assert to_login(user.get("/bank/"))

    busy = signed_in(app, name)
    for _ in range(24):
        clock.advance(minutes=30)
        response = busy.get("/bank/")
    assert to_login(response)  # 12 hours after signing in, however busy
    # Timed-out sign-ins are gone from the table once pruned.
    from centers import sign_ins

    clock.advance(days=1)
    sign_ins.prune(session, clock.now, sign_ins.Timeouts(dt.timedelta(minutes=60), dt.timedelta(hours=12)))
    assert session.scalar(select(func.count()).select_from(SignIn).where(SignIn.seen_at <= clock.now
                                                                         - dt.timedelta(minutes=60))) == 0


def test_changing_one_s_own_password_on_the_web_ends_the_other_sign_ins(app, session, clock):
    name = psychometrician(session)
    here, there = signed_in(app, name), signed_in(app, name)
    page = here.get("/staff/password")
    assert page.status_code == 200 and 'autocomplete="new-password"' in page.get_data(as_text=True)
    token = csrf_token(here, "/staff/password")
    wrong = here.post("/staff/password", data={"csrf_token": token, "current_password": "not-it",
                                               "password": "a-new-long-password"})
    assert wrong.status_code == 422 and "not right" in wrong.get_data(as_text=True)
    short = here.post("/staff/password", data={"csrf_token": token, "current_password": PASSWORD, "password": "short"})
    assert short.status_code == 422
    done = here.post("/staff/password", data={"csrf_token": token, "current_password": PASSWORD,
                                              "password": "a-new-long-password"})
    assert done.status_code == 302 and done.headers["Location"] == "/bank/"
    assert here.get("/bank/").status_code == 200  # this browser goes on
    assert to_login(there.get("/bank/"))
    assert login_staff(app.test_client(), name, "a-new-long-password").status_code == 302

    email = f"{uuid.uuid4().hex[:10]}@example.com"
    applicant = app.test_client()
    applicant.post("/booking/register", data={
        "csrf_token": csrf_token(applicant, "/booking/register"), "name": "Password Applicant",
        "date_of_birth": "1990-01-01", "email": email, "password": "applicant-password", "occupation": "student"})
    elsewhere = app.test_client()
    elsewhere.post("/booking/sign-in", data={"csrf_token": csrf_token(elsewhere, "/booking/sign-in"), "email": email,
                                             "password": "applicant-password"})
    assert elsewhere.get("/booking/").status_code == 200
    changed = applicant.post("/booking/password", data={"csrf_token": csrf_token(applicant, "/booking/"),
                                                        "current_password": "applicant-password",
                                                        "password": "another-applicant-password"})
    assert changed.headers["Location"] == "/booking/"
    assert applicant.get("/booking/").status_code == 200
    assert elsewhere.get("/booking/").headers["Location"].startswith("/booking/sign-in")
