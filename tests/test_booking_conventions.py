"""The applicant's pages as Japanese applicants use them, and what a new user tripped over (issues 16, 17):
input typed with an IME, フリガナ, the postal order of prefectures, the change deadline, the actions a
booking allows, refusals told as errors, error pages that keep the user in their area, the slip."""
from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
from sqlalchemy import select

from centers import bookings, calendar, candidates
from centers.accounts import Actor
from centers.bookings import normalise_admission_code
from centers.candidates import by_email
from centers.demo import DEMO_APPLICANT, demo_applicant_booking, load_centres, sample_centres
from centers.models import Booking, Candidate, Centre, Slot
from centers.prefectures import PREFECTURES, postal_order, prefecture_name
from persistence import typed_input
from persistence.errors import InvalidInput
from tests.centre_helpers import frozen_clock
from tests.helpers import booked_candidate, csrf_token, login_candidate, login_staff, new_centre


@pytest.fixture
def clock():
    return frozen_clock()  # Monday 3 June 2030, 09:30 in Tokyo


# ---- input as typed with an IME ---------------------------------------------------------------

@pytest.mark.parametrize("typed, plain", [
    ("ＡＢＣＤ－２３４５－６７８９", "ABCD-2345-6789"),  # full-width letters, digits and hyphen-minus
    ("abcd ２３４５ 6789", "ABCD-2345-6789"),  # lower case, spaces, mixed widths
    ("ABCDー2345ー6789", "ABCD-2345-6789"),  # the long-vowel mark the minus key gives in kana mode
    ("ABCD‐2345−6789", "ABCD-2345-6789"),  # a Unicode hyphen and a minus sign
    ("ｱbcd2345 6789", "BCD2-3456-789"),  # half-width katakana is no code letter: dropped
])
def test_admission_codes_typed_in_any_width_read_as_printed(typed, plain):
    assert normalise_admission_code(typed) == plain


@pytest.mark.parametrize("typed, plain", [
    ("ｈａｎａｋｏ＠ｅｘａｍｐｌｅ．ｃｏｍ", "hanako@example.com"),
    ("　Hanako@Example.COM　", "hanako@example.com"),  # ideographic spaces around it
    ("hanako-y@example.com", "hanako-y@example.com"),
])
def test_e_mail_addresses_are_folded_and_lower_cased(typed, plain):
    assert typed_input.email(typed) == plain == candidates.normalise_email(typed)


@pytest.mark.parametrize("typed, plain", [
    ("０３－１２３４－５６７８", "03-1234-5678"),
    ("03ー1234ー5678", "03-1234-5678"),
    ("（03）1234-5678", "03-1234-5678"),
    ("+81 3 1234 5678", "+81312345678"),
])
def test_phone_numbers_keep_digits_and_hyphens(typed, plain):
    assert typed_input.phone(typed) == plain


@pytest.mark.parametrize("typed", [
    "2000-04-01", "2000/4/1", "2000/04/01", "2000.4.1", "20000401", "2000年4月1日", "2000年4月1",
    "２０００／４／１", "２０００年４月１日", "２０００－０４－０１", " 2000 / 4 / 1 ", "平成12年4月1日", "平成１２年４月１日",
])
def test_dates_are_understood_as_people_write_them(typed):
    assert typed_input.date(typed) == dt.date(2000, 4, 1)


@pytest.mark.parametrize("typed", ["", "someday", "2000-13-45", "2000/2/30", "2000年4月", "平成32年1月1日x",
                                   "昭和64年2月1日x", "令和元年4月30日", "x" * 5000, "2000-04-01\x00"])
def test_what_is_not_a_date_is_none(typed):
    # 令和 began on 1 May 2019: 令和元年4月30日 is no day.
    assert typed_input.date(typed) is None


def test_japanese_eras_and_their_first_year():
    assert typed_input.date("令和元年5月1日") == dt.date(2019, 5, 1)
    assert typed_input.date("昭和55年12月24日") == dt.date(1980, 12, 24)


@pytest.mark.parametrize("typed, reading", [
    ("ヤマダ ハナコ", "ヤマダ ハナコ"), ("ヤマダ　ハナコ", "ヤマダ ハナコ"), ("やまだ はなこ", "ヤマダ ハナコ"),
    ("ﾔﾏﾀﾞ ﾊﾅｺ", "ヤマダ ハナコ"), ("スミス・ジョン", "スミス・ジョン"), ("オオノ　ユーコ", "オオノ ユーコ"),
])
def test_readings_are_made_full_width_katakana(typed, reading):
    assert typed_input.kana(typed) == reading and typed_input.is_katakana(reading)


