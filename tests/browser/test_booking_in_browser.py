"""The applicant's pages in a real headless chromium, in Japanese and in English: registering as
typed with an IME, booking inside the change deadline (warned first), the slip, the bookings page,
a dead end; no console error, no horizontal scroll, axe-core clean, screenshots for review."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from playwright.sync_api import expect

from centers import calendar
from persistence import utcnow
from tests.browser.conftest import serious_accessibility_violations
from tests.helpers import new_centre

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots" / "applicant"


def shoot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width, height in ((1280, 800), (800, 600)):
        page.set_viewport_size({"width": width, "height": height})
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), f"{name} scrolls sideways"
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}x{height}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})


@pytest.mark.parametrize("language", ["ja", "en"])
def test_an_applicant_registers_books_inside_the_deadline_and_prints_the_slip(page, live_server, session, program,
                                                                            language):
    centre = new_centre(session, seats=3)
    centre.name, centre.name_en, centre.prefecture = "新宿西口テストセンター", "Shinjuku Nishiguchi Test Centre", "東京都"
    today = calendar.local_today(program, utcnow())
    calendar.extend_calendar(session, program, today, 20, [centre.id])
    session.commit()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    if language == "ja":
        page.context.clear_cookies()
    words = {"ja": {"name": "氏名（写真付き本人確認書類のとおりに）", "kana": "フリガナ（全角カタカナ）", "born": "生年月日",
                    "email": "メールアドレス", "password": "パスワード（10文字以上）", "student": "学生", "register": "新規登録",
                    "centre": "試験センター", "show": "空き状況を表示", "anyway": "この試験枠で予約する",
                    "slip": "受験票", "bookings": "予約一覧", "print": "受験票を印刷する"},
             "en": {"name": "Full name (氏名), as on your photo ID", "kana": "Reading of your name in katakana (フリガナ)",
                    "born": "Date of birth", "email": "E-mail address", "password": "Password (at least 10 characters)",
                    "student": "student", "register": "Register", "centre": "Test centre",
                    "show": "Show free places", "anyway": "Book this sitting anyway", "slip": "Admission slip",
                    "bookings": "Your bookings", "print": "Print the slip"}}[language]
    violations: dict[str, list[str]] = {}

    page.goto(live_server + "/booking/register")
    expect(page.locator("html")).to_have_attribute("lang", language)
    shoot(page, f"register-{language}")
    page.get_by_label(words["name"]).fill("山田 花子")
    page.get_by_label(words["kana"]).fill("やまだ　はなこ")  # hiragana, an ideographic space: made katakana
    page.get_by_label(words["born"], exact=True).fill("２００１年２月３日")  # full-width, as an IME types it
    page.get_by_label(words["email"]).fill(f"ｈａｎａｋｏ{uuid.uuid4().hex[:6]}＠ｅｘａｍｐｌｅ．ｃｏｍ")
    page.get_by_label(words["password"]).fill("a-good-long-password")
    page.get_by_label(words["student"], exact=True).check()
    violations["register"] = serious_accessibility_violations(page)
    page.get_by_role("button", name=words["register"], exact=True).click()

    page.get_by_label(words["centre"]).select_option(str(centre.id))
    page.get_by_role("button", name=words["show"]).click()
    expect(page.locator("#deadline-warning")).to_be_visible()
    violations["find"] = serious_accessibility_violations(page)
    shoot(page, f"find-{language}")
    # The first free place is tomorrow's morning: inside the change deadline, so warned of first.
    page.locator("table.calendar tbody tr").first.locator("button").first.click()
    expect(page.locator("#deadline-warning")).to_be_visible()
    violations["confirm"] = serious_accessibility_violations(page)
    shoot(page, f"confirm-{language}")
    page.get_by_role("button", name=words["anyway"]).click()

    expect(page.get_by_role("heading", name=words["slip"])).to_be_visible()
    expect(page.locator("#slip-kana")).to_have_text("ヤマダ ハナコ")
    expect(page.get_by_role("button", name=words["print"])).to_be_visible()
    violations["slip"] = serious_accessibility_violations(page)
    shoot(page, f"slip-{language}")

    page.get_by_role("link", name=words["bookings"]).first.click()
    expect(page.locator(".notice")).to_be_visible()  # past its deadline: no Move, no Cancel
    assert page.locator("form[action$='/cancel']").count() == 0 and page.locator("a[id^='move-']").count() == 0
    violations["bookings"] = serious_accessibility_violations(page)
    shoot(page, f"bookings-{language}")

    seen = len(errors)
    page.goto(live_server + "/booking/2147483647/slip")  # a dead end keeps the booking header
    expect(page.locator("#error-message")).to_be_visible()
    # chromium tells the page's own 404 in the console; nothing else may be there.
    errors[seen:] = [e for e in errors[seen:] if "status of 404" not in e]
    expect(page.locator(".site-header .account")).to_have_text("山田 花子")
    violations["error"] = serious_accessibility_violations(page)
    shoot(page, f"error-{language}")

    page.goto(live_server + "/staff/login")
    violations["staff-login"] = serious_accessibility_violations(page)
    shoot(page, f"staff-login-{language}")
    page.goto(live_server + "/verify?code=ABCDE-FGHIJ")
    violations["verify"] = serious_accessibility_violations(page)
    shoot(page, f"verify-{language}")

    assert {k: v for k, v in violations.items() if v} == {}
    assert errors == []
