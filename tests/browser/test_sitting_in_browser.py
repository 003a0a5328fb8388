"""A whole sitting in a real headless chromium, with accessibility checks on every page."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from delivery.models import Sitting, SittingItem
from scoring.models import ScoreResult
from tests.browser.conftest import at_seat_pc, serious_accessibility_violations
from tests.helpers import booked_candidate

pytestmark = pytest.mark.browser


def answered_in_database(session, booking_id) -> dict[int, int]:
    session.expire_all()
    rows = session.execute(
        select(SittingItem.position, SittingItem.chosen_option).join(Sitting)
        .where(Sitting.booking_id == booking_id, SittingItem.chosen_option.is_not(None))
    )
    return dict(rows.all())


def test_a_candidate_sits_the_whole_exam_in_a_browser(page, live_server, session, program):
    booked = booked_candidate(session, program, dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5))
    violations: dict[str, list[str]] = {}

    at_seat_pc(page, live_server, booked)
    page.goto(live_server + "/")
    violations["login"] = serious_accessibility_violations(page)
    page.get_by_label("Admission code").fill(booked.admission_code.lower().replace("-", ""))
    page.get_by_label("Date of birth").fill(booked.date_of_birth.isoformat())
    page.get_by_role("button", name="Log in").click()

    expect(page.get_by_role("heading", name="Before you start")).to_be_visible()
    violations["instructions"] = serious_accessibility_violations(page)
    page.get_by_label("I have read the rules and agree to them.").check()
    page.get_by_role("button", name="Start the exam").click()

    question = page.locator("#question-title")
    expect(question).to_contain_text("Question 1 of 100")
    expect(page.locator("#timer")).to_have_text(re.compile(r"^1:5\d:\d\d$|^2:00:00$"))
    violations["question"] = serious_accessibility_violations(page)

    # Keyboard alone: choose with a digit, move on with N, mark with M.
    page.keyboard.press("2")
    expect(page.locator("#save-status")).to_have_text("Answer saved.")
    page.keyboard.press("n")
    expect(question).to_contain_text("Question 2 of 100")
    page.keyboard.press("4")
    page.keyboard.press("m")
    expect(page.locator("#save-status")).to_have_text("Answer saved.")
    # The mouse: an option, then the navigator.
    page.locator("#navigator-list button", has_text=re.compile(r"^7$")).click()
    expect(question).to_contain_text("Question 7 of 100")
    page.locator("label.option").nth(0).click()
    expect(page.locator("#save-status")).to_have_text("Answer saved.")
    assert answered_in_database(session, booked.booking_id).keys() == {1, 2, 7}

    # A reload loses nothing and comes back to the same question.
    page.reload()
    expect(question).to_contain_text("Question 7 of 100")
    expect(page.locator("#question-options input").nth(0)).to_be_checked()
    expect(page.get_by_role("button", name="Question 2, answered, marked")).to_be_visible()
    expect(page.get_by_role("button", name="Question 1, answered")).to_be_visible()

    # The review screen lists answered, unanswered and marked questions, each a link.
    page.get_by_role("button", name="Review").click()
    expect(page.locator("#review-summary")).to_have_text("3 answered, 97 unanswered, 1 marked for review.")
    violations["review"] = serious_accessibility_violations(page)
    page.locator("#review-unanswered a", has_text=re.compile(r"^Question 3$")).click()
    expect(question).to_contain_text("Question 3 of 100")
    page.keyboard.press("3")
    expect(page.locator("#save-status")).to_have_text("Answer saved.")

    # Display size changes and stays.
    before = page.evaluate("getComputedStyle(document.documentElement).fontSize")
    page.get_by_role("button", name="larger text").click()
    assert page.evaluate("getComputedStyle(document.documentElement).fontSize") != before

    # Finish: the confirmation names what is unanswered.
    page.get_by_role("button", name="Finish", exact=True).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("You have not answered 96 questions: 4, 5, 6, 8,")
    violations["finish dialog"] = serious_accessibility_violations(page)
    page.get_by_role("button", name="Finish and see my score").click()

    expect(page.get_by_role("heading", name="Your score")).to_be_visible()
    violations["result"] = serious_accessibility_violations(page)
    session.expire_all()
    result = session.scalar(select(ScoreResult).join(Sitting, Sitting.id == ScoreResult.sitting_id)
                            .where(Sitting.booking_id == booked.booking_id))
    expect(page.locator("#total-score")).to_have_text(str(result.total_score))
    expect(page.locator("#verdict")).to_have_text("Pass" if result.passed else "Not passed")
    assert answered_in_database(session, booked.booking_id).keys() == {1, 2, 3, 7}

    # The printable report with its signed certificate, and the public check of it.
    page.get_by_role("link", name=re.compile("Score report")).click()
    code = page.locator("#certificate-code").inner_text()
    violations["report"] = serious_accessibility_violations(page)
    page.goto(live_server + "/verify")
    page.get_by_label("Certificate code").fill(code)
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="Genuine certificate")).to_be_visible()
    expect(page.locator("#certificate-number")).to_have_text(str(result.id))
    violations["verify"] = serious_accessibility_violations(page)
    assert {name: found for name, found in violations.items() if found} == {}
