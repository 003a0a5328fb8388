"""The candidate's sitting through the HTTP API, on every backend."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from delivery.models import Sitting, SittingItem
from itembank.content import unpack
from itembank.models import ItemVersion
from persistence.audit import AuditEvent
from scoring.models import ScoreResult
from tests.centre_helpers import frozen_clock
from tests.helpers import api, booked_candidate, csrf_token, login_candidate, login_staff, sitting_view, start_sitting


@pytest.fixture
def clock():
    """A fixed instant: nothing here depends on the day the tests run."""
    return frozen_clock()


def test_a_whole_sitting_is_assembled_answered_and_scored(client, session, program, clock):
    booked = booked_candidate(session, program, clock.now)
    assert login_candidate(client, booked).headers["Location"].endswith("/instructions")
    state = start_sitting(client)

    assert state["status"] == "in_progress"
    assert len(state["items"]) == 100
    assert state["remaining_seconds"] == 120 * 60
    fields = [item["field"] for item in state["items"]]
    assert fields == ["strategy"] * 35 + ["management"] * 20 + ["technology"] * 45
    leaked = {"key", "is_pretest", "pretest", "rationale", "a", "b", "c"}
    assert all(not leaked & set(item) for item in state["items"])
    assert all(not leaked & set(option) for item in state["items"] for option in item["options"])

    rows = session.scalars(select(SittingItem).join(Sitting).where(Sitting.booking_id == booked.booking_id)
                           .order_by(SittingItem.position)).all()
    assert [sum(r.is_pretest for r in rows if r.field == f.code) for f in program.fields] == [3, 2, 3]

    # Answer every item correctly except the technology field's first ten.
    keys = {v.id: unpack(v.content).key for v in session.scalars(
        select(ItemVersion).where(ItemVersion.id.in_([r.item_version_id for r in rows])))}
    for row in rows:
        option = keys[row.item_version_id]
        if row.field == "technology" and row.position <= 64:
            option = (option + 1) % 4
        assert api(client, "PUT", f"/api/sitting/answers/{row.position}", {"option": option}).status_code == 200
    assert api(client, "PUT", "/api/sitting/marks/7", {"marked": True}).get_json() == {
        "saved": True, "position": 7, "marked": True}

    clock.advance(minutes=30)
    finished = api(client, "POST", "/api/sitting/finish", {})
    assert finished.status_code == 200 and finished.get_json()["result_url"] == "/result"

    session.expire_all()
    result = session.scalar(select(ScoreResult).join(Sitting, Sitting.id == ScoreResult.sitting_id)
                            .where(Sitting.booking_id == booked.booking_id))
    # 92 scored items, less any withdrawn by a rescoring campaign in force (an earlier test may apply one).
    from scoring.models import ScoringAmendment
    from scoring.results import effective_amendments

    in_force = effective_amendments(session, [r.item_version_id for r in rows])
    withdrawn = set(session.scalars(select(ScoringAmendment.item_version_id).where(
        ScoringAmendment.id.in_(in_force), ScoringAmendment.kind == "withdrawn")))
    assert result.scored_items == 92 - sum(1 for r in rows if not r.is_pretest and r.item_version_id in withdrawn)
    assert result.field_scores["strategy"] > 700 and result.field_scores["management"] > 700
    assert result.field_scores["technology"] < result.field_scores["strategy"]
    page = client.get("/result").get_data(as_text=True)
    assert f'id="total-score">{result.total_score}<' in page
    assert ("Pass" if result.passed else "Not passed") in page


def test_reload_and_login_again_resume_where_the_candidate_was(client, app, session, program, clock):
    booked = booked_candidate(session, program, clock.now)
    login_candidate(client, booked)
    start_sitting(client)
    api(client, "PUT", "/api/sitting/answers/3", {"option": 2})
    api(client, "PUT", "/api/sitting/position", {"position": 42})
    clock.advance(minutes=10)

    reloaded = sitting_view(client)
    assert reloaded["current_position"] == 42 and reloaded["items"][2]["answer"] == 2

    other_seat = app.test_client()
    login_candidate(other_seat, booked)
    resumed = sitting_view(other_seat)
    assert resumed["current_position"] == 42
    assert resumed["items"][2]["answer"] == 2
    assert resumed["remaining_seconds"] == 110 * 60
    # The seat that was left is locked out.
    assert api(client, "PUT", "/api/sitting/answers/4", {"option": 1}).status_code == 401


def test_an_answer_after_the_deadline_is_refused_and_the_sitting_ends_itself(client, session, program, clock):
    booked = booked_candidate(session, program, clock.now)
    login_candidate(client, booked)
    start_sitting(client)
    assert api(client, "PUT", "/api/sitting/answers/1", {"option": 0}).status_code == 200
    clock.advance(minutes=120, seconds=1)

    late = api(client, "PUT", "/api/sitting/answers/2", {"option": 0})
    assert late.status_code == 409
    assert "ended" in late.get_json()["error"]
    session.expire_all()
    sitting = session.scalar(select(Sitting).where(Sitting.booking_id == booked.booking_id))
    assert sitting.status == "finished" and sitting.end_reason == "time_up"
    assert sitting.finished_at == sitting.started_at + dt.timedelta(minutes=120)
    assert [i.chosen_option for i in sitting.items[:2]] == [0, None]
    assert session.scalar(select(ScoreResult).where(ScoreResult.sitting_id == sitting.id)) is not None


def test_late_arrival_is_deducted_and_extra_time_is_granted(client, app, session, program, clock):
    late = booked_candidate(session, program, clock.now - dt.timedelta(minutes=15))
    login_candidate(client, late)
    assert start_sitting(client)["remaining_seconds"] == 105 * 60

    extended = booked_candidate(session, program, clock.now, time_multiplier=1.5)
    other = app.test_client()
    login_candidate(other, extended)
    assert start_sitting(other)["remaining_seconds"] == 180 * 60


def test_the_start_waits_for_the_slot_and_login_for_check_in(client, app, session, program, clock):
    early = booked_candidate(session, program, clock.now + dt.timedelta(minutes=20))
    assert login_candidate(client, early).status_code == 302
    refused = client.post("/start", data={"csrf_token": csrf_token(client), "agree": "yes"})
    assert refused.status_code == 403 and "start time" in refused.get_data(as_text=True)

    not_checked_in = booked_candidate(session, program, clock.now, checked_in=False)
    other = app.test_client()
    response = login_candidate(other, not_checked_in)
    assert response.status_code == 403 and "check in" in response.get_data(as_text=True)

    assert login_staff(other, not_checked_in.proctor, not_checked_in.password).status_code == 302
    board = other.get("/proctor/").get_data(as_text=True)
    assert f"/proctor/bookings/{not_checked_in.booking_id}" in board
    checked = other.post(f"/proctor/bookings/{not_checked_in.booking_id}/check-in",
                         data={"csrf_token": csrf_token(other), "identity_verified": "yes"})
    assert checked.status_code == 302
    event = session.scalar(select(AuditEvent).where(AuditEvent.subject == f"booking:{not_checked_in.booking_id}"))
    assert (event.action, event.actor, event.centre_id) == ("check_in", not_checked_in.proctor, not_checked_in.centre_id)
    candidate = app.test_client()
    assert login_candidate(candidate, not_checked_in).headers["Location"].endswith("/instructions")


def test_wrong_credentials_get_a_clear_refusal(client, session, program, clock):
    booked = booked_candidate(session, program, clock.now)
    token = csrf_token(client)
    wrong = client.post("/login", data={"csrf_token": token, "admission_code": booked.admission_code,
                                        "date_of_birth": "1970-01-01"})
    assert wrong.status_code == 401 and "do not match" in wrong.get_data(as_text=True)
    malformed = client.post("/login", data={"csrf_token": token, "admission_code": "x", "date_of_birth": "tomorrow"})
    assert malformed.status_code == 422
    no_csrf = client.post("/login", data={"admission_code": booked.admission_code, "date_of_birth": "1999-05-17"})
    assert no_csrf.status_code == 400


def test_a_candidate_reaches_only_their_own_sitting(app, session, program, clock):
    first, second = app.test_client(), app.test_client()
    booked_first = booked_candidate(session, program, clock.now)
    booked_second = booked_candidate(session, program, clock.now)
    login_candidate(first, booked_first)
    login_candidate(second, booked_second)
    state_first = start_sitting(first)
    start_sitting(second)
    api(first, "PUT", "/api/sitting/answers/1", {"option": 3})

    # The sitting is the session's: no id in any URL to guess. A cookie naming the other
    # sitting is refused, whether signed with a guessed key or with the real key but no token.
    assert sitting_view(second)["items"][0]["answer"] is None
    target = {"role": "candidate", "sitting_id": state_first["sitting_key"], "token": "guessed"}
    for secret in ("guessed-secret", app.config["SECRET_KEY"]):
        forger = app.test_client()
        signer = app.session_interface.get_signing_serializer(app)
        if secret != app.config["SECRET_KEY"]:
            from itsdangerous import URLSafeTimedSerializer
            signer = URLSafeTimedSerializer(secret, salt=signer.salt, serializer=signer.serializer,
                                            signer_kwargs=signer.signer_kwargs)
        forger.set_cookie("session", signer.dumps(target))
        assert forger.get("/api/sitting").status_code == 401
        assert forger.put("/api/sitting/answers/1", json={"option": 0}).status_code in (400, 401)
    assert sitting_view(first)["items"][0]["answer"] == 3


def test_malformed_requests_get_a_clear_4xx(client, session, program, clock):
    assert client.get("/api/sitting").status_code == 401
    booked = booked_candidate(session, program, clock.now)
    login_candidate(client, booked)
    start_sitting(client)
    cases = [
        ("PUT", "/api/sitting/answers/1", None, b"{not json", 400),
        ("PUT", "/api/sitting/answers/1", [1, 2], None, 400),
        ("PUT", "/api/sitting/answers/1", {"option": 7}, None, 422),
        ("PUT", "/api/sitting/answers/1", {"option": "1"}, None, 422),
        ("PUT", "/api/sitting/answers/1", {"option": True}, None, 422),
        ("PUT", "/api/sitting/answers/101", {"option": 1}, None, 404),
        ("PUT", "/api/sitting/answers/0", {"option": 1}, None, 404),
        ("PUT", "/api/sitting/marks/1", {"marked": "yes"}, None, 422),
        ("PUT", "/api/sitting/position", {"position": 500}, None, 404),
        ("PUT", "/api/sitting/position", {}, None, 422),
        ("DELETE", "/api/sitting/answers/1", None, None, 405),
        ("GET", "/api/nothing-here", None, None, 404),
    ]
    for method, path, body, raw, expected in cases:
        response = api(client, method, path, body, raw=raw)
        assert response.status_code == expected, (method, path, body, response.get_data(as_text=True))
        assert response.is_json and response.get_json()["error"]
    no_csrf = client.put("/api/sitting/answers/1", json={"option": 1})
    assert no_csrf.status_code == 400 and no_csrf.is_json


def test_roles_are_enforced_on_the_server(app, session, program, clock):
    booked = booked_candidate(session, program, clock.now, checked_in=False)
    proctor = app.test_client()
    login_staff(proctor, booked.proctor, booked.password)
    assert proctor.get("/bank/").status_code == 403

    elsewhere = booked_candidate(session, program, clock.now, checked_in=False)
    refused = proctor.post(f"/proctor/bookings/{elsewhere.booking_id}/check-in",
                           data={"csrf_token": csrf_token(proctor), "identity_verified": "yes"})
    assert refused.status_code == 403
    assert f"/proctor/bookings/{elsewhere.booking_id}" not in proctor.get("/proctor/").get_data(as_text=True)

    psychometrician = app.test_client()
    login_staff(psychometrician, "psychometrician", "psychometrician-demo-pass")
    assert psychometrician.get("/proctor/").status_code == 403
    listing = psychometrician.get("/bank/?field=technology&category=23").get_data(as_text=True)
    assert "T23-" in listing and "S01-" not in listing
    assert psychometrician.get("/bank/?field=nonsense").status_code == 400

    anonymous = app.test_client()
    assert anonymous.get("/bank/").headers["Location"].startswith("/staff/login")
    candidate = app.test_client()
    login_candidate(candidate, booked_candidate(session, program, clock.now))
    assert candidate.get("/proctor/").status_code == 302