@pytest.mark.parametrize("reading", ["山田 花子", "Yamada Hanako", "ヤマダ1", "ヤマダ-ハナコ", "ヤマダ、ハナコ", ""])
def test_a_reading_in_anything_but_katakana_is_refused(reading):
    assert not typed_input.is_katakana(typed_input.kana(reading))


# ---- registration: 氏名 and フリガナ, dates typed -------------------------------------------------

def register(client, **changes):
    form = {"name": "山田 花子", "name_kana": "ヤマダ ハナコ", "date_of_birth": "2001/2/3",
            "email": f"{uuid.uuid4().hex[:10]}@example.com", "password": "a-good-long-password",
            "occupation": "student", "company_type": ""}
    form.update(changes)
    return client.post("/booking/register", data={"csrf_token": csrf_token(client, "/booking/register"), **form}), form


def test_registration_takes_the_reading_in_katakana_and_dates_and_e_mail_as_typed(client, session):
    response, form = register(client, name_kana="やまだ　はなこ", date_of_birth="２００１年２月３日",
                              email="ＨＡＮＡＫＯ．" + uuid.uuid4().hex[:6] + "＠ｅｘａｍｐｌｅ．ｃｏｍ")
    assert response.status_code == 302
    candidate = session.scalar(select(Candidate).order_by(Candidate.id.desc()).limit(1))
    assert (candidate.name, candidate.name_kana, candidate.date_of_birth) == ("山田 花子", "ヤマダ ハナコ",
                                                                               dt.date(2001, 2, 3))
    assert candidate.email.startswith("hanako.") and candidate.email.endswith("@example.com")


def test_a_name_in_kanji_needs_its_reading_a_name_in_latin_letters_does_not(client, session):
    missing, _ = register(client, name_kana="")
    assert missing.status_code == 422 and "reading of your name in katakana" in missing.get_data(as_text=True)
    wrong, _ = register(client, name_kana="Yamada Hanako")
    assert wrong.status_code == 422 and "full-width katakana" in wrong.get_data(as_text=True)
    latin, _ = register(client.application.test_client(), name="Hanako Yamada", name_kana="")
    assert latin.status_code == 302


def test_registration_problems_read_in_japanese(app):
    client = app.test_client()
    client.delete_cookie("cbt_language")
    response, _ = register(client, name_kana="", date_of_birth="いつか")
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and '<html lang="ja"' in page
    assert "氏名のフリガナをカタカナで入力してください。" in page and "生年月日を入力してください" in page


def test_the_service_refuses_a_reading_that_is_not_katakana(session, program, clock):
    with pytest.raises(candidates.RegistrationError) as refused:
        candidates.register(session, name="佐藤 一郎", name_kana="さとう1", date_of_birth=dt.date(1990, 1, 1),
                            email="sato@example.com", password="a-good-long-password", occupation="student",
                            company_type=None, today=dt.date(2030, 6, 3))
    assert set(refused.value.problems) == {"name_kana"}
    assert isinstance(refused.value.problems["name_kana"], InvalidInput)


# ---- centres: names in Japanese, the postal order of prefectures ----------------------------

def test_the_47_prefectures_in_postal_order_from_hokkaido_to_okinawa():
    assert [p.code for p in PREFECTURES] == [f"{n:02d}" for n in range(1, 48)]
    assert (PREFECTURES[0].ja, PREFECTURES[12].ja, PREFECTURES[-1].ja) == ("北海道", "東京都", "沖縄県")
    assert postal_order("東京都") == postal_order("Tokyo") == postal_order("東京") == 13
    assert postal_order("Atlantis") == 99
    assert (prefecture_name("Osaka", "ja"), prefecture_name("大阪府", "en")) == ("大阪府", "Osaka")


def test_the_sample_centres_are_named_in_japanese_in_the_postal_order():
    centres = sample_centres()
    assert all(postal_order(c["prefecture"]) < 99 and c["name"].endswith("テストセンター") and c["name_en"]
               for c in centres)
    orders = [postal_order(c["prefecture"]) for c in centres]
    assert orders == sorted(orders) and len(set(orders)) == 47
    regions = [c["region"] for c in centres]
    assert regions[0] == "Hokkaido" and regions[-1] == "Kyushu"


