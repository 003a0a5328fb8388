"""The candidate's registration and booking pages, on the one candidate blueprint.

A registered candidate signs in with e-mail and password, finds a centre and a
slot with free places, books, moves or cancels under the program's rules, and
prints the admission slip whose code they log in with at the seat. Each page
parses the form, calls one service and shows the outcome; a refused change is
told in a message on the page it came from.
"""
from __future__ import annotations

import datetime as dt

from flask import flash, redirect, render_template, request, url_for

from centers import bookings, calendar, candidates
from centers.accounts import Actor
from centers.candidates import RegistrationError
from centers.models import COMPANY_TYPES, OCCUPATIONS, REGIONS, SEAT_FEATURES, BookingStatus, Centre, Slot
from centers.passwords import MIN_LENGTH, WrongPassword
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
from delivery.web.i18n import user_message
from persistence.errors import DomainError, InvalidInput, NotSignedIn

DAYS_SHOWN = 7
LIMITS = {"name": candidates.NAME_LENGTH, "email": candidates.EMAIL_LENGTH, "password": candidates.PASSWORD_LENGTH,
          "password_min": MIN_LENGTH}


def _signed_in():
    """The signed-in candidate, or a redirect to sign in."""
    candidate = current_applicant()
    if candidate is None:
        return None, redirect(url_for("candidate.booking_sign_in", next=request.full_path))
    return candidate, None


def _slot_words(slot: Slot) -> str:
    return (f"{slot.date:%A %d %B %Y}, {slot.kind} ({sittings.local_time(program(), slot.starts_at)}), "
            f"{slot.centre.name}")


def _told(error: DomainError, go):
    """A refused form: its reason shown on the page the candidate is sent back to."""
    flash(user_message(error))
    return go


# ---- registration and sign-in ---------------------------------------------------------

def _register_page(form, problems: dict, status: int = 200):
    return render_template("candidate/register.html", form=form, problems=problems, occupations=OCCUPATIONS,
                           company_types=COMPANY_TYPES, limits=LIMITS), status


@blueprint.route("/booking/register", methods=["GET", "POST"])
def booking_register():
    if request.method == "GET":
        return _register_page({}, {})
    form = request.form
    try:
        born = dt.date.fromisoformat(form.get("date_of_birth", ""))
    except ValueError:
        born = None
    try:
        throttled_registration()
        _candidate, token = candidates.register_and_sign_in(
            db(), name=form.get("name", ""), date_of_birth=born, email=form.get("email", ""),
            password=form.get("password", ""), occupation=form.get("occupation", ""),
            company_type=form.get("company_type") or None, today=calendar.local_today(program(), now()), now=now())
    except LoginThrottled as refused:
        body, _ = _register_page(form, {"form": str(refused)})
        return too_many_attempts(body, refused)
    except RegistrationError as error:
        return _register_page(form, error.problems, 422)
    sign_in_applicant(token)
    flash("You are registered. Choose a centre and a slot to book your exam.")
    return redirect(url_for("candidate.booking_find"))


@blueprint.route("/booking/sign-in", methods=["GET", "POST"])
def booking_sign_in():
    target = request.values.get("next", "")
    if not target.startswith("/booking"):
        target = url_for("candidate.booking_home")
    target = local_path(target, url_for("candidate.booking_home"))
    if request.method == "GET":
        return render_template("candidate/sign_in.html", next=target)
    email = request.form.get("email", "")[:candidates.EMAIL_LENGTH]
    password = request.form.get("password", "")
    try:
        _candidate, token = throttled_sign_in("applicant", candidates.normalise_email(email), lambda: candidates.sign_in(
            db(), email, password, now=now()))
    except LoginThrottled as refused:
        return too_many_attempts(render_template("candidate/sign_in.html", next=target, email=email,
                                                 error=str(refused)), refused)
    except NotSignedIn as refused:
        return render_template("candidate/sign_in.html", next=target, email=email, error=str(refused)), 401
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
        return too_many_attempts(render_template("candidate/password.html", error=str(refused), **page), refused)
    except InvalidInput as error:
        return render_template("candidate/password.html", error=user_message(error), **page), 422
    sign_in_applicant(token)
    flash("Your password is changed; every other browser signed in to your bookings is signed out.")
    return redirect(url_for("candidate.booking_home"))


@blueprint.post("/booking/sign-out")
def booking_sign_out():
    candidates.sign_out(db(), sign_in_token())
    sign_out()
    return redirect(url_for("candidate.booking_sign_in"))


# ---- my booking ---------------------------------------------------------------------

def _status_words(booking, allowed: bookings.Allowance) -> str:
    if allowed.waived and booking.status == BookingStatus.BOOKED:
        return "slot closed: please move it"
    return BookingStatus(booking.status).words


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
                        "status": _status_words(booking, allowed),
                        "upcoming": upcoming is not None and booking.id == upcoming.id
                        and booking.status == BookingStatus.BOOKED})
    return render_template("candidate/my_bookings.html", candidate=candidate, entries=entries, rules=program().booking,
                           has_upcoming=upcoming is not None)


