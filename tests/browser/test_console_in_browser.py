"""The proctor's console in a real headless chromium, with the candidate's screen beside it."""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from centers.models import Booking
from delivery.models import Sitting
from persistence.audit import AuditEvent
from tests.browser.conftest import AXE, at_seat_pc, serious_accessibility_violations
from tests.helpers import booked_candidate

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots" / "proctor"
SIZES = {"1280x800": (1280, 800), "800x600": (800, 600)}


def reading(context, live_server, language: str) -> None:
    """The browser has chosen ``language`` with the switch (the cookie it sets)."""
    context.add_cookies([{"name": "cbt_language", "value": language, "url": live_server}])


def candidate_logs_in(page, live_server, booked):
    at_seat_pc(page, live_server, booked)
    page.goto(live_server + "/")
    page.locator("#admission_code").fill(booked.admission_code)
    page.locator("#date_of_birth").fill(booked.date_of_birth.isoformat())
    page.locator("main form button[type=submit]").click()


def clock_polls(page, times: int) -> None:
    """Wait until the candidate's page has asked the server for its clock ``times`` more times:
    at least (times - 1) poll intervals have then passed in the page."""
    for _ in range(times):
        with page.expect_response(lambda response: "/api/sitting/clock" in response.url, timeout=10000):
            pass


