"""The candidate's registration and booking pages, on the one candidate blueprint.

A registered candidate signs in with e-mail and password, finds a centre and a
slot with free places, books, moves or cancels under the program's rules, and
prints the admission slip whose code they log in with at the seat.
"""
from __future__ import annotations

import datetime as dt

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from centers import bookings, calendar, candidates

from centers.candidates import RegistrationError
from centers.models import COMPANY_TYPES, OCCUPATIONS, REGIONS, SEAT_FEATURES, Booking, Candidate, Centre, Slot
from delivery import sittings
from delivery.throttle import LoginThrottled
from delivery.web.auth import (applicant_id, local_path, login_attempt, login_failed, login_succeeded, sign_in_applicant,
                               sign_out)
from delivery.web.errors import too_many_attempts
from delivery.web.candidate import blueprint
from delivery.web.context import db, now, program
from persistence import audit
from persistence.errors import DomainError, InvalidInput, NotFound

DAYS_SHOWN = 7


def _applicant() -> Candidate | None:
    candidate_id = applicant_id()
    return db().get(Candidate, candidate_id) if candidate_id else None


def _signed_in():
    """The signed-in candidate, or a redirect to sign in."""
    candidate = _applicant()
    if candidate is None:
        return None, redirect(url_for("candidate.booking_sign_in", next=request.full_path))
    return candidate, None


def _own_booking(candidate: Candidate, booking_id: int) -> Booking:
    booking = db().get(Booking, booking_id, options=[joinedload(Booking.slot).joinedload(Slot.centre)])
    if booking is None or booking.candidate_id != candidate.id:
        raise NotFound("You have no such booking.")
    return booking


def _record(candidate: Candidate, action: str, booking: Booking, details: dict) -> None:
    audit.record(db(), actor=f"candidate:{candidate.id}", actor_role="candidate", action=action,
                 subject=f"booking:{booking.id}", centre_id=booking.slot.centre_id, details=details, at=now())


def _slot_words(slot: Slot) -> str:
    return (f"{slot.date:%A %d %B %Y}, {slot.kind} ({sittings.local_time(program(), slot.starts_at)}), "
            f"{slot.centre.name}")


# ---- registration and sign-in ---------------------------------------------------------

@blueprint.route("/booking/register", methods=["GET", "POST"])
def booking_register():
    form = request.form if request.method == "POST" else {}
    if request.method == "GET":
        return render_template("candidate/register.html", form=form, problems={},
                               occupations=OCCUPATIONS, company_types=COMPANY_TYPES)
    try:
        born = dt.date.fromisoformat(form.get("date_of_birth", ""))
    except ValueError:
        born = None
    try:
        candidate = candidates.register(
            db(), name=form.get("name", ""), date_of_birth=born, email=form.get("email", ""),
            password=form.get("password", ""), occupation=form.get("occupation", ""),
            company_type=form.get("company_type") or None, today=sittings.local_date(program(), now()))
    except RegistrationError as error:
        db().rollback()
        return render_template("candidate/register.html", form=form, problems=error.problems,
                               occupations=OCCUPATIONS, company_types=COMPANY_TYPES), 422
    db().commit()
    sign_in_applicant(candidate.id)
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
    email = request.form.get("email", "")
    try:
        attempt = login_attempt("applicant", candidates.normalise_email(email))
    except LoginThrottled as refused:
        return too_many_attempts(render_template("candidate/sign_in.html", next=target, email=email,
                                                 error=str(refused)), refused)
    candidate = candidates.authenticate(db(), email, request.form.get("password", ""))
    if candidate is None:
        login_failed(attempt)
        return render_template("candidate/sign_in.html", next=target, email=email,
                               error="Unknown e-mail address or wrong password."), 401
    login_succeeded(attempt)
    db().commit()
    sign_in_applicant(candidate.id)
    return redirect(target)


@blueprint.post("/booking/sign-out")
def booking_sign_out():
    sign_out()
    return redirect(url_for("candidate.booking_sign_in"))


# ---- my booking ---------------------------------------------------------------------

@blueprint.get("/booking/")
def booking_home():
    candidate, go = _signed_in()
    if go:
        return go
    rules = program().booking
    mine = db().scalars(
        select(Booking).join(Booking.slot).options(joinedload(Booking.slot).joinedload(Slot.centre))
        .where(Booking.candidate_id == candidate.id).order_by(Slot.starts_at.desc())
    ).all()
    upcoming = bookings.upcoming_booking(db(), candidate.id, program(), now())
    entries = [{
        "booking": b, "when": _slot_words(b.slot),
        "status": "slot closed: please move it" if b.status == "booked" and b.slot.status == "closed"
        else b.status.replace("_", " "),
        "change_until": b.slot.date - dt.timedelta(days=rules.change_until_days_before),
        "changes_left": max(0, rules.max_changes - b.changes),
        "upcoming": upcoming is not None and b.id == upcoming.id and b.status == "booked",
    } for b in mine]
    return render_template("candidate/my_bookings.html", candidate=candidate, entries=entries, rules=rules,
                           has_upcoming=upcoming is not None)


