"""A shared stimulus and instructions for the candidate are shown with the item, in the item's language."""
from __future__ import annotations

import dataclasses

from delivery import sittings
from tests.helpers import api, booked_candidate, login_candidate, start_sitting


def test_the_sitting_shows_the_stimulus_and_the_instructions_with_the_item(client, session, program, clock,
                                                                             monkeypatch):
    booked = booked_candidate(session, program, clock.now)
    login_candidate(client, booked)
    state = start_sitting(client)
    assert state["items"][0]["stimulus"] is None and state["items"][0]["instructions"] == ""
    page = client.get("/sitting").get_data(as_text=True)
    assert 'id="question-stimulus"' in page and 'id="question-instructions"' in page

    cached = sittings.contents_by_version
    passage = {"identifier": "p1", "title": "A passage", "text": "First line.\n  indented second line."}

    def with_a_passage(db, version_ids):
        # The content of every item shown, as if each had been imported with a passage (the stored
        # versions of the shared test bank stay as they are).
        return {v: dataclasses.replace(c, stimulus=passage, instructions="Read the passage first.",
                                       language="ja") for v, c in cached(db, version_ids).items()}

    monkeypatch.setattr(sittings, "contents_by_version", with_a_passage)
    shown = api(client, "GET", "/api/sitting").get_json()["items"][0]
    assert shown["stimulus"] == {"title": "A passage", "text": "First line.\n  indented second line."}
    assert shown["instructions"] == "Read the passage first." and shown["language"] == "ja"
    assert "identifier" not in shown["stimulus"]
