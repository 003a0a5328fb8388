"""Japanese first, English beside it: the catalogue is complete, the switch is remembered,
dates read as each language writes them."""
from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

from tests.helpers import csrf_token

REPO = Path(__file__).resolve().parents[1]
CATALOGUE = REPO / "delivery" / "web" / "translations" / "ja" / "LC_MESSAGES" / "messages.po"


def test_every_user_facing_message_has_its_japanese_translation(tmp_path):
    template = tmp_path / "messages.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F",
                    "delivery/web/babel.cfg", "-o", str(template), "."], cwd=REPO, check=True, capture_output=True)
    with template.open("rb") as handle:
        extracted = {message.id for message in read_po(handle) if message.id}
    with CATALOGUE.open("rb") as handle:
        translated = {message.id: message.string for message in read_po(handle) if message.id}
    missing = sorted(str(m) for m in extracted if not translated.get(m))
    assert extracted and missing == [], f"{len(missing)} messages have no Japanese translation: {missing[:20]}"


def test_pages_are_japanese_by_default_and_english_when_chosen(app):
    client = app.test_client()
    client.delete_cookie("cbt_language")
    page = client.get("/staff/login").get_data(as_text=True)
    assert '<html lang="ja"' in page and "本文へスキップ" in page
    chosen = client.post("/language", data={"csrf_token": csrf_token(client, "/staff/login"), "language": "en",
                                            "next": "/staff/login"})
    assert chosen.status_code == 303 and chosen.headers["Location"] == "/staff/login"
    page = client.get("/staff/login").get_data(as_text=True)
    assert '<html lang="en"' in page and "Skip to content" in page


def test_the_switch_never_sends_anyone_to_another_site(app):
    client = app.test_client()
    chosen = client.post("/language", data={"csrf_token": csrf_token(client, "/staff/login"), "language": "en",
                                            "next": "//elsewhere.example/"})
    assert chosen.headers["Location"] == "/"
    unknown = client.post("/language", data={"csrf_token": csrf_token(client, "/staff/login"), "language": "xx"})
    assert "cbt_language" not in unknown.headers.get("Set-Cookie", "")


def test_dates_and_times_as_each_language_writes_them(app):
    from delivery.web.i18n import local_date, local_date_time

    moment = dt.datetime(2026, 12, 1, 0, 30, tzinfo=dt.timezone.utc)  # 09:30 in Tokyo
    with app.test_request_context("/"):
        assert local_date(dt.date(2026, 12, 1)) == "2026年12月1日(火)"
        assert local_date_time(moment) == "2026年12月1日(火) 09:30"
    with app.test_request_context("/", headers={"Cookie": "cbt_language=en"}):
        assert local_date_time(moment) == "Tue 1 December 2026 09:30"


def test_the_program_s_own_names_read_in_japanese(app, session, program, clock):
    from tests.helpers import booked_candidate, login_candidate, start_sitting

    client = app.test_client()
    client.delete_cookie("cbt_language")
    booked = booked_candidate(session, program, clock.now)
    login_candidate(client, booked)
    start_sitting(client)
    page = client.get("/sitting").get_data(as_text=True)
    assert "ITパスポート（サンプル試験）" in page
    import json
    import re

    names = json.loads(re.search(r'<script type="application/json" id="field-names">(.*?)</script>', page).group(1))
    assert names == {"strategy": "ストラテジ系", "management": "マネジメント系", "technology": "テクノロジ系"}
