"""A sitting's questions are prepared at login and read as one stored row from the start on."""
from __future__ import annotations

import gzip
import json

import pytest
from sqlalchemy import select

from delivery.models import Sitting, SittingQuestions
from tests.centre_helpers import frozen_clock
from tests.helpers import booked_candidate, login_candidate, start_sitting


@pytest.fixture
def clock():
    return frozen_clock()


def sitting_of(session, booked) -> Sitting:
    return session.scalar(select(Sitting).where(Sitting.booking_id == booked.booking_id))


def test_the_questions_are_prepared_at_login_sealed_and_shown_only_once_started(client, session, program, clock):
    booked = booked_candidate(session, program, clock.now)
    login_candidate(client, booked)
    sitting = sitting_of(session, booked)
    stored = session.get(SittingQuestions, sitting.id)
    assert stored is not None and stored.language == "ja"
    # Sealed: neither the JSON nor its gzip form is in the row.
    assert not stored.body.startswith(b"\x1f\x8b") and b'"stem"' not in stored.body
    waiting = client.get("/api/sitting/questions")
    assert waiting.status_code == 409 and "started" in waiting.get_json()["error"]

    state = start_sitting(client)
    response = client.get("/api/sitting/questions", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200 and response.headers["Content-Encoding"] == "gzip"
    assert response.headers["Cache-Control"] == "private, no-cache"
    document = json.loads(gzip.decompress(response.get_data()))
    assert document["option_labels"] == list(program.option_labels)
    # The same questions, in the same order with the same option order, as the sitting shows them.
    assert [(q["position"], q["stem"], q["options"]) for q in document["items"]] == [
        (i["position"], i["stem"], i["options"]) for i in state["items"]]
    assert all("answer" not in q and "key" not in q for q in document["items"])

    etag = response.headers["ETag"]
    assert client.get("/api/sitting/questions", headers={"If-None-Match": etag}).status_code == 304
    plain = client.get("/api/sitting/questions", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers and plain.get_json() == document

    # A second login (a reload at another seat) reads the same questions; the old seat is out.
    other_seat = client.application.test_client()
    login_candidate(other_seat, booked)
    assert other_seat.get("/api/sitting/questions", headers={"If-None-Match": etag}).status_code == 304
    assert client.get("/api/sitting/questions").status_code == 401


def test_a_sitting_without_prepared_questions_gets_them_on_first_read(client, session, program, clock):
    booked = booked_candidate(session, program, clock.now)
    login_candidate(client, booked)
    state = start_sitting(client)
    sitting = sitting_of(session, booked)
    session.delete(session.get(SittingQuestions, sitting.id))
    session.commit()
    document = client.get("/api/sitting/questions").get_json()
    assert [q["stem"] for q in document["items"]] == [i["stem"] for i in state["items"]]
    session.expire_all()
    assert session.get(SittingQuestions, sitting.id) is not None


def test_a_row_sealed_for_another_sitting_is_not_shown(client, session, program, clock):
    first, second = (booked_candidate(session, program, clock.now) for _ in range(2))
    login_candidate(client, first)
    other = client.application.test_client()
    login_candidate(other, second)
    start_sitting(client)
    mine, theirs = session.get(SittingQuestions, sitting_of(session, first).id), \
        session.get(SittingQuestions, sitting_of(session, second).id)
    own_etag = mine.etag
    mine.body, mine.etag = theirs.body, theirs.etag  # a row swapped in the database
    session.commit()
    # The seal names the sitting: the swapped row does not open, and the questions are made afresh.
    response = client.get("/api/sitting/questions")
    assert response.status_code == 200 and response.headers["ETag"].strip('"') == own_etag