def console_errors(page) -> list[str]:
    """What the page logs as errors. The browser's own request for /favicon.ico (the app serves
    none; no page links one) is not a page's error."""
    errors: list[str] = []

    def logged(message) -> None:
        where = message.location.get("url", "")
        if message.type == "error" and not where.endswith("/favicon.ico"):
            errors.append(f"{message.text} ({where})")

    page.on("console", logged)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def test_a_proctor_runs_a_sitting_from_the_console(page, browser, live_server, session, program):
    booked = booked_candidate(session, program, dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5),
                              checked_in=False)
    booking = session.get(Booking, booked.booking_id)
    booking.seat_id = None
    booking.candidate.name_kana = "ヤマダ タロウ"
    session.commit()
    proctor = page
    reading(proctor.context, live_server, "en")
    errors = console_errors(proctor)
    candidate_context = browser.new_context(viewport={"width": 1280, "height": 900})
    reading(candidate_context, live_server, "en")
    candidate = candidate_context.new_page()
    violations: dict[str, list[str]] = {}

    proctor.goto(live_server + "/proctor/")
    proctor.get_by_label("Username").fill(booked.proctor)
    proctor.get_by_label("Password").fill(booked.password)
    proctor.get_by_role("button", name="Log in").click()
    board = proctor.locator("#board-live")
    waiting = board.locator(f"#booking-{booked.booking_id}")
    expect(waiting).to_contain_text("not seated")
    expect(waiting).to_contain_text("ヤマダ タロウ")
    expect(board.locator(".seat-map .seat-label")).to_have_text(["S-1", "S-2", "S-3", "S-4", "not seated"])
    violations["board"] = serious_accessibility_violations(proctor)

    # Check in from the seat's panel: the identity check reads the kana; the page stays on the panel.
    proctor.locator(f"#open-{booked.booking_id}").click()
    panel_url = proctor.url
    expect(proctor.locator("h1")).to_contain_text("ヤマダ タロウ")
    violations["panel before check-in"] = serious_accessibility_violations(proctor)
    proctor.get_by_label(re.compile(r"The photo ID shows .*\(ヤマダ タロウ\)")).check()
    proctor.get_by_role("button", name="Check in").click()
    expect(proctor.locator(".flash")).to_contain_text("is checked in at seat S-1")
    assert proctor.url == panel_url

    # The candidate logs in at the seat; the proctor starts the sitting from the same panel.
    # The panel follows the candidate's login by itself, and offers the actions that now apply.
    expect(proctor.locator("#panel-status")).to_have_text("checked in")
    candidate_logs_in(candidate, live_server, booked)
    expect(candidate.locator("#start-button")).to_be_attached()
    expect(proctor.locator("#panel-status")).to_have_text("logged in", timeout=5000)
    expect(proctor.locator("#panel-changed")).to_be_visible()
    proctor.get_by_role("link", name="Show the actions for it").click()
    proctor.get_by_role("button", name="Start the sitting").click()
    expect(proctor.locator("#panel-status")).to_have_text("in progress")
    question = candidate.locator("#question-title")
    expect(question).to_contain_text("1", timeout=10000)
    candidate.keyboard.press("2")
    expect(candidate.locator("#save-status")).not_to_be_empty()
    candidate.keyboard.press("n")
    candidate.keyboard.press("n")
    expect(question).to_contain_text("3")

    # The board: the seat's tile says the state in words, the question reached and the time left as the
    # candidate's timer shows it (h:mm:ss, a few seconds apart at most).
    proctor.get_by_role("link", name="← Back to the live board").click()
    tile = board.locator(f"#booking-{booked.booking_id}")
    expect(tile.locator(".seat-status")).to_have_text("in progress")
    expect(tile.locator(".item-reached")).to_have_text("Q3")
    expect(tile.locator(".time-left")).to_have_text(re.compile(r"^1:5\d:\d\d$"))

    def seconds(text: str) -> int:
        hours, minutes, secs = (int(part) for part in text.split(":"))
        return hours * 3600 + minutes * 60 + secs

    assert abs(seconds(tile.locator(".time-left").inner_text()) - seconds(candidate.locator("#timer").inner_text())) <= 3
    for name, (width, height) in SIZES.items():
        proctor.set_viewport_size({"width": width, "height": height})
        proctor.screenshot(path=str(SCREENSHOTS / f"board-en-{name}.png"), full_page=True)
    proctor.set_viewport_size({"width": 1280, "height": 900})

    # Pause, in place: the candidate's screen shows it within seconds and the clock stands still
    # across two of its polls of the server's clock.
    tile.get_by_role("link").click()
    violations["panel in progress"] = serious_accessibility_violations(proctor)
    for name, (width, height) in SIZES.items():
        proctor.set_viewport_size({"width": width, "height": height})
        proctor.screenshot(path=str(SCREENSHOTS / f"panel-en-{name}.png"), full_page=True)
    proctor.set_viewport_size({"width": 1280, "height": 900})
    proctor.get_by_label("Reason").first.fill("Fire alarm")
    proctor.get_by_role("button", name="Pause the sitting").click()
    expect(proctor.locator("#panel-status")).to_have_text("paused")
    expect(candidate.locator("#paused")).to_be_visible(timeout=6000)
    frozen = candidate.locator("#timer").inner_text()
    clock_polls(candidate, 2)
    assert candidate.locator("#timer").inner_text() == frozen

    proctor.get_by_role("button", name="Resume the sitting").click()
    expect(proctor.locator("#panel-status")).to_have_text("in progress")
    expect(candidate.locator("#paused")).to_be_hidden(timeout=6000)
    expect(candidate.locator("#timer")).not_to_have_text(frozen, timeout=3000)

    # Add time: the candidate's clock jumps by it.
    proctor.get_by_label("Minutes to add").fill("10")
    proctor.locator("#add-reason").fill("Time lost to the alarm")
    proctor.get_by_role("button", name="Add the time").click()
    expect(proctor.locator(".flash")).to_contain_text("10 more minutes")
    expect(candidate.locator("#timer")).to_have_text(re.compile(r"^2:0\d:\d\d$"), timeout=6000)

    # Move seat: the old PC is locked out; at the new seat the sitting goes on at question 3 with its time.
    proctor.get_by_label("New seat").select_option(label="S-2")
    proctor.locator("#move-reason").fill("PC froze")
    proctor.get_by_role("button", name="Move the sitting").click()
    expect(proctor.locator("#panel-seat")).to_have_text("S-2")
    expect(candidate.locator("#admission_code")).to_be_visible(timeout=8000)
    session.expire_all()
    kept = session.scalar(select(Sitting).where(Sitting.booking_id == booked.booking_id)).remaining_seconds
    new_seat = candidate_context.new_page()
    candidate_logs_in(new_seat, live_server, booked)
    expect(new_seat.locator("#paused")).to_be_visible()
    proctor.get_by_role("button", name="Resume the sitting").click()
    expect(new_seat.locator("#paused")).to_be_hidden(timeout=6000)
    expect(new_seat.locator("#question-title")).to_contain_text("3")
    assert abs(seconds(new_seat.locator("#timer").inner_text()) - kept) <= 3

    # End the sitting: not without the confirmation (the browser keeps the form; the sitting runs on).
    proctor.locator("#end-reason").fill("Phone in use")
    proctor.get_by_role("button", name="End the sitting").click()
    expect(proctor.locator("#panel-status")).to_have_text("in progress")
    assert proctor.locator("#end-confirm").evaluate("box => box.validity.valueMissing")
    proctor.get_by_label(re.compile("cannot be resumed")).check()
    proctor.get_by_role("button", name="End the sitting").click()
    expect(proctor.locator("#panel-status")).to_have_text("ended")
    expect(new_seat.locator("#admission_code")).to_be_visible(timeout=8000)
    candidate_logs_in(new_seat, live_server, booked)
    expect(new_seat.locator("main")).to_contain_text("ended without a score", timeout=8000)

    proctor.get_by_role("link", name="← Back to the live board").click()
    expect(board.locator(f"#booking-{booked.booking_id} .seat-status")).to_have_text("ended")
    proctor.get_by_role("link", name="End-of-day report").click()
    expect(proctor.locator("#total-ended")).to_have_text("1")
    violations["report"] = serious_accessibility_violations(proctor)
    candidate_context.close()

    session.expire_all()
    actions = session.scalars(select(AuditEvent.action).where(AuditEvent.centre_id == booked.centre_id)
                              .order_by(AuditEvent.id)).all()
    assert actions == ["check_in", "start", "pause", "resume", "add_time", "move_seat", "resume", "end"]
    assert {name: found for name, found in violations.items() if found} == {}
    assert errors == []


