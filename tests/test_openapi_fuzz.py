"""The JSON API against its OpenAPI document.

The document is valid OpenAPI 3.1 and describes every /api/ route the app has, no
more and no less. Then schemathesis throws requests generated from it at the real
app (through WSGI, on every backend), signed in as a candidate with a real sitting in
progress and with the CSRF header: schema-valid ones and deliberately malformed ones.
Every answer must be one the document allows (never a 500), and after each request
the database must hold nothing it should not: no answer outside the options, no
position outside the form, the sitting still running, another candidate's sitting
untouched, the audit trail intact.
"""
from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import select

from delivery.models import Sitting, SittingItem
from delivery.web.openapi import DOCUMENT
from persistence.audit import verify_chain
from tests.helpers import api, booked_candidate, csrf_token, login_candidate, start_sitting

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Bounded and derandomised: the same requests on every run, quick enough for CI.
FUZZ = settings(max_examples=60, derandomize=True, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))


def test_the_document_is_valid_openapi_3_1_and_served_by_the_app(client):
    from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR  # the OpenAPI 3.1 meta-schema

    document = json.loads(DOCUMENT.read_text())
    assert document["openapi"].startswith("3.1")
    OPENAPI_31_VALIDATOR.validate(document)
    schemathesis.openapi.from_dict(document).validate()
    served = client.get("/api/openapi.json")
    assert served.status_code == 200 and served.get_json() == document


def test_the_document_describes_every_api_route_and_no_other(app):
    document = json.loads(DOCUMENT.read_text())
    described = {(path, method.upper()) for path, operations in document["paths"].items() for method in operations}
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            path = rule.rule.replace("<int:position>", "{position}")
            routes |= {(path, method) for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert described == routes


@pytest.fixture
def sittings_in_progress(app, session, program, clock):
    """Candidate A (who is fuzzed) and candidate B (who must stay untouched), both sitting."""
    mine, other = app.test_client(), app.test_client()
    booked_mine = booked_candidate(session, program, clock.now)
    booked_other = booked_candidate(session, program, clock.now)
    login_candidate(mine, booked_mine)
    login_candidate(other, booked_other)
    start_sitting(mine)
    start_sitting(other)
    for position in (1, 2, 50):
        assert api(other, "PUT", f"/api/sitting/answers/{position}", {"option": position % 4}).status_code == 200
    assert api(other, "PUT", "/api/sitting/marks/3", {"marked": True}).status_code == 200
    session.expire_all()
    ids = {b: session.scalar(select(Sitting.id).where(Sitting.booking_id == b))
           for b in (booked_mine.booking_id, booked_other.booking_id)}
    return {"client": mine, "mine": ids[booked_mine.booking_id], "other": ids[booked_other.booking_id],
            "booked": booked_mine}


def copy_of_before_the_end(app, cookies: dict):
    copy = app.test_client()
    copy.set_cookie("session", cookies["session"])
    return copy


def _credentials(case, headers: dict, cookies: dict) -> dict:
    """The real session cookie and CSRF header in place of the generated ones; where a
    malformed case leaves one out on purpose, it stays out (and the request must fail)."""
    # The WSGI test transport does not undo Content-Encoding as a real client does: ask for none.
    return {"headers": {"Accept-Encoding": "identity",
                        **{k: v for k, v in headers.items() if k in (case.headers or {})}},
            "cookies": {k: v for k, v in cookies.items() if k in (case.cookies or {})}}


def _snapshot(session, sitting_id: int):
    session.expire_all()
    sitting = session.get(Sitting, sitting_id)
    items = session.execute(select(SittingItem.position, SittingItem.chosen_option, SittingItem.marked,
                                   SittingItem.answered_at, SittingItem.item_version_id)
                            .where(SittingItem.sitting_id == sitting_id).order_by(SittingItem.position)).all()
    return (sitting.status, sitting.deadline_at, sitting.current_position, sitting.login_token_hash, tuple(items))


@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])
def test_fuzzed_requests_get_documented_answers_and_change_nothing_they_should_not(
        app, session, program, sittings_in_progress, mode):
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    # Finishing is a legitimate end of the sitting; it is fuzzed last, on its own (below).
    schema = schema.exclude(path="/api/sitting/finish")
    client = sittings_in_progress["client"]
    cookies = {"session": client.get_cookie("session").value}
    headers = {"X-CSRFToken": csrf_token(client, "/sitting")}
    other_before = _snapshot(session, sittings_in_progress["other"])
    n_options, n_items = len(program.option_labels), program.items_per_sitting
    seen = set()
    checks = CHECKS + ([negative_data_rejection] if mode is schemathesis.GenerationMode.NEGATIVE else [])

    @FUZZ
    @given(case=schema.as_strategy(generation_mode=mode))
    def fuzz(case):
        response = case.call(**_credentials(case, headers, cookies))
        case.validate_response(response, checks=checks)
        seen.add((case.method, case.path, response.status_code))
        if mode is schemathesis.GenerationMode.POSITIVE:
            # Every request the document allows is taken while the sitting runs (3 and 3.0 alike).
            assert response.status_code == 200, (case.body, response.text)
        status, deadline, position, _token, items = _snapshot(session, sittings_in_progress["mine"])
        assert status == "in_progress" and deadline is not None
        assert 1 <= position <= n_items
        assert all(option is None or 0 <= option < n_options for _, option, *_ in items)
        assert [p for p, *_ in items] == list(range(1, n_items + 1))

    fuzz()
    assert _snapshot(session, sittings_in_progress["other"]) == other_before
    assert verify_chain(session).intact
    # The fuzzer reached every operation; malformed requests met each kind of refusal.
    operations = {(m, p) for m, p, _ in seen}
    assert {("GET", "/api/sitting"), ("GET", "/api/sitting/clock"), ("PUT", "/api/sitting/position"),
            ("PUT", "/api/sitting/answers/{position}"), ("PUT", "/api/sitting/marks/{position}")} <= operations
    if mode is schemathesis.GenerationMode.NEGATIVE:
        assert {400, 401, 404} <= {status for *_, status in seen}


