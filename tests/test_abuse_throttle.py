"""Login throttling at the three sign-ins, with its state in the database.

Each test uses a policy with small limits (the app setting LOGIN_THROTTLE) and its
own client addresses, so that tests do not count each other's failures.
"""
from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import select

from centers.accounts import create_staff
from centers.candidates import register
from delivery import throttle
from delivery.throttle import LoginThrottle, Rule, ThrottlePolicy
from delivery.web import create_app
from persistence.audit import AuditEvent, verify_chain
from tests.helpers import booked_candidate, enrol_browser

POLICY = ThrottlePolicy(
    pair=Rule(limit=3, window_seconds=600, block_seconds=60, max_block_seconds=240),
    account=Rule(limit=6, window_seconds=600, block_seconds=60, max_block_seconds=120),
    client=Rule(limit=10, window_seconds=600, block_seconds=300, max_block_seconds=300),
)


@pytest.fixture
def app(engine, clock):
    return create_app({"ENGINE": engine, "SECRET_KEY": "test-secret", "TESTING": True, "CLOCK": clock,
                       "LOGIN_THROTTLE": POLICY})


def address() -> str:
    """A client address no other test uses (an address blocked by one test must not meet the
    next): from 198.18.0.0/15 (reserved for benchmarks) or the IPv6 documentation prefix."""
    n = uuid.uuid4().int
    if n % 2:
        host = n % (2 ** 17 - 2) + 1
        return f"198.{18 + (host >> 16)}.{(host >> 8) & 255}.{host & 255}"
    return f"2001:db8:{n % 65535:x}:{(n >> 16) % 65535:x}::1"


class Browser:
    """A test client that always comes from one address."""

    def __init__(self, app, remote_addr: str | None = None):
        self.client = app.test_client()
        self.client.set_cookie("cbt_language", "en")  # an app built here: its client reads English by choice
        self.addr = remote_addr or address()

    def get(self, path):
        return self.client.get(path, environ_base={"REMOTE_ADDR": self.addr})

    def post(self, path, data, page):
        token = csrf_token_from(self, page)
        return self.client.post(path, data={"csrf_token": token, **data}, environ_base={"REMOTE_ADDR": self.addr})


def csrf_token_from(browser: Browser, page: str) -> str:
    import re

    html = browser.get(page).get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


@pytest.fixture
def staff(session):
    name = f"staff-{uuid.uuid4().hex[:8]}"
    create_staff(session, username=name, display_name="Throttle Test", password="right-password-1",
                 role="psychometrician")
    session.commit()
    return name


def staff_login(browser: Browser, username: str, password: str):
    return browser.post("/staff/login", {"username": username, "password": password}, "/staff/login")


def test_one_address_guessing_one_account_is_blocked_with_429_and_retry_after(app, session, staff, clock):
    attacker = Browser(app)
    for _ in range(POLICY.pair.limit):
        assert staff_login(attacker, staff, "wrong-guess-000").status_code == 401
    blocked = staff_login(attacker, staff, "right-password-1")
    assert blocked.status_code == 429
    assert blocked.headers["Retry-After"] == "60"
    page = blocked.get_data(as_text=True)
    assert "Too many failed attempts" in page and f'value="{staff}"' in page
    # Blocked means not even the right password gets in (no oracle) and nothing more is counted.
    clock.advance(seconds=59)
    assert staff_login(attacker, staff, "right-password-1").status_code == 429
    clock.advance(seconds=1)
    # The next block is twice as long: the address went on guessing after its first one.
    for _ in range(POLICY.pair.limit):
        assert staff_login(attacker, staff, "wrong-guess-000").status_code == 401
    assert staff_login(attacker, staff, "right-password-1").headers["Retry-After"] == "120"
    # The block is recorded in the audit trail, which stays intact.
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "login.blocked",
                                                      AuditEvent.subject == f"staff:{staff}")
                             .order_by(AuditEvent.id)).all()
    assert len(events) == 2 and all(e.actor.startswith("client:") for e in events)
    assert events[0].details == {"scopes": {"pair": 60}}
    assert verify_chain(session).intact


def test_the_real_user_elsewhere_is_not_locked_out_by_one_guesser(app, staff, clock):
    attacker, user = Browser(app), Browser(app)
    for _ in range(POLICY.pair.limit + 2):
        staff_login(attacker, staff, "wrong-guess-000")
    assert staff_login(attacker, staff, "right-password-1").status_code == 429
    signed_in = staff_login(user, staff, "right-password-1")
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/bank/"


def test_guessing_from_many_addresses_blocks_the_account_but_not_its_known_device(app, staff, clock):
    user = Browser(app)
    assert staff_login(user, staff, "right-password-1").status_code == 302  # this browser is now known
    user.client.post("/staff/logout", data={"csrf_token": csrf_token_from(user, "/staff/login")},
                     environ_base={"REMOTE_ADDR": user.addr})
    for _ in range(POLICY.account.limit):
        assert staff_login(Browser(app), staff, "wrong-guess-000").status_code == 401
    # Any new address is refused now, the right password included...
    assert staff_login(Browser(app), staff, "right-password-1").status_code == 429
    # ...but the browser the user signed in with before is not: nobody can lock them out of it.
    assert staff_login(user, staff, "right-password-1").status_code == 302
    # Their success does not lift the account's block for everyone else; time does.
    assert staff_login(Browser(app), staff, "right-password-1").status_code == 429
    clock.advance(seconds=POLICY.account.block_seconds)
    assert staff_login(Browser(app), staff, "right-password-1").status_code == 302


