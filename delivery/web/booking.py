"""The candidate's registration and booking pages, on the one candidate blueprint.

A registered candidate signs in with e-mail and password, finds a centre and a
slot with free places, books, moves or cancels under the program's rules, and
prints the admission slip whose code they log in with at the seat. Each page
parses the form, calls one service and shows the outcome; a refused change is
told as an error on the page it came from. A slot inside the change deadline (a
booking for it could be neither moved nor cancelled) is booked only once the
candidate has been told so and confirmed.
"""
from __future__ import annotations

import datetime as dt

from babel.dates import format_date
from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext

from centers import bookings, calendar, candidates
from centers.accounts import Actor
from centers.candidates import RegistrationError
from centers.models import COMPANY_TYPES, OCCUPATIONS, REGIONS, SEAT_FEATURES, BookingStatus, Centre, Slot
from centers.passwords import MIN_LENGTH, WrongPassword
from centers.prefectures import prefecture_name
from delivery import sittings
from delivery.throttle import LoginThrottled
from delivery.web.auth import (
    current_applicant,
    local_path,
    sign_in_applicant,
    sign_in_token,
    sign_out,
    throttled_registration,
    throttled_sign_in,
)
from delivery.web.candidate import blueprint
from delivery.web.context import db, form_id, now, program, query_id
from delivery.web.errors import too_many_attempts
from delivery.web.i18n import current_language, local_date, user_message
from persistence import typed_input
from persistence.errors import DomainError, InvalidInput, NotSignedIn

DAYS_SHOWN = 7
LIMITS = {"name": candidates.NAME_LENGTH, "email": candidates.EMAIL_LENGTH, "password": candidates.PASSWORD_LENGTH,
          "password_min": MIN_LENGTH}

# The program's slot kinds, the regions, the statuses, the seat placements, as the pages say them.
SLOT_KINDS = {"morning": lazy_gettext("morning"), "afternoon": lazy_gettext("afternoon"),
              "evening": lazy_gettext("evening"), "demo": lazy_gettext("demo slot")}
REGION_NAMES = {"Hokkaido": lazy_gettext("Hokkaido"), "Tohoku": lazy_gettext("Tohoku"),
                "Kanto": lazy_gettext("Kanto"), "Chubu": lazy_gettext("Chubu"), "Kinki": lazy_gettext("Kinki"),
                "Chugoku": lazy_gettext("Chugoku"), "Shikoku": lazy_gettext("Shikoku"),
                "Kyushu": lazy_gettext("Kyushu and Okinawa")}
STATUS_WORDS = {BookingStatus.BOOKED: lazy_gettext("booked"), BookingStatus.CHECKED_IN: lazy_gettext("checked in"),
                BookingStatus.CANCELLED: lazy_gettext("cancelled"), BookingStatus.NO_SHOW: lazy_gettext("no-show")}
SEAT_NEEDS = {"wheelchair": lazy_gettext("a wheelchair-accessible seat"), "front": lazy_gettext("a seat at the front"),
              "near_exit": lazy_gettext("a seat near the exit")}
OCCUPATION_WORDS = {"working": lazy_gettext("working"), "student": lazy_gettext("student")}
COMPANY_WORDS = {"it": lazy_gettext("IT company"), "non-it": lazy_gettext("other company")}


def _signed_in():
    """The signed-in candidate, or a redirect to sign in. The candidate is kept on ``g`` for the
    error page's booking header."""
    candidate = current_applicant()
    if candidate is None:
        return None, redirect(url_for("candidate.booking_sign_in", next=request.full_path))
    g.applicant = candidate
    return candidate, None


def kind_words(kind: str) -> str:
    return str(SLOT_KINDS.get(kind, kind))


def centre_words(centre: Centre) -> str:
    return centre.name_in(current_language())


def _slot_words(slot: Slot) -> str:
    return _("%(date)s, %(kind)s (%(time)s), %(centre)s", date=local_date(slot.date), kind=kind_words(slot.kind),
             time=sittings.local_time(program(), slot.starts_at), centre=centre_words(slot.centre))


def _told(error: DomainError, go):
    """A refused form: its reason shown as an error on the page the candidate is sent back to."""
    flash(user_message(error), "error")
    return go


# ---- registration and sign-in ---------------------------------------------------------

def _register_page(form, problems: dict, status: int = 200):
    return render_template("candidate/register.html", form=form, problems=problems, occupations=OCCUPATIONS,
                           company_types=COMPANY_TYPES, occupation_words=OCCUPATION_WORDS,
                           company_words=COMPANY_WORDS, limits=LIMITS), status


