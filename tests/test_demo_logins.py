"""`cbt demo` prints every demo login in Japanese and in English, and says truly whether the
demo applicant has a booking (issues 16 and 17)."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from centers.candidates import by_email
from centers.demo import DEMO_APPLICANT, DEMO_CENTRE
from centers.models import Candidate, Centre, Slot
from delivery.cli import main


@pytest.fixture
def demo(engine, monkeypatch, clock):
    monkeypatch.setenv("CBT_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setattr("delivery.cli.operations.utcnow", lambda: clock.now)

    def run() -> str:
        result = CliRunner().invoke(main, ["demo"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    return run


def test_the_demo_prints_its_logins_in_japanese_then_in_english(demo):
    output = demo()
    japanese, english = output.split("Demo logins")
    assert "デモ用のログイン" in japanese
    for text in (japanese, english):
        assert text.count("2000-04-01") == 2  # the two demo candidates' admission codes, with their date of birth
        assert "proctor-demo-pass" in text and "psychometrician-demo-pass" in text and DEMO_APPLICANT[0] in text
    assert "受付済み、すぐに受験できます" in japanese and "checked in, ready to sit" in english
    assert "まだ予約はありません" in japanese and "no booking yet" in english
    assert "120 分" in japanese and "120 minutes" in english
    codes = re.findall(r"受験番号 ([0-9A-Z-]+)、", japanese)
    assert len(codes) == 2 and all(f"admission code {code}," in english for code in codes)


def test_the_demo_says_which_booking_the_applicant_has(demo, session, program, clock):
    from centers import bookings, calendar
    from centers.accounts import Actor

    demo()
    applicant = session.scalar(select(Candidate).where(by_email(DEMO_APPLICANT[0])))
    centre = session.scalar(select(Centre).where(Centre.code == DEMO_CENTRE))
    today = calendar.local_today(program, clock.now)
    calendar.extend_calendar(session, program, today, 14, [centre.id])
    session.commit()
    slot = session.scalar(select(Slot).where(Slot.centre_id == centre.id, Slot.date >= today + dt.timedelta(days=6),
                                             Slot.kind == "morning").order_by(Slot.starts_at))
    made = bookings.reserve(session, program, slot.id, clock.now, candidate_id=applicant.id,
                            actor=Actor.candidate(applicant.id))
    output = demo()
    day = slot.date
    assert f"予約済み：{day.year}年{day.month}月{day.day}日 午前、会場 {DEMO_CENTRE}、受験番号 {made.admission_code}" in output
    assert f"booked for {day.isoformat()} morning at {DEMO_CENTRE}, admission code {made.admission_code}" in output
    assert "no booking yet" not in output and "まだ予約はありません" not in output