def test_one_address_spraying_many_accounts_is_blocked_and_its_own_sign_in_does_not_reset_it(
        app, session, staff, clock):
    sprayer = Browser(app)
    for n in range(POLICY.client.limit - 1):
        assert staff_login(sprayer, f"nobody-{uuid.uuid4().hex[:6]}", "Summer2026!!").status_code == 401
    # Signing in to an account of its own (say, it registered one) clears nothing of the address.
    assert staff_login(sprayer, staff, "right-password-1").status_code == 302
    assert staff_login(sprayer, f"nobody-{uuid.uuid4().hex[:6]}", "Summer2026!!").status_code == 401
    refused = staff_login(sprayer, f"nobody-{uuid.uuid4().hex[:6]}", "Summer2026!!")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "300"
    # Unknown accounts are throttled like real ones, and another address is not affected.
    assert staff_login(Browser(app), f"nobody-{uuid.uuid4().hex[:6]}", "Summer2026!!").status_code == 401


def test_the_seat_login_is_throttled_by_admission_code(app, session, program, clock):
    booked = booked_candidate(session, program, clock.now)
    guesser = Browser(app)
    spaced = booked.admission_code.replace("-", " ").lower()  # the same code, typed differently
    for day in range(POLICY.pair.limit):
        wrong = guesser.post("/login", {"admission_code": spaced if day % 2 else booked.admission_code,
                                        "date_of_birth": f"1990-01-{day + 1:02d}"}, "/")
        assert wrong.status_code == 401
    blocked = guesser.post("/login", {"admission_code": booked.admission_code,
                                      "date_of_birth": booked.date_of_birth.isoformat()}, "/")
    assert blocked.status_code == 429 and "Too many failed attempts" in blocked.get_data(as_text=True)
    assert int(blocked.headers["Retry-After"]) == POLICY.pair.block_seconds
    # The candidate at their seat (another PC) logs in.
    seat = Browser(app)
    enrol_browser(seat.client, booked)
    assert seat.post("/login", {"admission_code": booked.admission_code,
                                "date_of_birth": booked.date_of_birth.isoformat()}, "/").status_code == 302
    # A malformed date of birth is not a guess: it is not counted.
    typo = Browser(app)
    for _ in range(POLICY.pair.limit + 1):
        assert typo.post("/login", {"admission_code": booked.admission_code, "date_of_birth": "17/05/1999"},
                         "/").status_code == 422


def test_the_applicant_sign_in_is_throttled_by_e_mail(app, session, clock):
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    register(session, name="Throttled Applicant", date_of_birth=dt.date(1990, 1, 1), email=email,
             password="applicant-password", occupation="student", company_type=None, today=dt.date(2026, 1, 1))
    session.commit()
    guesser = Browser(app)
    for n in range(POLICY.pair.limit):
        wrong = guesser.post("/booking/sign-in", {"email": email.upper() if n % 2 else email,
                                                  "password": "wrong-password"}, "/booking/sign-in")
        assert wrong.status_code == 401
    blocked = guesser.post("/booking/sign-in", {"email": email, "password": "applicant-password"}, "/booking/sign-in")
    assert blocked.status_code == 429 and email in blocked.get_data(as_text=True)
    assert Browser(app).post("/booking/sign-in", {"email": email, "password": "applicant-password"},
                             "/booking/sign-in").status_code == 302


def test_the_state_is_in_the_database_shared_by_every_app(app, engine, staff, clock):
    """Two app instances (two workers, two hosts) count into the same rows."""
    other_host = create_app({"ENGINE": engine, "SECRET_KEY": "test-secret", "TESTING": True, "CLOCK": clock,
                             "LOGIN_THROTTLE": POLICY})
    addr = address()
    first, second = Browser(app, addr), Browser(other_host, addr)
    for n in range(POLICY.pair.limit):
        assert staff_login(first if n % 2 else second, staff, "wrong-guess-000").status_code == 401
    assert staff_login(first, staff, "right-password-1").status_code == 429
    assert staff_login(second, staff, "right-password-1").status_code == 429


def test_the_table_holds_no_account_or_address_and_a_success_clears_only_the_pair(app, session, staff, clock):
    guesser = Browser(app)
    for _ in range(POLICY.pair.limit - 1):
        staff_login(guesser, staff, "wrong-guess-000")
    session.expire_all()
    rows = session.scalars(select(LoginThrottle)).all()
    assert rows and all(staff not in r.key and guesser.addr not in r.key for r in rows)
    assert staff_login(guesser, staff, "right-password-1").status_code == 302
    attempt = throttle.Attempt("staff", staff, throttle.client_of(guesser.addr))
    session.expire_all()
    left = {r.key: r for r in session.scalars(select(LoginThrottle).where(
        LoginThrottle.key.in_(list(attempt.all_keys().values()))))}
    assert set(left) == {attempt.all_keys()["account"], attempt.all_keys()["client"]}


