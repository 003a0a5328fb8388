"""Cookies, security headers, error pages and password hashes, checked on real responses."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from centers.models import Candidate, StaffAccount
from delivery.web import create_app
from tests.helpers import booked_candidate, csrf_token, login_candidate, login_staff

PAGES = ["/", "/staff/login", "/booking/sign-in", "/api/openapi.json", "/api/sitting", "/nowhere", "/verify"]


def _set_cookies(response) -> dict[str, str]:
    return {header.split("=", 1)[0]: header for header in response.headers.getlist("Set-Cookie")}


@pytest.mark.parametrize("path", PAGES)
def test_every_response_carries_the_security_headers(client, path):
    response = client.get(path)
    headers = response.headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "camera=()" in headers["Permissions-Policy"]
    policy = dict(part.strip().split(" ", 1) for part in headers["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == "'self'" and "unsafe-inline" not in headers["Content-Security-Policy"]
    assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"
    assert policy["base-uri"] == "'none'" and policy["form-action"] == "'self'"
    assert headers["Cache-Control"] == "no-store"
    # Over plain HTTP in development: no HSTS (it would pin a host that has no certificate).
    assert "Strict-Transport-Security" not in headers


def test_no_page_has_an_inline_script(client):
    import re

    for path in ("/", "/staff/login", "/booking/sign-in", "/booking/register"):
        page = client.get(path).get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), path
        assert not re.search(r"\son[a-z]+=", page), path


def test_session_cookies_are_httponly_and_samesite_and_secure_behind_https(engine, session, program, clock):
    plain = create_app({"ENGINE": engine, "SECRET_KEY": "test-secret", "TESTING": True, "CLOCK": clock})
    client = plain.test_client()
    booked = booked_candidate(session, program, clock.now)
    cookie = _set_cookies(login_candidate(client, booked))["session"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie and "Expires" not in cookie  # a browser-session cookie

    secure = create_app({"ENGINE": engine, "SECRET_KEY": "test-secret", "TESTING": True, "CLOCK": clock,
                         "SECURE_COOKIES": True})
    client = secure.test_client()
    page = client.get("/staff/login", base_url="https://cbt.example")
    assert page.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    import re

    token = re.search(r'name="csrf-token" content="([^"]+)"', page.get_data(as_text=True)).group(1)
    form = {"csrf_token": token, "username": booked.proctor, "password": booked.password}
    # Over HTTPS the CSRF check also wants the request to come from a page of this site.
    assert client.post("/staff/login", base_url="https://cbt.example", data=form).status_code == 400
    response = client.post("/staff/login", base_url="https://cbt.example", data=form,
                           headers={"Referer": "https://cbt.example/staff/login"})
    assert response.status_code == 302
    cookies = _set_cookies(response)
    assert "session" not in cookies
    host_cookie = cookies["__Host-session"]
    assert "Secure" in host_cookie and "HttpOnly" in host_cookie and "SameSite=Lax" in host_cookie
    assert "Domain" not in host_cookie and "Path=/" in host_cookie
    known = cookies["cbt_known_device"]
    assert "Secure" in known and "HttpOnly" in known and "SameSite=Lax" in known


def test_hsts_follows_https_behind_a_trusted_proxy(engine, clock):
    proxied = create_app({"ENGINE": engine, "SECRET_KEY": "test-secret", "TESTING": True, "CLOCK": clock,
                          "TRUSTED_PROXIES": 1})
    client = proxied.test_client()
    assert "Strict-Transport-Security" in client.get("/", headers={"X-Forwarded-Proto": "https"}).headers
    assert "Strict-Transport-Security" not in client.get("/", headers={"X-Forwarded-Proto": "http"}).headers
    # Without a trusted proxy, a client's own X-Forwarded-Proto changes nothing.
    direct = create_app({"ENGINE": engine, "SECRET_KEY": "test-secret", "TESTING": True, "CLOCK": clock})
    assert "Strict-Transport-Security" not in direct.test_client().get(
        "/", headers={"X-Forwarded-Proto": "https"}).headers


def test_a_session_older_than_a_working_day_is_not_accepted(app, session, program, clock):
    """The session cookie's signature carries the time it was issued: 12 hours on, it is refused."""
    import time

    from itsdangerous import TimestampSigner, URLSafeTimedSerializer

    assert app.permanent_session_lifetime == dt.timedelta(hours=12)
    booked = booked_candidate(session, program, clock.now)
    client = app.test_client()
    login_staff(client, booked.proctor, booked.password)
    assert client.get("/proctor/").status_code == 200
    contents = app.session_interface.get_signing_serializer(app).loads(client.get_cookie("session").value)

    def issued(hours_ago: float) -> str:
        class Then(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(time.time() - hours_ago * 3600)

        real = app.session_interface.get_signing_serializer(app)
        return URLSafeTimedSerializer(app.secret_key, salt=real.salt, serializer=real.serializer,
                                      signer=Then, signer_kwargs=real.signer_kwargs).dumps(contents)

    for hours_ago, allowed in ((11, True), (13, False)):
        replay = app.test_client()
        replay.set_cookie("session", issued(hours_ago))
        response = replay.get("/proctor/")
        assert (response.status_code == 200) is allowed, hours_ago
        if not allowed:
            assert response.headers["Location"].startswith("/staff/login")


def test_an_unexpected_error_shows_no_trace_and_no_internals(engine, clock):
    app = create_app({"ENGINE": engine, "SECRET_KEY": "test-secret", "CLOCK": clock})
    assert not app.debug and not app.testing

    @app.get("/api/explode")
    def explode():
        raise RuntimeError("secret internals: /work/abuse-wt/delivery/web/candidate.py line 42")

    @app.get("/explode")
    def explode_page():
        raise KeyError("secret internals")

    client = app.test_client()
    client.set_cookie("cbt_language", "en")
    for path, is_json in (("/api/explode", True), ("/explode", False)):
        response = client.get(path)
        body = response.get_data(as_text=True)
        assert response.status_code == 500 and response.is_json == is_json
        assert "Something went wrong on our side" in body
        assert "Traceback" not in body and "secret internals" not in body and ".py" not in body
        assert response.headers["Content-Security-Policy"]


def test_method_and_size_errors_are_clear_4xx(client):
    assert client.delete("/api/sitting").status_code == 405
    token = csrf_token(client)
    huge = client.post("/login", data={"csrf_token": token, "admission_code": "x" * (2 * 1024 * 1024),
                                       "date_of_birth": "1990-01-01"})
    assert huge.status_code == 413 and "Traceback" not in huge.get_data(as_text=True)


def test_passwords_are_stored_as_scrypt_hashes(session):
    hashes = [h for h in session.scalars(select(StaffAccount.password_hash))]
    hashes += [h for h in session.scalars(select(Candidate.password_hash).where(Candidate.password_hash.is_not(None)))]
    assert hashes
    for stored in hashes:
        method, salt, digest = stored.split("$")
        name, n, r, p = method.split(":")
        # scrypt with N = 2^15, r = 8: 32 MiB of memory per check (werkzeug's default).
        assert name == "scrypt" and int(n) >= 2 ** 15 and int(r) >= 8 and len(salt) >= 16
        assert "proctor-demo-pass" not in stored


@pytest.mark.parametrize("target", ["//evil.example/", "/\\evil.example/", "https://evil.example/",
                                    "/\t/evil.example/", "/\n/evil.example", "javascript:alert(1)"])
def test_after_sign_in_nobody_is_sent_to_another_site(app, session, program, clock, target):
    booked = booked_candidate(session, program, clock.now)
    client = app.test_client()
    token = csrf_token(client, "/staff/login")
    response = client.post("/staff/login", data={"csrf_token": token, "username": booked.proctor,
                                                 "password": booked.password, "next": target})
    assert response.status_code == 302 and response.headers["Location"] == "/proctor/"
    # A path of the site is kept.
    client = app.test_client()
    token = csrf_token(client, "/staff/login")
    response = client.post("/staff/login", data={"csrf_token": token, "username": booked.proctor,
                                                 "password": booked.password, "next": "/proctor/report"})
    assert response.headers["Location"] == "/proctor/report"
