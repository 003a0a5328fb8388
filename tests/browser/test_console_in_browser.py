"""The proctor's console in a real headless chromium, with the candidate's screen beside it."""
from __future__ import annotations

import datetime as dt
import re
import time

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from centers.models import Booking
from delivery.models import Sitting
from persistence.audit import AuditEvent
from tests.browser.conftest import serious_accessibility_violations
from tests.browser.test_sitting_in_browser import SCREENSHOTS
from tests.helpers import booked_candidate

pytestmark = pytest.mark.browser


def candidate_logs_in(page, live_server, booked):
    page.goto(live_server + "/")
    page.get_by_label("Admission code").fill(booked.admission_code)
    page.get_by_label("Date of birth").fill(booked.date_of_birth.isoformat())
    page.get_by_role("button", name="Log in").click()


def open_panel(proctor, live_server, booked):
    proctor.goto(live_server + f"/proctor/bookings/{booked.booking_id}")


def test_a_proctor_runs_a_sitting_from_the_console(page, browser, live_server, session, program):
    booked = booked_candidate(session, program, dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5),
                              checked_in=False)
    session.execute(Booking.__table__.update().where(Booking.id == booked.booking_id).values(seat_id=None))
    session.commit()
    proctor = page
    candidate_context = browser.new_context(viewport={"width": 1280, "height": 900})
    # The candidate reads English (the test's words), as if chosen with the switch.
    candidate_context.add_cookies([{"name": "cbt_language", "value": "en", "url": live_server}])
    candidate = candidate_context.new_page()
    violations: dict[str, list[str]] = {}

    proctor.goto(live_server + "/proctor/")
    proctor.get_by_label("Username").fill(booked.proctor)
    proctor.get_by_label("Password").fill(booked.password)
    proctor.get_by_role("button", name="Log in").click()
    board = proctor.locator("#board-live")
    expect(board).to_contain_text("not seated")
    violations["board"] = serious_accessibility_violations(proctor)

    # Check in: the identity check, then the first free seat.
    proctor.locator(f"#open-{booked.booking_id}").click()
    violations["panel before check-in"] = serious_accessibility_violations(proctor)
    proctor.get_by_label(re.compile("The photo ID shows")).check()
    proctor.get_by_role("button", name="Check in").click()
    expect(proctor.locator(".flash")).to_contain_text("is checked in at seat S-1")

    # The candidate logs in at the seat; the proctor starts the sitting and the candidate's screen follows.
    candidate_logs_in(candidate, live_server, booked)
    expect(candidate.get_by_role("heading", name="Before you start")).to_be_visible()
    expect(board.locator(f"#booking-{booked.booking_id}")).to_contain_text("logged in")
    open_panel(proctor, live_server, booked)
    proctor.get_by_role("button", name="Start the sitting").click()
    question = candidate.locator("#question-title")
    expect(question).to_contain_text("Question 1 of 100", timeout=10000)
    candidate.keyboard.press("2")
    expect(candidate.locator("#save-status")).to_have_text("Answer saved.")
    candidate.keyboard.press("n")
    candidate.keyboard.press("n")
    expect(question).to_contain_text("Question 3 of 100")
    row = board.locator(f"#booking-{booked.booking_id}")
    expect(row).to_contain_text("in progress")
    expect(row.locator("td").nth(2)).to_have_text("3")

    # Pause: the candidate's screen shows it within seconds and the clock stands still.
    open_panel(proctor, live_server, booked)
    violations["panel in progress"] = serious_accessibility_violations(proctor)
    proctor.get_by_label("Reason").first.fill("Fire alarm")
    proctor.get_by_role("button", name="Pause the sitting").click()
    expect(candidate.get_by_role("alertdialog", name="The exam is paused")).to_be_visible(timeout=6000)
    frozen = candidate.locator("#timer").inner_text()
    time.sleep(2.5)
    assert candidate.locator("#timer").inner_text() == frozen
    expect(row).to_contain_text("paused")

    open_panel(proctor, live_server, booked)
    proctor.get_by_role("button", name="Resume the sitting").click()
    expect(candidate.locator("#paused")).to_be_hidden(timeout=6000)
    expect(candidate.locator("#timer")).not_to_have_text(frozen, timeout=3000)

    # Add time: the candidate's clock jumps by it.
    open_panel(proctor, live_server, booked)
    proctor.get_by_label("Minutes to add").fill("10")
    proctor.locator("#add-reason").fill("Time lost to the alarm")
    proctor.get_by_role("button", name="Add the time").click()
    expect(candidate.locator("#timer")).to_have_text(re.compile(r"^2:0\d:\d\d$"), timeout=6000)

    # Move seat: the old PC is locked out; at the new seat the sitting goes on at question 3 with its time.
    open_panel(proctor, live_server, booked)
    proctor.get_by_label("New seat").select_option(label="S-2")
    proctor.locator("#move-reason").fill("PC froze")
    proctor.get_by_role("button", name="Move the sitting").click()
    stopped = candidate.get_by_role("alertdialog", name="This screen has stopped")
    expect(stopped).to_be_visible(timeout=8000)
    expect(stopped).to_contain_text("This sitting continues at seat S-2.")
    candidate.screenshot(path=str(SCREENSHOTS / "en-seat-moved-old-pc-1280x900.png"))
    session.expire_all()
    kept = session.scalar(select(Sitting).where(Sitting.booking_id == booked.booking_id)).remaining_seconds
    new_seat = candidate_context.new_page()
    candidate_logs_in(new_seat, live_server, booked)
    expect(new_seat.get_by_role("alertdialog", name="The exam is paused")).to_be_visible()
    open_panel(proctor, live_server, booked)
    expect(proctor.locator("#panel-seat")).to_have_text("S-2")
    proctor.get_by_role("button", name="Resume the sitting").click()
    expect(new_seat.locator("#paused")).to_be_hidden(timeout=6000)
    expect(new_seat.locator("#question-title")).to_contain_text("Question 3 of 100")
    shown = new_seat.locator("#timer").inner_text()
    hours, minutes, seconds = (int(part) for part in shown.split(":"))
    assert abs(hours * 3600 + minutes * 60 + seconds - kept) <= 3
    new_seat.get_by_role("button", name="Question 1, answered").click()
    expect(new_seat.locator("#question-options input").nth(1)).to_be_checked()

    # End the sitting: the seat is signed out at once (every copy of its cookie); logged in again with
    # the slip, the candidate sees the sitting ended without a score.
    open_panel(proctor, live_server, booked)
    proctor.locator("#end-reason").fill("Phone in use")
    proctor.get_by_role("button", name="End the sitting").click()
    expect(new_seat.get_by_role("heading", name="Candidate login")).to_be_visible(timeout=8000)
    candidate_logs_in(new_seat, live_server, booked)
    expect(new_seat.get_by_role("heading", name="Your score")).to_be_visible(timeout=8000)
    expect(new_seat.locator("main")).to_contain_text("ended without a score")
    expect(row).to_contain_text("ended")

    proctor.get_by_role("link", name="End-of-day report").click()
    expect(proctor.locator("#total-ended")).to_have_text("1")
    violations["report"] = serious_accessibility_violations(proctor)
    candidate_context.close()

    session.expire_all()
    actions = session.scalars(select(AuditEvent.action).where(AuditEvent.centre_id == booked.centre_id)
                              .order_by(AuditEvent.id)).all()
    assert actions == ["check_in", "start", "pause", "resume", "add_time", "move_seat", "resume", "end"]
    assert {name: found for name, found in violations.items() if found} == {}
