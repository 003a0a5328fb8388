"""A whole sitting in a real headless chromium, in Japanese and in English, with accessibility
checks, the page's language and its console on every page, and screenshots for review
(``var/screenshots/sitting/``, at 1280x800 and 800x600)."""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from centers.models import Booking
from delivery.models import Sitting, SittingItem
from scoring.models import ScoreResult
from tests.browser.conftest import at_seat_pc, serious_accessibility_violations
from tests.helpers import booked_candidate

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots" / "sitting"
SIZES = {"1280x800": (1280, 800), "800x600": (800, 600)}
CLOCK = re.compile(r"^\d:[0-5]\d:[0-5]\d$")  # h:mm:ss, as on the proctor's board

# What each page says, in each language: the test reads the page as its candidate would.
WORDS = {
    "ja": {
        "login": "受験者ログイン", "code": "受験番号", "birth": "生年月日", "log_in": "ログイン",
        "before": "試験を始める前に", "agree": "注意事項を読み、同意します。", "start": "試験を開始する",
        "rule": "試験時間は120分で、この回の開始時刻", "question": "問{n} (全100問)",
        "answered": "解答済み {n} / 100問", "saved": "解答を保存しました。", "flag": "見直しの印あり",
        "nav_marked": "問2、解答済み、印あり", "nav_answered": "問1、解答済み", "review": "見直し",
        "summary": "解答済み100問、未解答0問、印あり1問です。", "finish": "終了",
        "all_answered": "すべての問題に解答しています。", "confirm": "終了してスコアを見る",
        "score": "あなたのスコア", "pass": "合格", "fail": "不合格", "explained": "分野別スコアは、その分野の問題だけから推定します。",
        "report_link": "スコアレポート", "larger": "文字を大きく",
    },
    "en": {
        "login": "Candidate login", "code": "Admission code", "birth": "Date of birth", "log_in": "Log in",
        "before": "Before you start", "agree": "I have read the rules and agree to them.", "start": "Start the exam",
        "rule": "The exam lasts 120 minutes, counted from the start of your slot at", "question": "Question {n} of 100",
        "answered": "Answered {n} of 100", "saved": "Answer saved.", "flag": "Marked for review",
        "nav_marked": "Question 2, answered, marked", "nav_answered": "Question 1, answered", "review": "Review",
        "summary": "4 answered, 96 unanswered, 1 marked for review.", "finish": "Finish",
        "unanswered": "Not answered: 96 (4, 5, 6, 8,", "confirm": "Finish and see my score",
        "score": "Your score", "pass": "Pass", "fail": "Not passed", "explained": "A field score is estimated from the questions of that field alone.",
        "report_link": "Score report", "larger": "Make the text larger",
    },
}


def answered_in_database(session, booking_id) -> dict[int, int]:
    session.expire_all()
    rows = session.execute(
        select(SittingItem.position, SittingItem.chosen_option).join(Sitting)
        .where(Sitting.booking_id == booking_id, SittingItem.chosen_option.is_not(None))
    )
    return dict(rows.all())


class Seat:
    """The candidate's browser tab: checks each page it reaches and keeps what it found."""

    def __init__(self, page, language: str):
        self.page, self.language = page, language
        self.violations: dict[str, list[str]] = {}
        self.console_errors: list[str] = []
        page.on("console", lambda message: self.console_errors.append(f"{page.url}: {message.text}")
                if message.type == "error" else None)
        page.on("pageerror", lambda error: self.console_errors.append(f"{page.url}: {error}"))

    def check(self, name: str, lang: str | None = None, screenshots: bool = True) -> None:
        """axe-core, the page's lang, no horizontal scroll, and a screenshot at each size."""
        page = self.page
        assert page.evaluate("document.documentElement.lang") == (lang or self.language), name
        self.violations[name] = serious_accessibility_violations(page)
        if not screenshots:
            return
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for size, (width, height) in SIZES.items():
            page.set_viewport_size({"width": width, "height": height})
            assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth"), \
                f"{name} scrolls sideways at {size}"
            page.screenshot(path=str(SCREENSHOTS / f"{self.language}-{name}-{size}.png"), full_page=False)
        page.set_viewport_size({"width": 1280, "height": 800})