@blueprint.route("/booking/register", methods=["GET", "POST"])
def booking_register():
    if request.method == "GET":
        return _register_page({}, {})
    form = request.form
    try:
        throttled_registration()
        _candidate, token = candidates.register_and_sign_in(
            db(), name=form.get("name", ""), name_kana=form.get("name_kana", ""),
            date_of_birth=typed_input.date(form.get("date_of_birth")), email=form.get("email", ""),
            password=form.get("password", ""), occupation=form.get("occupation", ""),
            company_type=form.get("company_type") or None, today=calendar.local_today(program(), now()), now=now())
    except LoginThrottled as refused:
        body, _status = _register_page(form, {"form": user_message(refused)})
        return too_many_attempts(body, refused)
    except RegistrationError as error:
        return _register_page(form, {field: user_message(problem) for field, problem in error.problems.items()}, 422)
    sign_in_applicant(token)
    flash(_("You are registered. Choose a centre and a slot to book your exam."))
    return redirect(url_for("candidate.booking_find"))


@blueprint.route("/booking/sign-in", methods=["GET", "POST"])
def booking_sign_in():
    target = request.values.get("next", "")
    if not target.startswith("/booking"):
        target = url_for("candidate.booking_home")
    target = local_path(target, url_for("candidate.booking_home"))
    if request.method == "GET":
        return render_template("candidate/sign_in.html", next=target)
    email = typed_input.email(request.form.get("email", ""))[:candidates.EMAIL_LENGTH]
    password = request.form.get("password", "")
    try:
        _candidate, token = throttled_sign_in("applicant", candidates.normalise_email(email), lambda: candidates.sign_in(
            db(), email, password, now=now()))
    except LoginThrottled as refused:
        return too_many_attempts(render_template("candidate/sign_in.html", next=target, email=email,
                                                 error=user_message(refused)), refused)
    except NotSignedIn as refused:
        return render_template("candidate/sign_in.html", next=target, email=email, error=user_message(refused)), 401
    sign_in_applicant(token)
    return redirect(target)


@blueprint.route("/booking/password", methods=["GET", "POST"])
def booking_password():
    """A registered candidate's new password; every other sign-in of theirs ends."""
    candidate, go = _signed_in()
    if go:
        return go
    page = {"candidate": candidate, "min_length": MIN_LENGTH, "max_length": candidates.PASSWORD_LENGTH}
    if request.method == "GET":
        return render_template("candidate/password.html", **page)
    current, new = request.form.get("current_password", ""), request.form.get("password", "")
    try:
        token = throttled_sign_in("applicant", candidate.email or str(candidate.id), lambda: candidates.change_password(
            db(), candidate.id, current, new, now=now()), wrong=(WrongPassword,))
    except LoginThrottled as refused:
        return too_many_attempts(render_template("candidate/password.html", error=user_message(refused), **page),
                                 refused)
    except InvalidInput as error:
        return render_template("candidate/password.html", error=user_message(error), **page), 422
    sign_in_applicant(token)
    flash(_("Your password is changed; every other browser signed in to your bookings is signed out."))
    return redirect(url_for("candidate.booking_home"))


@blueprint.post("/booking/sign-out")
def booking_sign_out():
    candidates.sign_out(db(), sign_in_token())
    sign_out()
    return redirect(url_for("candidate.booking_sign_in"))


# ---- my booking ---------------------------------------------------------------------

def _status_words(booking, allowed: bookings.Allowance) -> str:
    if allowed.waived and booking.status == BookingStatus.BOOKED:
        return _("slot closed: please move it")
    return str(STATUS_WORDS[BookingStatus(booking.status)])


@blueprint.get("/booking/")
def booking_home():
    candidate, go = _signed_in()
    if go:
        return go
    current = now()
    upcoming = bookings.upcoming_booking(db(), candidate.id, program(), current)
    entries = []
    for booking in bookings.bookings_of(db(), candidate.id):
        allowed = bookings.allowance(program(), booking, current)
        entries.append({"booking": booking, "when": _slot_words(booking.slot), "allows": allowed,
                        "refusal": user_message(allowed.refusal) if allowed.refusal else None,
                        "status": _status_words(booking, allowed),
                        "upcoming": upcoming is not None and booking.id == upcoming.id
                        and booking.status == BookingStatus.BOOKED})
    return render_template("candidate/my_bookings.html", candidate=candidate, entries=entries, rules=program().booking,
                           has_upcoming=upcoming is not None)