@blueprint.get("/booking/<int(max=2147483647):booking_id>/slip")
def booking_slip(booking_id: int):
    candidate, go = _signed_in()
    if go:
        return go
    booking = bookings.booking_for(db(), booking_id, Actor.candidate(candidate.id))
    opens = booking.slot.starts_at - dt.timedelta(minutes=program().admission.venue_opens_minutes_before)
    return render_template("candidate/slip.html", booking=booking, candidate=candidate, when=_slot_words(booking.slot),
                           opens=sittings.local_time(program(), opens), status=BookingStatus(booking.status).words)


# ---- finding a slot, booking, moving, cancelling ---------------------------------------------

@blueprint.get("/booking/find")
def booking_find():
    candidate, go = _signed_in()
    if go:
        return go
    current = now()
    centres = calendar.centres_by_region(db())
    regions = [(region, [c for c in centres if c.region == region]) for region in REGIONS]
    centre_id = query_id("centre", "centre")
    centre = db().get(Centre, centre_id) if centre_id is not None else None
    moving_id = query_id("move", "booking")
    moving = bookings.booking_for(db(), moving_id, Actor.candidate(candidate.id)) if moving_id is not None else None
    earliest, latest = calendar.booking_window(program(), current)
    try:
        first = max(earliest, dt.date.fromisoformat(request.args.get("from", "")))
    except ValueError:  # no date, or not one: the first bookable day
        first = earliest
    last = first + dt.timedelta(days=DAYS_SHOWN - 1)
    kinds = [t.kind for t in program().booking.slots]
    days = []
    if centre is not None:
        slots = calendar.bookable_slots(db(), program(), centre.id, first, last, current)
        by_day: dict[dt.date, dict[str, Slot]] = {}
        for slot in slots:
            by_day.setdefault(slot.date, {})[slot.kind] = slot
        for offset in range(DAYS_SHOWN):
            day = first + dt.timedelta(days=offset)
            if day > latest:
                break
            cells = []
            for kind in kinds:
                slot = by_day.get(day, {}).get(kind)
                cells.append(None if slot is None else {
                    "slot_id": slot.id, "time": sittings.local_time(program(), slot.starts_at),
                    "free": slot.free, "label": f"{kind} {day:%d %B}",
                })
            days.append({"label": f"{day:%a %d %b}", "cells": cells})
    return render_template(
        "candidate/find.html", candidate=candidate, regions=regions, centre=centre, days=days, kinds=kinds,
        first=first, earliest=earliest, latest=latest, moving=moving,
        previous_week=max(earliest, first - dt.timedelta(days=DAYS_SHOWN)),
        next_week=first + dt.timedelta(days=DAYS_SHOWN) if last < latest else None,
        seat_features=SEAT_FEATURES,
        has_upcoming=bookings.upcoming_booking(db(), candidate.id, program(), current) is not None,
    )


def _back_to_find(slot_id: int | None, moving: int | None = None):
    slot = db().get(Slot, slot_id) if slot_id else None
    return redirect(url_for("candidate.booking_find", centre=slot.centre_id if slot else None,
                            **({"from": slot.date.isoformat()} if slot else {}), move=moving))


def _chosen_slot(message: str) -> int:
    slot_id = form_id("slot_id", "slot")
    if slot_id is None:
        raise InvalidInput(message, field="slot_id")
    return slot_id


@blueprint.post("/booking/book")
def booking_book():
    candidate, go = _signed_in()
    if go:
        return go
    slot_id = None
    try:
        slot_id = _chosen_slot("Choose a slot.")
        booking = bookings.reserve(db(), program(), slot_id, now(), candidate_id=candidate.id,
                                   actor=Actor.candidate(candidate.id),
                                   large_text=request.form.get("large_text") == "yes",
                                   seat_need=request.form.get("seat_need") or None)
    except DomainError as error:
        return _told(error, _back_to_find(slot_id))
    flash(f"Booked: {_slot_words(booking.slot)}. Your admission code is {booking.admission_code}.")
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
        slot_id = _chosen_slot("Choose the slot to move to.")
        booking = bookings.move(db(), program(), booking_id, slot_id, now(), actor=actor)
    except DomainError as error:
        return _told(error, _back_to_find(slot_id, moving=booking_id))
    flash(f"Moved to {_slot_words(booking.slot)}. Your admission code stays {booking.admission_code}.")
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
    refund = "" if program().booking.refund_on_cancel else " The exam fee is not refunded."
    flash(f"Your booking for {_slot_words(booking.slot)} is cancelled.{refund}")
    return redirect(url_for("candidate.booking_home"))