def in_view(page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    viewport = page.viewport_size
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"]


@pytest.mark.parametrize("language", ["ja", "en"])
def test_a_candidate_sits_the_whole_exam_in_a_browser(browser, live_server, session, program, language):
    words = WORDS[language]
    # The seat's browser is set up for its candidates' language (the date field's format follows it);
    # axe is injected as a script tag, which the app's Content-Security-Policy would refuse.
    context = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 800},
                                  locale={"ja": "ja-JP", "en": "en-GB"}[language])
    page = context.new_page()
    booked = booked_candidate(session, program, dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5))
    session.get(Booking, booked.booking_id).language = language
    session.commit()
    seat = Seat(page, language)

    # The login page speaks the program's language (Japanese) until the booking is known.
    at_seat_pc(page, live_server, booked)
    page.goto(live_server + "/")
    expect(page.get_by_role("heading", name=WORDS["ja"]["login"])).to_be_visible()
    seat.check("login", lang="ja")
    page.get_by_label(WORDS["ja"]["code"]).fill(booked.admission_code.lower().replace("-", ""))
    page.get_by_label(WORDS["ja"]["birth"]).fill(booked.date_of_birth.isoformat())
    page.get_by_role("button", name=WORDS["ja"]["log_in"], exact=True).click()

    # From here on, the booking's language.
    expect(page.get_by_role("heading", name=words["before"])).to_be_visible()
    expect(page.locator("#time-rule")).to_contain_text(words["rule"])
    expect(page.locator("#time-if-started")).to_have_text(re.compile(r"^1:59:[0-5]\d$|^2:00:00$"))
    seat.check("instructions")
    page.get_by_label(words["agree"]).check()
    page.get_by_role("button", name=words["start"]).click()

    question = page.locator("#question-title")
    expect(question).to_contain_text(words["question"].format(n=1))
    expect(page.locator("#timer")).to_have_text(re.compile(r"^1:5\d:\d\d$|^2:00:00$"))
    expect(page.locator("#answered-count")).to_have_text(words["answered"].format(n=0))
    # The item's text carries its own language (lang on the question's parts), the page's words the page's.
    item_language = page.evaluate("fetch('/api/sitting/questions').then(r => r.json()).then(q => q.items[0].language)")
    assert page.evaluate("document.getElementById('question-stem').lang") == (item_language or "")
    assert page.evaluate("document.getElementById('question-options').lang") == (item_language or "")
    assert page.evaluate("document.getElementById('question-title').closest('[lang]').lang") == language
    # The last row of the question list fits a 1280x800 screen as the page opens.
    assert in_view(page, "#navigator-list li:last-child button")
    seat.check("question")

    # Keyboard alone: choose with a digit, move on with N, mark with M: a flag, with words, shows it.
    page.keyboard.press("2")
    expect(page.locator("#save-status")).to_have_text(words["saved"])
    page.keyboard.press("n")
    expect(question).to_contain_text(words["question"].format(n=2))
    page.keyboard.press("4")
    page.keyboard.press("m")
    expect(page.locator("#save-status")).to_have_text(words["saved"])
    expect(page.locator("#question-flag")).to_be_visible()
    expect(page.locator("#question-flag")).to_have_text(re.compile(words["flag"]))
    expect(page.locator("#navigator-list li:nth-child(2) .nav-flag")).to_be_visible()
    expect(page.locator("#navigator-list li:nth-child(3) .nav-flag")).to_be_hidden()
    expect(page.locator("#answered-count")).to_have_text(words["answered"].format(n=2))
    seat.check("question-marked")
    # The mouse: the navigator, then an option.
    page.locator("#navigator-list button", has_text=re.compile(r"^7$")).click()
    expect(question).to_contain_text(words["question"].format(n=7))
    page.locator("label.option").nth(0).click()
    expect(page.locator("#save-status")).to_have_text(words["saved"])
    assert answered_in_database(session, booked.booking_id).keys() == {1, 2, 7}

    # A reload loses nothing and comes back to the same question.
    page.reload()
    expect(question).to_contain_text(words["question"].format(n=7))
    expect(page.locator("#question-options input").nth(0)).to_be_checked()
    expect(page.get_by_role("button", name=words["nav_marked"])).to_be_visible()
    expect(page.get_by_role("button", name=words["nav_answered"], exact=True)).to_be_visible()

    # The header stays in view when the page scrolls, at 800x600 and at the largest text size.
    page.set_viewport_size({"width": 800, "height": 600})
    before = page.evaluate("getComputedStyle(document.documentElement).fontSize")
    for _ in range(6):
        page.get_by_role("button", name=words["larger"]).click()
    assert page.evaluate("getComputedStyle(document.documentElement).fontSize") == "28px" != before
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    page.wait_for_function("window.scrollY > 0")
    for control in ("#timer", "#answered-count", "#review-button", "#finish-button"):
        assert in_view(page, control), control
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{language}-question-largest-text-scrolled-800x600.png"))
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    page.locator("[data-size=reset]").click()
    page.set_viewport_size({"width": 1280, "height": 800})
    page.evaluate("window.scrollTo(0, 0)")

    if language == "ja":
        # The whole exam: every question answered from the keyboard.
        page.locator("#navigator-list button", has_text=re.compile(r"^1$")).click()
        for position in range(1, 101):
            page.keyboard.press(str(1 + position % 4))
            if position < 100:
                page.keyboard.press("n")
        expect(question).to_contain_text(words["question"].format(n=100))
        expect(page.locator("#answered-count")).to_have_text(words["answered"].format(n=100))
        expect(page.locator("#save-status")).to_have_text(words["saved"])
    else:
        page.locator("#navigator-list button", has_text=re.compile(r"^3$")).click()
        page.keyboard.press("3")
        expect(page.locator("#save-status")).to_have_text(words["saved"])

    # The review screen lists answered, unanswered and marked questions.
    page.get_by_role("button", name=words["review"], exact=True).click()
    expect(page.locator("#review-summary")).to_have_text(words["summary"])
    seat.check("review")
    page.keyboard.press("r")

    # Finish: the confirmation says what is unanswered.
    page.get_by_role("button", name=words["finish"], exact=True).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(words["all_answered"] if language == "ja" else words["unanswered"])
    seat.check("finish-dialog")
    page.get_by_role("button", name=words["confirm"]).click()

    expect(page.get_by_role("heading", name=words["score"], exact=True)).to_be_visible()
    session.expire_all()
    result = session.scalar(select(ScoreResult).join(Sitting, Sitting.id == ScoreResult.sitting_id)
                            .where(Sitting.booking_id == booked.booking_id))
    expect(page.locator("#total-score")).to_have_text(str(result.total_score))
    expect(page.locator("#verdict")).to_have_text(words["pass"] if result.passed else words["fail"])
    expect(page.locator(".score-explained")).to_contain_text(words["explained"])
    # A bar per field against its minimum, its verdict written beside it.
    expect(page.locator("table.scores .bar-minimum")).to_have_count(1 + len(program.fields))
    expect(page.locator("table.scores .bar-verdict")).to_have_count(1 + len(program.fields))
    seat.check("result")
    expected = {1, 2, 3, 7} if language == "en" else set(range(1, 101))
    assert answered_in_database(session, booked.booking_id).keys() == expected

    # The printable report with its signed certificate.
    page.get_by_role("link", name=re.compile(words["report_link"])).click()
    expect(page.locator("#certificate-code")).to_be_visible()
    seat.check("report")

    # Back at the login page, still signed in at the seat: the booking's language.
    page.goto(live_server + "/")
    expect(page.get_by_role("heading", name=words["login"])).to_be_visible()
    seat.check("login-after", screenshots=False)

    context.close()
    assert {name: found for name, found in seat.violations.items() if found} == {}
    assert seat.console_errors == []