def test_the_booking_page_lists_centres_in_postal_order_in_the_reader_s_language(app, session, program, clock):
    load_centres(session, sample_centres())
    session.commit()
    client = app.test_client()
    client.delete_cookie("cbt_language")
    register(client)
    page = client.get("/booking/find").get_data(as_text=True)
    choices = re.findall(r'<option value="\d+"[^>]*>([^<]+)</option>', page)
    assert choices[0].startswith("北海道: ") and choices[-1] == "沖縄県: 那覇テストセンター"
    tokyo, kanagawa, okinawa = (page.index(t) for t in ("東京都: 新宿テストセンター", "神奈川県:", "沖縄県:"))
    assert tokyo < kanagawa < okinawa and '<optgroup label="関東">' in page
    client.set_cookie("cbt_language", "en")
    english = client.get("/booking/find").get_data(as_text=True)
    assert "Tokyo: Shinjuku Test Centre" in english and '<optgroup label="Kanto">' in english
    ordered = calendar.centres_by_region(session)
    assert [postal_order(c.prefecture) for c in ordered] == sorted(postal_order(c.prefecture) for c in ordered)


# ---- the change deadline, the actions allowed, refusals as errors --------------------------------

def centre_with_calendar(session, program, clock, seats=2):
    centre = new_centre(session, seats=seats)
    calendar.extend_calendar(session, program, calendar.local_today(program, clock.now), 20, [centre.id])
    session.commit()
    return centre


def slot_on(session, centre, day, kind="morning") -> Slot:
    session.expire_all()
    return session.scalar(select(Slot).where(Slot.centre_id == centre.id, Slot.date == day, Slot.kind == kind))


def test_booking_inside_the_change_deadline_is_warned_of_before_it_is_made(client, session, program, clock):
    centre = centre_with_calendar(session, program, clock)
    today = calendar.local_today(program, clock.now)
    register(client)
    page = client.get(f"/booking/find?centre={centre.id}").get_data(as_text=True)
    # Tomorrow is bookable but inside the 3 days: its buttons say so, and the page explains it.
    assert 'id="deadline-warning"' in page and "cannot be changed once booked" in page
    tomorrow = slot_on(session, centre, today + dt.timedelta(days=1))
    token = csrf_token(client, "/booking/")
    warned = client.post("/booking/book", data={"csrf_token": token, "slot_id": tomorrow.id, "large_text": "yes",
                                                "seat_need": "front"})
    text = warned.get_data(as_text=True)
    assert warned.status_code == 200 and "can be neither moved nor cancelled" in text
    assert session.scalar(select(Booking).where(Booking.slot_id == tomorrow.id)) is None  # nothing booked yet
    assert 'name="confirmed" value="yes"' in text and 'name="seat_need" value="front"' in text
    booked = client.post("/booking/book", data={"csrf_token": token, "slot_id": tomorrow.id, "confirmed": "yes",
                                               "large_text": "yes", "seat_need": "front"})
    assert "/slip" in booked.headers["Location"]
    booking = session.scalar(select(Booking).where(Booking.slot_id == tomorrow.id))
    assert (booking.large_text, booking.seat_need) == (True, "front")

    # Outside the deadline: booked at once, no warning.
    other = app_client(client)
    register(other)
    later = slot_on(session, centre, today + dt.timedelta(days=5))
    assert "/slip" in other.post("/booking/book", data={"csrf_token": csrf_token(other, "/booking/"),
                                                        "slot_id": later.id}).headers["Location"]


def app_client(client):
    return client.application.test_client()


def test_after_booking_only_the_allowed_actions_are_shown(client, session, program, clock):
    centre = centre_with_calendar(session, program, clock)
    today = calendar.local_today(program, clock.now)
    register(client)
    token = csrf_token(client, "/booking/")
    slot = slot_on(session, centre, today + dt.timedelta(days=2))
    client.post("/booking/book", data={"csrf_token": token, "slot_id": slot.id, "confirmed": "yes"})
    booking = session.scalar(select(Booking).where(Booking.slot_id == slot.id))
    assert bookings.allowance(program, booking, clock.now).can_cancel is False  # the service's rule
    page = client.get("/booking/").get_data(as_text=True)
    assert "Move this booking" not in page and "Cancel the booking" not in page
    assert "Moves and cancellation until" not in page and "You can move or cancel" not in page
    assert 'class="notice"' in page and "the last day for this one was 2030-06-02" in page
    assert "can no longer be moved or cancelled" in page

    # A refused cancellation sent anyway is told as an error, not in the green banner.
    refused = client.post(f"/booking/{booking.id}/cancel", data={"csrf_token": token, "confirm": "yes"})
    shown = client.get(refused.headers["Location"]).get_data(as_text=True)
    assert 'class="flash flash-error" role="alert"' in shown and "until 3 days before the sitting" in shown
    assert 'class="flash" role="status"' not in shown
    session.expire_all()
    assert session.get(Booking, booking.id).status == "booked"


