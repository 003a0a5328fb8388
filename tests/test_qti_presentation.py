"""A shared stimulus and instructions for the candidate are shown with the item, in the item's language."""
from __future__ import annotations

import dataclasses

from delivery import sittings
from delivery.models import SittingQuestions
from tests.helpers import booked_candidate, login_candidate, sitting_view, start_sitting


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
    # The questions were prepared at login: prepare them again with the passage.
    session.delete(session.get(SittingQuestions, state["sitting_key"]))
    session.commit()
    shown = sitting_view(client)["items"][0]
    assert shown["stimulus"] == {"title": "A passage", "text": "First line.\n  indented second line."}
    assert shown["instructions"] == "Read the passage first." and shown["language"] == "ja"
    assert "identifier" not in shown["stimulus"]


def test_the_import_page_reports_per_item_what_was_kept_changed_and_refused(client):
    import io

    from tests.helpers import csrf_token, login_staff
    from tests.test_qti_corpus import refusals

    login_staff(client, "psychometrician", "psychometrician-demo-pass")
    token = csrf_token(client, "/bank/exchange")
    response = client.post("/bank/exchange/import/qti", data={
        "csrf_token": token, "mode": "all", "category": "14",
        "package": (io.BytesIO(refusals("2.2")[0]), "refusals.zip")}, content_type="multipart/form-data")
    page = response.get_data(as_text=True)
    assert response.status_code == 422  # all or nothing: nothing landed in the shared bank
    assert "Could be imported: what each item kept and what it changed" in page
    assert "<td>items/good.xml</td><td class=\"code-cell\">good</td>" in page
    assert "MathML (&lt;math&gt;) is not supported" in page
