"""The seat's pages: in the booking's language unless the user switched, one time rule said one
way, and a PC the sitting was moved away from says where it went."""
from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from centers.accounts import Actor
from centers.models import Booking, Seat, StaffAccount
from delivery import sittings
from delivery.console import format_remaining
from tests.helpers import booked_candidate, csrf_token, login_candidate


def book(session, program, clock, language=None, minutes_before=0):
    booked = booked_candidate(session, program, clock.now - dt.timedelta(minutes=minutes_before))
    session.get(Booking, booked.booking_id).language = language
    session.commit()
    return booked


def start(client, booked):
    login_candidate(client, booked)
    client.post("/start", data={"csrf_token": csrf_token(client, "/instructions"), "agree": "yes"})


def proctor_of(session, booked) -> Actor:
    return Actor.staff(session.scalar(select(StaffAccount).where(StaffAccount.username == booked.proctor)))


def html_lang(page: str) -> str:
    return re.search(r'<html lang="(\w+)"', page).group(1)


def test_the_seat_speaks_the_booking_language_unless_the_user_switched(app, session, program, clock):
    for language, heading in (("en", "Before you start"), ("ja", "試験を始める前に"), (None, "試験を始める前に")):
        seat = app.test_client()
        seat.delete_cookie("cbt_language")
        login_candidate(seat, book(session, program, clock, language))
        page = seat.get("/instructions").get_data(as_text=True)
        assert heading in page and html_lang(page) == (language or "ja"), language
        # The switch wins over the booking.
        seat.set_cookie("cbt_language", "ja" if language == "en" else "en")
        switched = seat.get("/instructions").get_data(as_text=True)
        assert html_lang(switched) == ("ja" if language == "en" else "en")


def test_the_instructions_state_the_rule_the_clock_applies(client, session, program, clock):
    late = book(session, program, clock, "en", minutes_before=3)
    login_candidate(client, late)
    page = client.get("/instructions").get_data(as_text=True)
    # The slot started at clock.now - 3 min (local time), 120 minutes from then.
    starts = (clock.now - dt.timedelta(minutes=3)).astimezone(dt.timezone(dt.timedelta(hours=9)))
    ends = starts + dt.timedelta(minutes=120)
    assert (f"The exam lasts 120 minutes, counted from the start of your slot at {starts:%H:%M}: "
            f"it ends at {ends:%H:%M} at the latest.") in page
    assert 'id="time-if-started" data-seconds="7020"' in page and ">1:57:00</strong>" in page
    client.post("/start", data={"csrf_token": csrf_token(client, "/instructions"), "agree": "yes"})
    # The clock gives what the page said: 117 minutes, shown h:mm:ss as on the proctor's board.
    remaining = client.get("/api/sitting/clock").get_json()["remaining_seconds"]
    assert remaining == 7020 and format_remaining(remaining) == "1:57:00"
    assert format_remaining(6785.9) == "1:53:05" and format_remaining(59) == "0:00:59"


def test_the_old_pc_says_where_the_sitting_continues_after_a_seat_move(app, session, program, clock):
    booked = book(session, program, clock, "en")
    old_pc = app.test_client()
    start(old_pc, booked)
    new_seat = session.scalar(select(Seat).where(Seat.label == "S-4", Seat.centre_id == booked.centre_id))
    sittings.move_seat(session, program, booked.booking_id, new_seat.id, clock.now, actor=proctor_of(session, booked),
                       reason="PC froze")

    clock_reply = old_pc.get("/api/sitting/clock")
    assert clock_reply.status_code == 401
    assert clock_reply.get_json()["moved_to_seat"] == "S-4"
    assert clock_reply.get_json()["error"].startswith("This sitting continues at seat S-4.")
    saved = old_pc.put("/api/sitting/answers/1", json={"option": 0},
                       headers={"X-CSRFToken": csrf_token(old_pc, "/")})
    assert saved.status_code == 401 and saved.get_json()["moved_to_seat"] == "S-4"
    page = old_pc.get("/sitting")
    assert page.status_code == 401 and "This sitting continues at seat S-4." in page.get_data(as_text=True)
    old_pc.set_cookie("cbt_language", "ja")
    assert "この試験は座席S-4で続けます。" in old_pc.get("/api/sitting/clock").get_json()["error"]

    # At the new seat the sitting goes on; a plain sign-out elsewhere says nothing of seats.
    new_pc = app.test_client()
    login_candidate(new_pc, booked)
    assert new_pc.get("/api/sitting/clock").status_code == 200
    new_pc.post("/logout", data={"csrf_token": csrf_token(new_pc, "/")})
    signed_out = new_pc.get("/api/sitting/clock")
    assert signed_out.status_code == 401 and "moved_to_seat" not in signed_out.get_json()


def test_service_refusals_read_in_the_seat_language(app, session, program, clock):
    tomorrow = booked_candidate(session, program, clock.now + dt.timedelta(days=1))
    seat = app.test_client()
    seat.delete_cookie("cbt_language")
    refused = login_candidate(seat, tomorrow).get_data(as_text=True)
    day = (clock.now + dt.timedelta(days=1)).astimezone(dt.timezone(dt.timedelta(hours=9))).date()
    assert f"この予約の試験日は{day:%Y年%m月%d日}です。本日ではありません。" in refused
    seat.set_cookie("cbt_language", "en")
    assert f"This booking is for {day:%d %B %Y}, not today." in login_candidate(seat, tomorrow).get_data(as_text=True)