def test_a_booking_with_time_to_spare_offers_move_and_cancel_until_its_deadline(client, session, program, clock):
    centre = centre_with_calendar(session, program, clock)
    today = calendar.local_today(program, clock.now)
    register(client)
    slot = slot_on(session, centre, today + dt.timedelta(days=10))
    client.post("/booking/book", data={"csrf_token": csrf_token(client, "/booking/"), "slot_id": slot.id})
    page = client.get("/booking/").get_data(as_text=True)
    assert "Move this booking" in page and "Cancel the booking" in page
    assert "until Mon 10 June 2030" in page and "2 moves left" in page  # 13 June, 3 days before


def test_the_booking_records_the_language_the_applicant_reads(app, session, program, clock):
    centre = centre_with_calendar(session, program, clock)
    today = calendar.local_today(program, clock.now)
    for language in ("ja", "en"):
        client = app.test_client()
        client.set_cookie("cbt_language", language)
        register(client)
        slot = slot_on(session, centre, today + dt.timedelta(days=6), {"ja": "morning", "en": "evening"}[language])
        client.post("/booking/book", data={"csrf_token": csrf_token(client, "/booking/"), "slot_id": slot.id})
        assert session.scalar(select(Booking.language).where(Booking.slot_id == slot.id)) == language
    # Staff (and the simulated year) book in the program's default language.
    staff_booked = booked_candidate(session, program, clock.now + dt.timedelta(days=1))
    assert session.get(Booking, staff_booked.booking_id).language is None  # made before bookings had one
    candidate = candidates.register(session, name="Taro", date_of_birth=dt.date(1990, 1, 1),
                                    email=f"{uuid.uuid4().hex[:8]}@example.com", password="a-good-long-password",
                                    occupation="student", company_type=None, today=today)
    session.commit()
    slot = slot_on(session, centre, today + dt.timedelta(days=7))
    made = bookings.reserve(session, program, slot.id, clock.now, candidate_id=candidate.id,
                            actor=Actor.operations("ops"))
    assert made.language == "ja"


# ---- the admission slip ---------------------------------------------------------------------------

def test_the_slip_has_a_print_button_the_reading_and_the_accommodations(app, session, program, clock):
    centre = centre_with_calendar(session, program, clock)
    today = calendar.local_today(program, clock.now)
    client = app.test_client()
    client.delete_cookie("cbt_language")
    register(client)
    slot = slot_on(session, centre, today + dt.timedelta(days=6))
    booked = client.post("/booking/book", data={"csrf_token": csrf_token(client, "/booking/"), "slot_id": slot.id,
                                                "large_text": "yes", "seat_need": "wheelchair"})
    slip = client.get(booked.headers["Location"]).get_data(as_text=True)
    assert 'id="print-button"' in slip and "print.js" in slip and "受験票を印刷する" in slip
    assert re.search(r'id="slip-kana" lang="ja">ヤマダ ハナコ<', slip)
    accommodations = slip.split('id="slip-accommodations"')[1].split("</dd>")[0]
    assert "画面の文字を大きくする" in accommodations and "車いす対応の座席" in accommodations
    assert "2001年2月3日" in slip and "2030年6月9日(日)" in slip  # born; the sitting


def test_a_slip_without_accommodations_says_none_were_asked_for(client, session, program, clock):
    centre = centre_with_calendar(session, program, clock)
    register(client, name="Hanako Yamada", name_kana="")
    slot = slot_on(session, centre, calendar.local_today(program, clock.now) + dt.timedelta(days=6))
    booked = client.post("/booking/book", data={"csrf_token": csrf_token(client, "/booking/"), "slot_id": slot.id})
    slip = client.get(booked.headers["Location"]).get_data(as_text=True)
    assert "none asked for" in slip and 'id="slip-kana"' not in slip


# ---- dead ends: the error page keeps the user's menu ------------------------------------------------