def test_fuzzed_finish_ends_the_sitting_once_and_consistently(app, session, program, sittings_in_progress):
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    operation = schema["/api/sitting/finish"]["POST"]
    client = sittings_in_progress["client"]
    cookies = {"session": client.get_cookie("session").value}
    headers = {"X-CSRFToken": csrf_token(client, "/sitting")}
    other_before = _snapshot(session, sittings_in_progress["other"])

    @settings(FUZZ, max_examples=10)
    @given(case=operation.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE))
    def fuzz(case):
        response = case.call(**_credentials(case, headers, cookies))
        case.validate_response(response, checks=CHECKS)
        assert response.status_code == 200

    fuzz()
    from scoring.models import ScoreResult

    session.expire_all()
    mine = session.get(Sitting, sittings_in_progress["mine"])
    assert mine.status == "finished" and mine.deadline_at is None
    assert len(session.scalars(select(ScoreResult).where(ScoreResult.sitting_id == mine.id)).all()) == 1
    # After the end, every write is refused and changes nothing, from the copies of the cookie taken
    # before the end (signed out: they read nothing) as from a new login (to see the score).
    writes = [("PUT", "/api/sitting/answers/4", {"option": 1}), ("PUT", "/api/sitting/marks/4", {"marked": True}),
              ("PUT", "/api/sitting/position", {"position": 9})]
    for sign_in_again in (False, True):
        if sign_in_again:
            login_candidate(client, sittings_in_progress["booked"])
        before = _snapshot(session, mine.id)
        for method, path, body in writes:
            assert api(client, method, path, body).status_code == 409
        assert _snapshot(session, mine.id) == before
    assert api(copy_of_before_the_end(app, cookies), "GET", "/api/sitting").status_code == 401
    assert _snapshot(session, sittings_in_progress["other"]) == other_before