# A date of birth as each language writes it on a form (no weekday): 2000年4月1日, 1 April 2000.
BIRTH_DATE_PATTERNS = {"ja": "y年M月d日", "en": "d MMMM y"}


def birth_date(day: dt.date) -> str:
    language = current_language()
    return format_date(day, BIRTH_DATE_PATTERNS.get(language, BIRTH_DATE_PATTERNS["en"]), locale=language)


def _accommodations(booking) -> list[str]:
    """The accommodations on the booking, as the slip lists them."""
    asked = []
    if booking.large_text:
        asked.append(_("larger text on screen"))
    if booking.seat_need:
        asked.append(str(SEAT_NEEDS.get(booking.seat_need, booking.seat_need)))
    if booking.time_multiplier and booking.time_multiplier != 1.0:
        asked.append(_("extra time: %(percent)s%% of the standard time",
                       percent=round(booking.time_multiplier * 100)))
    return asked


@blueprint.get("/booking/<int(max=2147483647):booking_id>/slip")
def booking_slip(booking_id: int):
    candidate, go = _signed_in()
    if go:
        return go
    booking = bookings.booking_for(db(), booking_id, Actor.candidate(candidate.id))
    opens = booking.slot.starts_at - dt.timedelta(minutes=program().admission.venue_opens_minutes_before)
    return render_template("candidate/slip.html", booking=booking, candidate=candidate, when=_slot_words(booking.slot),
                           opens=sittings.local_time(program(), opens),
                           status=STATUS_WORDS[BookingStatus(booking.status)], born=birth_date(candidate.date_of_birth),
                           accommodations=_accommodations(booking))


# ---- finding a slot, booking, moving, cancelling ---------------------------------------------

def _centre_choices(centres: list[Centre]) -> list[tuple[str, list[dict]]]:
    """The centres by region, each region's in the postal order of prefectures (the service's order)."""
    language = current_language()
    return [(str(REGION_NAMES[region]),
             [{"id": c.id, "label": f"{prefecture_name(c.prefecture, language)}: {c.name_in(language)}"}
              for c in centres if c.region == region])
            for region in REGIONS if any(c.region == region for c in centres)]


@blueprint.get("/booking/find")
def booking_find():
    candidate, go = _signed_in()
    if go:
        return go
    current = now()
    centre_id = query_id("centre", "centre")
    centre = db().get(Centre, centre_id) if centre_id is not None else None
    moving_id = query_id("move", "booking")
    moving = bookings.booking_for(db(), moving_id, Actor.candidate(candidate.id)) if moving_id is not None else None
    earliest, latest = calendar.booking_window(program(), current)
    asked = typed_input.date(request.args.get("from"))
    first = max(earliest, asked) if asked is not None else earliest  # no date, or not one: the first bookable day
    last = first + dt.timedelta(days=DAYS_SHOWN - 1)
    kinds = [t.kind for t in program().booking.slots]
    days = []
    any_locked = False
    if centre is not None:
        slots = calendar.bookable_slots(db(), program(), centre.id, first, last, current)
        by_day: dict[dt.date, dict[str, Slot]] = {}
        for slot in slots:
            by_day.setdefault(slot.date, {})[slot.kind] = slot
        for offset in range(DAYS_SHOWN):
            day = first + dt.timedelta(days=offset)
            if day > latest:
                break
            locked = bookings.inside_change_deadline(program(), day, current)
            cells = []
            for kind in kinds:
                slot = by_day.get(day, {}).get(kind)
                cells.append(None if slot is None else {
                    "slot_id": slot.id, "time": sittings.local_time(program(), slot.starts_at),
                    "free": slot.free, "kind": kind_words(kind), "locked": locked,
                })
                any_locked = any_locked or (locked and slot is not None and slot.free > 0)
            days.append({"label": local_date(day), "cells": cells})
    return render_template(
        "candidate/find.html", candidate=candidate, regions=_centre_choices(calendar.centres_by_region(db())),
        centre=centre, centre_name=centre_words(centre) if centre else "", days=days,
        kinds=[kind_words(k) for k in kinds], first=first, earliest=earliest, latest=latest, moving=moving,
        previous_week=max(earliest, first - dt.timedelta(days=DAYS_SHOWN)),
        next_week=first + dt.timedelta(days=DAYS_SHOWN) if last < latest else None,
        seat_features=[(f, SEAT_NEEDS[f]) for f in SEAT_FEATURES], any_locked=any_locked,
        rules=program().booking,
        has_upcoming=bookings.upcoming_booking(db(), candidate.id, program(), current) is not None,
    )