def test_ipv6_clients_are_counted_by_their_64_network(app, staff, clock):
    prefix = f"2001:db8:{uuid.uuid4().int % 65535:x}:1:"
    for n in range(POLICY.pair.limit):
        assert staff_login(Browser(app, f"{prefix}{n + 1:x}::1"), staff, "wrong-guess-000").status_code == 401
    assert staff_login(Browser(app, f"{prefix}ffff::9"), staff, "right-password-1").status_code == 429


def test_behind_a_trusted_proxy_the_forwarded_address_is_counted(engine, staff, clock):
    proxied = create_app({"ENGINE": engine, "SECRET_KEY": "test-secret", "TESTING": True, "CLOCK": clock,
                          "LOGIN_THROTTLE": POLICY, "TRUSTED_PROXIES": 1})
    client_addr = address()
    for _ in range(POLICY.pair.limit):
        browser = Browser(proxied, "127.0.0.1")
        token = csrf_token_from(browser, "/staff/login")
        browser.client.post("/staff/login", data={"csrf_token": token, "username": staff, "password": "x" * 12},
                            headers={"X-Forwarded-For": client_addr}, environ_base={"REMOTE_ADDR": "127.0.0.1"})
    # Another client behind the same proxy is not blocked; the guesser is.
    other = Browser(proxied, "127.0.0.1")
    token = csrf_token_from(other, "/staff/login")
    assert other.client.post("/staff/login", data={"csrf_token": token, "username": staff,
                                                   "password": "right-password-1"},
                             headers={"X-Forwarded-For": address()},
                             environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 302
    guesser = Browser(proxied, "127.0.0.1")
    token = csrf_token_from(guesser, "/staff/login")
    assert guesser.client.post("/staff/login", data={"csrf_token": token, "username": staff,
                                                     "password": "right-password-1"},
                               headers={"X-Forwarded-For": client_addr},
                               environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 429


def test_the_hot_path_is_not_a_login_and_is_not_throttled(app, session, program, clock):
    """Answers, marks, position and the clock carry no throttle work: after the seat login
    they run with the address blocked for sign-ins."""
    from tests.helpers import api, login_candidate, start_sitting

    booked = booked_candidate(session, program, clock.now)
    addr = address()
    seat = app.test_client()
    seat.environ_base["REMOTE_ADDR"] = addr
    login_candidate(seat, booked)
    start_sitting(seat)
    sprayer = Browser(app, addr)
    for n in range(POLICY.client.limit):
        sprayer.post("/login", {"admission_code": f"2222-3333-{n:04d}", "date_of_birth": "1990-01-01"}, "/")
    assert sprayer.post("/login", {"admission_code": "2222-3333-4444", "date_of_birth": "1990-01-01"},
                        "/").status_code == 429
    assert api(seat, "PUT", "/api/sitting/answers/1", {"option": 2}).status_code == 200
    assert api(seat, "PUT", "/api/sitting/marks/1", {"marked": True}).status_code == 200
    assert api(seat, "PUT", "/api/sitting/position", {"position": 2}).status_code == 200
    assert api(seat, "GET", "/api/sitting/clock").status_code == 200


def test_prune_drops_only_what_no_longer_counts(session, clock):
    policy = ThrottlePolicy()
    attempt = throttle.Attempt("staff", f"prune-{uuid.uuid4().hex[:6]}", address())
    old = clock.now - dt.timedelta(days=3)
    throttle.failed(session, policy, attempt, old)
    recent = throttle.Attempt("staff", f"prune-{uuid.uuid4().hex[:6]}", address())
    throttle.failed(session, policy, recent, clock.now)
    session.commit()
    throttle.prune(session, policy, clock.now)
    session.commit()
    keys = set(session.scalars(select(LoginThrottle.key)))
    assert not set(attempt.all_keys().values()) & keys
    assert set(recent.all_keys().values()) <= keys


def test_an_operator_lifts_an_account_block_from_the_shell(app, session, staff, database_url, monkeypatch):
    from click.testing import CliRunner

    from delivery.cli import main as cli

    for _ in range(POLICY.account.limit):
        staff_login(Browser(app), staff, "wrong-guess-000")
    assert staff_login(Browser(app), staff, "right-password-1").status_code == 429
    monkeypatch.setenv("CBT_DATABASE_URL", database_url)
    result = CliRunner().invoke(cli, ["logins", "unblock", "--staff", staff, "--reason", "user phoned, verified"])
    assert result.exit_code == 0, result.output
    assert staff_login(Browser(app), staff, "right-password-1").status_code == 302
    session.expire_all()
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "login.unblock")
                            .order_by(AuditEvent.id.desc())).first()
    assert event.subject == f"staff:{staff}" and event.reason == "user phoned, verified"
    assert CliRunner().invoke(cli, ["logins", "unblock", "--reason", "x"]).exit_code == 2