def test_a_refused_proctor_action_keeps_the_proctor_in_the_console(client, session, program, clock):
    booked = booked_candidate(session, program, clock.now + dt.timedelta(hours=2), checked_in=False)
    full_width = "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in booked.proctor)
    assert login_staff(client, full_width, booked.password).status_code == 302  # typed with an IME on
    refused = client.post(f"/proctor/bookings/{booked.booking_id}/no-show",
                          data={"csrf_token": csrf_token(client, "/proctor/")})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 409 and "only once the slot has started" in page
    assert 'class="console-nav"' in page and "Log out" in page and "Back to the live board" in page
    assert "Back to the start page" not in page


def test_a_psychometrician_s_dead_end_keeps_the_area_navigation(client):
    login_staff(client, "psychometrician", "psychometrician-demo-pass")
    missing = client.get("/psychometrician/items/NO-SUCH-ITEM")
    page = missing.get_data(as_text=True)
    assert missing.status_code == 404 and 'class="area-nav"' in page and "Back to the item bank" in page
    assert "Back to the start page" not in page


def test_an_applicant_s_error_page_keeps_the_booking_header(client, session):
    register(client)
    missing = client.get("/booking/2147483647/slip")
    page = missing.get_data(as_text=True)
    assert missing.status_code == 404 and "You have no such booking." in page
    assert "Sign out" in page and "山田 花子" in page and "Back to your bookings" in page


def test_the_seat_and_anyone_get_their_own_way_back(client, session, program, clock):
    anyone = client.get("/no-such-page")
    assert anyone.status_code == 404 and "Back to the start page" in anyone.get_data(as_text=True)
    seat = client.application.test_client()
    login_candidate(seat, booked_candidate(session, program, clock.now))
    lost = seat.get("/no-such-page").get_data(as_text=True)
    assert "Back to your exam" in lost and "There is no such page" in lost


def test_the_error_page_reads_in_japanese(app):
    client = app.test_client()
    client.delete_cookie("cbt_language")
    page = client.get("/no-such-page").get_data(as_text=True)
    assert "見つかりません" in page and "最初のページに戻る" in page


def test_a_database_fault_page_keeps_the_header_without_asking_the_database_again(app, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from delivery.web import errors

    client = app.test_client()
    register(client)

    def unreachable(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr("centers.bookings.upcoming_booking", unreachable)
    monkeypatch.setattr(errors, "_quietly", lambda lookup: pytest.fail("the error page asked the database"))
    response = client.get("/booking/")
    page = response.get_data(as_text=True)
    assert response.status_code == 503 and "nothing was lost" in page
    assert "Sign out" in page and "Back to your bookings" in page  # the applicant known before the fault


# ---- cbt demo ---------------------------------------------------------------------------------------

def test_the_demo_tells_the_applicant_s_booking_when_there_is_one(session, program, clock):
    applicant = session.scalar(select(Candidate).where(by_email(DEMO_APPLICANT[0])))
    assert demo_applicant_booking(session, program, clock.now) is None
    centre = new_centre(session)
    calendar.extend_calendar(session, program, calendar.local_today(program, clock.now), 10, [centre.id])
    session.commit()
    slot = slot_on(session, centre, calendar.local_today(program, clock.now) + dt.timedelta(days=6))
    made = bookings.reserve(session, program, slot.id, clock.now, candidate_id=applicant.id,
                            actor=Actor.candidate(applicant.id))
    assert demo_applicant_booking(session, program, clock.now).id == made.id


def test_cbt_demo_prints_the_applicant_s_booking(engine, session, program, monkeypatch):
    from click.testing import CliRunner

    from delivery.cli import main
    from persistence import utcnow

    monkeypatch.setenv("CBT_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    runner = CliRunner()
    assert "registered, no booking yet" in runner.invoke(main, ["demo"], catch_exceptions=False).output
    applicant = session.scalar(select(Candidate).where(by_email(DEMO_APPLICANT[0])))
    centre = session.scalar(select(Centre).where(Centre.code == "TKY-SJK"))
    today = calendar.local_today(program, utcnow())
    calendar.extend_calendar(session, program, today, 10, [centre.id])
    session.commit()
    slot = slot_on(session, centre, today + dt.timedelta(days=6))
    made = bookings.reserve(session, program, slot.id, utcnow(), candidate_id=applicant.id,
                            actor=Actor.candidate(applicant.id))
    output = runner.invoke(main, ["demo"], catch_exceptions=False).output
    assert "no booking yet" not in output and f"admission code {made.admission_code}" in output