def test_the_console_in_japanese_with_its_own_security_policy(browser, live_server, session, program):
    """The board, a panel and the report in Japanese, under the app's real Content-Security-Policy
    (axe is evaluated through the driver, not added as a script): no console error, axe-clean,
    screenshots at both sizes."""
    now = dt.datetime.now(dt.timezone.utc)
    running = booked_candidate(session, program, now - dt.timedelta(minutes=7))
    for n in range(2):
        booked_candidate(session, program, now - dt.timedelta(minutes=7), checked_in=n == 0,
                         centre_id=running.centre_id)
    booking = session.get(Booking, running.booking_id)
    booking.candidate.name_kana = "スズキ ハナコ"
    booking.large_text, booking.time_multiplier = True, 1.5
    session.commit()
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors = console_errors(page)
    violations: dict[str, list[str]] = {}

    def axe(name: str) -> None:
        page.evaluate(AXE.read_text() + "\n;0")
        results = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
        violations[name] = [f"{v['id']} ({v['impact']}): {v['help']}" for v in results["violations"]
                            if v["impact"] in ("serious", "critical")]

    page.goto(live_server + "/staff/login")
    page.locator("#username").fill(running.proctor)
    page.locator("#password").fill(running.password)
    page.locator("main form button[type=submit]").click()
    page.goto(live_server + "/proctor/")
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect(page.locator("#seat-map-heading")).to_have_text("座席表")
    tile = page.locator(f"#booking-{running.booking_id}")
    expect(tile.locator(".seat-status")).to_have_text("受付済")
    expect(tile).to_contain_text("スズキ ハナコ")
    expect(tile).to_contain_text("時間×1.5")
    # The live part is polled and swapped in: "updated" moves on without a console error.
    updated = page.locator(".board-summary .aside").inner_text()
    expect(page.locator(".board-summary .aside")).not_to_have_text(updated, timeout=5000)
    axe("board")
    for name, (width, height) in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(SCREENSHOTS / f"board-ja-{name}.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    page.set_viewport_size({"width": 1280, "height": 800})
    tile.get_by_role("link").click()
    expect(page.locator("#panel-kana")).to_have_text("スズキ ハナコ")
    axe("panel")
    for name, (width, height) in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(SCREENSHOTS / f"panel-ja-{name}.png"), full_page=True)

    page.goto(live_server + "/proctor/report")
    expect(page.locator("h1")).to_contain_text("日次報告")
    expect(page.locator("#total-no-shows")).to_have_text("0")
    expect(page.locator("#total-expected")).to_have_text("1")
    axe("report")
    page.screenshot(path=str(SCREENSHOTS / "report-ja-800x600.png"), full_page=True)
    context.close()
    assert {name: found for name, found in violations.items() if found} == {}
    assert errors == []