def _back_to_find(slot_id: int | None, moving: int | None = None):
    slot = db().get(Slot, slot_id) if slot_id else None
    return redirect(url_for("candidate.booking_find", centre=slot.centre_id if slot else None,
                            **({"from": slot.date.isoformat()} if slot else {}), move=moving))


def _chosen_slot(*, moving: bool = False) -> int:
    slot_id = form_id("slot_id", "slot")
    if slot_id is None:
        if moving:
            raise InvalidInput("Choose the slot to move to.", field="slot_id")
        raise InvalidInput("Choose a slot.", field="slot_id")
    return slot_id


def _unwarned(slot_id: int) -> Slot | None:
    """The slot, when it lies inside the change deadline and the candidate has not yet confirmed
    that they know a booking for it could be neither moved nor cancelled; else None."""
    if request.form.get("confirmed") == "yes":
        return None
    slot = db().get(Slot, slot_id)
    if slot is None or not bookings.inside_change_deadline(program(), slot.date, now()):
        return None
    return slot


def _confirmation(slot: Slot, moving: int | None = None):
    """The warning before booking (or moving to) a slot whose booking could not be changed."""
    return render_template(
        "candidate/confirm.html", candidate=g.applicant, slot=slot, when=_slot_words(slot), moving=moving,
        deadline=bookings.change_deadline(program(), slot.date), rules=program().booking,
        large_text=request.form.get("large_text") == "yes", seat_need=request.form.get("seat_need") or "",
        back=url_for("candidate.booking_find", centre=slot.centre_id, move=moving, **{"from": slot.date.isoformat()}))


@blueprint.post("/booking/book")
def booking_book():
    candidate, go = _signed_in()
    if go:
        return go
    slot_id = None
    try:
        slot_id = _chosen_slot()
        warn = _unwarned(slot_id)
        if warn is not None:
            return _confirmation(warn)
        booking = bookings.reserve(db(), program(), slot_id, now(), candidate_id=candidate.id,
                                   actor=Actor.candidate(candidate.id),
                                   large_text=request.form.get("large_text") == "yes",
                                   seat_need=request.form.get("seat_need") or None, language=current_language())
    except DomainError as error:
        return _told(error, _back_to_find(slot_id))
    flash(_("Booked: %(when)s. Your admission code is %(code)s.", when=_slot_words(booking.slot),
            code=booking.admission_code))
    return redirect(url_for("candidate.booking_slip", booking_id=booking.id))


@blueprint.post("/booking/<int(max=2147483647):booking_id>/move")
def booking_move(booking_id: int):
    candidate, go = _signed_in()
    if go:
        return go
    actor = Actor.candidate(candidate.id)
    bookings.booking_for(db(), booking_id, actor)  # someone else's: 404, whatever the form says
    slot_id = None
    try:
        slot_id = _chosen_slot(moving=True)
        warn = _unwarned(slot_id)
        if warn is not None:
            return _confirmation(warn, moving=booking_id)
        booking = bookings.move(db(), program(), booking_id, slot_id, now(), actor=actor)
    except DomainError as error:
        return _told(error, _back_to_find(slot_id, moving=booking_id))
    flash(_("Moved to %(when)s. Your admission code stays %(code)s.", when=_slot_words(booking.slot),
            code=booking.admission_code))
    return redirect(url_for("candidate.booking_home"))


@blueprint.post("/booking/<int(max=2147483647):booking_id>/cancel")
def booking_cancel(booking_id: int):
    candidate, go = _signed_in()
    if go:
        return go
    actor = Actor.candidate(candidate.id)
    bookings.booking_for(db(), booking_id, actor)  # someone else's: 404, whatever the form says
    try:
        if request.form.get("confirm") != "yes":
            raise InvalidInput("Tick the box to confirm the cancellation.", field="confirm")
        booking = bookings.cancel(db(), program(), booking_id, now(), actor=actor)
    except DomainError as error:
        return _told(error, redirect(url_for("candidate.booking_home")))
    if program().booking.refund_on_cancel:
        flash(_("Your booking for %(when)s is cancelled.", when=_slot_words(booking.slot)))
    else:
        flash(_("Your booking for %(when)s is cancelled. The exam fee is not refunded.",
                when=_slot_words(booking.slot)))
    return redirect(url_for("candidate.booking_home"))
