"""The app's Prometheus metrics in one process, counted by real requests (the same metrics,
added up over gunicorn's workers, are in tests/test_operations_gunicorn.py)."""
from __future__ import annotations

import uuid

from prometheus_client.parser import text_string_to_metric_families

from centers.accounts import create_staff
from delivery.throttle import Rule, ThrottlePolicy
from delivery.web import create_app
from tests.helpers import (
    api,
    booked_candidate,
    csrf_token,
    login_candidate,
    login_staff,
    start_sitting,
)


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_a_sitting_s_requests_are_counted(app, session, program, clock):
    booked = booked_candidate(session, program, clock.now)
    seat = app.test_client()
    assert login_candidate(seat, booked).status_code == 302
    start_sitting(seat)
    for position, option in ((1, 2), (2, 0), (1, 3)):
        assert api(seat, "PUT", f"/api/sitting/answers/{position}", {"option": option}).status_code == 200
    assert api(seat, "PUT", "/api/sitting/answers/1", {"option": 9}).status_code == 422
    assert api(seat, "PUT", "/api/sitting/position", {"position": 2}).status_code == 200
    assert api(seat, "POST", "/api/sitting/finish", {}).status_code == 200
    # Refused after the end: a failed save, by its status.
    assert api(seat, "PUT", "/api/sitting/answers/3", {"option": 1}).status_code == 409

    samples = scrape(app.test_client())
    assert value(samples, "cbt_answers_saved_total") == 3
    assert value(samples, "cbt_answer_saves_failed_total", status="422") == 1
    assert value(samples, "cbt_answer_saves_failed_total", status="409") == 1
    assert value(samples, "cbt_sittings_started_total") == 1
    assert value(samples, "cbt_sittings_finished_total", status="finished") == 1
    assert value(samples, "cbt_http_responses_total", endpoint="candidate.save_answer", method="PUT",
                 status="200") == 3
    assert value(samples, "cbt_http_request_duration_seconds_count", endpoint="candidate.save_answer",
                 method="PUT") == 5
    assert value(samples, "cbt_http_request_duration_seconds_bucket", endpoint="candidate.save_position",
                 method="PUT", le="+Inf") == 1
    # Every connection went back to the pool; the pool's limit is known.
    assert value(samples, "cbt_database_connections_in_use") == 0
    assert value(samples, "cbt_database_connections_limit") > 0


def test_a_start_refused_is_not_counted(app, session, program, clock):
    booked = booked_candidate(session, program, clock.now)
    seat = app.test_client()
    assert login_candidate(seat, booked).status_code == 302
    # Without agreeing to the rules the start is refused: nothing counted.
    assert seat.post("/start", data={"csrf_token": csrf_token(seat)}).status_code == 302
    assert value(scrape(app.test_client()), "cbt_sittings_started_total") == 0


def test_throttled_sign_ins_are_counted_by_kind(engine, session, clock):
    policy = ThrottlePolicy(pair=Rule(limit=2, window_seconds=600, block_seconds=60, max_block_seconds=60),
                            account=Rule(limit=50, window_seconds=600, block_seconds=60, max_block_seconds=60),
                            client=Rule(limit=50, window_seconds=600, block_seconds=60, max_block_seconds=60))
    app = create_app({"ENGINE": engine, "SECRET_KEY": "test-secret", "TESTING": True, "CLOCK": clock,
                      "LOGIN_THROTTLE": policy})
    name = f"staff-{uuid.uuid4().hex[:8]}"
    create_staff(session, username=name, display_name="Metrics Test", password="right-password-1",
                 role="psychometrician")
    session.commit()
    statuses = [login_staff(app.test_client(), name, "wrong-password-1").status_code for _ in range(4)]
    assert statuses == [401, 401, 429, 429]
    samples = scrape(app.test_client())
    assert value(samples, "cbt_sign_ins_throttled_total", kind="staff") == 2
    assert value(samples, "cbt_sign_ins_throttled_total", kind="seat") == 0
