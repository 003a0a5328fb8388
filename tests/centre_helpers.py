"""Building blocks for the centre and booking tests: a frozen clock, signed-in applicants."""
from __future__ import annotations

import datetime as dt

from centers import sign_ins
from persistence.unit_of_work import unit_of_work
from tests.conftest import Clock
from tests.helpers import csrf_token

# A Monday morning in Japan, the same on every run: nothing depends on the wall clock.
FROZEN = dt.datetime(2030, 6, 3, 0, 30, tzinfo=dt.timezone.utc)


def frozen_clock() -> Clock:
    return Clock(FROZEN)


def applicant_token(session, candidate_id: int, now: dt.datetime) -> str:
    """A sign-in of the registered candidate, as the sign-in page opens one; its cookie token."""
    with unit_of_work(session):
        return sign_ins.open_sign_in(session, now, candidate_id=candidate_id)


def applicant_browsers(app, session, candidate_id: int, n: int, now: dt.datetime):
    """``n`` browsers holding copies of one applicant's session cookie, each with its CSRF token."""
    token = applicant_token(session, candidate_id, now)
    browsers = []
    for _ in range(n):
        client = app.test_client()
        with client.session_transaction() as cookie:
            cookie.update(role="applicant", sign_in=token)
        browsers.append((client, csrf_token(client, "/booking/")))
    return browsers