@blueprint.get("/booking/<int:booking_id>/slip")
def booking_slip(booking_id: int):
    candidate, go = _signed_in()
    if go:
        return go
    booking = _own_booking(candidate, booking_id)
    opens = booking.slot.starts_at - dt.timedelta(minutes=program().admission.venue_opens_minutes_before)
    return render_template("candidate/slip.html", booking=booking, candidate=candidate, when=_slot_words(booking.slot),
                           opens=sittings.local_time(program(), opens))


# ---- finding a slot, booking, moving, cancelling ---------------------------------------------

@blueprint.get("/booking/find")
def booking_find():
    candidate, go = _signed_in()
    if go:
        return go
    centres = calendar.centres_by_region(db())
    regions = [(region, [c for c in centres if c.region == region]) for region in REGIONS]
    centre = db().get(Centre, request.args.get("centre", type=int)) if request.args.get("centre") else None
    moving = request.args.get("move", type=int)
    moving_booking = _own_booking(candidate, moving) if moving else None
    earliest, latest = calendar.booking_window(program(), now())
    try:
        first = max(earliest, dt.date.fromisoformat(request.args.get("from", "")))
    except ValueError:
        first = earliest
    last = first + dt.timedelta(days=DAYS_SHOWN - 1)
    kinds = [t.kind for t in program().booking.slots]
    days = []
    if centre is not None:
        slots = calendar.bookable_slots(db(), program(), centre.id, first, last, now())
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
        first=first, earliest=earliest, latest=latest, moving=moving_booking,
        previous_week=max(earliest, first - dt.timedelta(days=DAYS_SHOWN)),
        next_week=first + dt.timedelta(days=DAYS_SHOWN) if last < latest else None,
        seat_features=SEAT_FEATURES,
        has_upcoming=bookings.upcoming_booking(db(), candidate.id, program(), now()) is not None,
    )


def _back_to_find(slot_id: int | None, moving: int | None = None):
    slot = db().get(Slot, slot_id) if slot_id else None
    return redirect(url_for("candidate.booking_find", centre=slot.centre_id if slot else None,
                            **({"from": slot.date.isoformat()} if slot else {}), move=moving))


@blueprint.post("/booking/book")
def booking_book():
    candidate, go = _signed_in()
    if go:
        return go
    slot_id = request.form.get("slot_id", type=int)
    need = request.form.get("seat_need") or None
    try:
        if slot_id is None:
            raise InvalidInput("Choose a slot.")
        booking = bookings.reserve(db(), program(), candidate, slot_id, now(),
                                   large_text=request.form.get("large_text") == "yes", seat_need=need)
        _record(candidate, "book", booking, {"slot_id": slot_id})
        db().commit()
    except DomainError as error:
        db().rollback()
        flash(str(error))
        return _back_to_find(slot_id)
    flash(f"Booked: {_slot_words(booking.slot)}. Your admission code is {booking.admission_code}.")
    return redirect(url_for("candidate.booking_slip", booking_id=booking.id))


@blueprint.post("/booking/<int:booking_id>/move")
def booking_move(booking_id: int):
    candidate, go = _signed_in()
    if go:
        return go
    booking = _own_booking(candidate, booking_id)
    slot_id = request.form.get("slot_id", type=int)
    old_slot = booking.slot_id
    try:
        if slot_id is None:
            raise InvalidInput("Choose the slot to move to.")
        bookings.move(db(), program(), booking, slot_id, now())
        _record(candidate, "move_booking", booking, {"from_slot_id": old_slot, "to_slot_id": slot_id})
        db().commit()
    except DomainError as error:
        db().rollback()
        flash(str(error))
        return _back_to_find(slot_id, moving=booking_id)
    flash(f"Moved to {_slot_words(booking.slot)}. Your admission code stays {booking.admission_code}.")
    return redirect(url_for("candidate.booking_home"))


@blueprint.post("/booking/<int:booking_id>/cancel")
def booking_cancel(booking_id: int):
    candidate, go = _signed_in()
    if go:
        return go
    booking = _own_booking(candidate, booking_id)
    if request.form.get("confirm") != "yes":
        flash("Tick the box to confirm the cancellation.")
        return redirect(url_for("candidate.booking_home"))
    try:
        bookings.cancel(db(), program(), booking, now())
        _record(candidate, "cancel_booking", booking, {"slot_id": booking.slot_id})
        db().commit()
    except DomainError as error:
        db().rollback()
        flash(str(error))
        return redirect(url_for("candidate.booking_home"))
    refund = "" if program().booking.refund_on_cancel else " The exam fee is not refunded."
    flash(f"Your booking for {_slot_words(booking.slot)} is cancelled.{refund}")
    return redirect(url_for("candidate.booking_home"))
