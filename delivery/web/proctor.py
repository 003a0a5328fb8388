"""The proctor's console: the live board of their own centre and every action on a sitting.

Every request is checked against the proctor's own centre on the server; an
attempt on another centre's booking or slot is refused and recorded in the
audit trail (by the services, which the command line shares). Every action is
recorded there with who, when and why. The views parse the form, call one
service and show the outcome.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from centers import bookings, incidents
from centers.accounts import Actor
from centers.calendar import local_today
from centers.models import INCIDENT_KINDS, SEAT_FEATURES, Booking, BookingStatus, Slot
from delivery import console, sittings
from delivery.models import SittingStatus
from delivery.web.auth import staff_required
from delivery.web.context import db, form_id, now, program, query_id
from delivery.web.errors import http_status
from delivery.web.i18n import user_message
from persistence.errors import Conflict, InvalidInput, NotFound, Refused

blueprint = Blueprint("proctor", __name__, url_prefix="/proctor")
ID = "int(max=2147483647)"


def _actor() -> Actor:
    return Actor.staff(g.staff)


def _reason() -> str:
    return request.form.get("reason", "")


# ---- the words of the console, in the reader's language ------------------------------

def status_labels() -> dict[str, str]:
    """A seat's, a booking's or a sitting's state as the board says it (console.STATUS_ORDER)."""
    return {
        console.FREE: _("free"),
        console.OUT_OF_SERVICE: _("out of service"),
        BookingStatus.BOOKED: _("not checked in"),
        BookingStatus.NO_SHOW: _("no-show"),
        BookingStatus.CHECKED_IN: _("checked in"),
        SittingStatus.WAITING: _("logged in"),
        SittingStatus.IN_PROGRESS: _("in progress"),
        SittingStatus.PAUSED: _("paused"),
        SittingStatus.FINISHED: _("finished"),
        SittingStatus.ENDED: _("ended"),
    }


def incident_kind_labels() -> dict[str, str]:
    labels = {"equipment": _("equipment"), "identity": _("identity"), "misconduct": _("misconduct"),
              "late_arrival": _("late arrival"), "health": _("health"), "environment": _("environment"),
              "other": _("other")}
    return {kind: labels.get(kind, kind.replace("_", " ")) for kind in INCIDENT_KINDS}


def seat_feature_labels() -> dict[str, str]:
    labels = {"wheelchair": _("wheelchair"), "front": _("front row"), "near_exit": _("near the exit")}
    return {feature: labels.get(feature, feature.replace("_", " ")) for feature in SEAT_FEATURES}


def slot_kind_label(kind: str) -> str:
    return {"morning": _("morning"), "afternoon": _("afternoon"), "evening": _("evening")}.get(kind, kind)


def slot_label(slot: Slot) -> str:
    return _("%(kind)s %(time)s", kind=slot_kind_label(slot.kind), time=sittings.local_time(program(), slot.starts_at))


def _words() -> dict:
    return {"status_labels": status_labels(), "incident_kinds": incident_kind_labels(),
            "seat_features": seat_feature_labels()}


def _viewed_slot(session: Session, slot_id: int | None) -> Slot | None:
    """The slot asked for, if it is at the proctor's centre (another centre's: refused and recorded)."""
    if slot_id is None:
        return None

    def look() -> Slot:
        slot = session.get(Slot, slot_id)
        if slot is None:
            raise NotFound("There is no such slot.")
        bookings.check_centre(_actor(), slot.centre_id, f"slot:{slot_id}")
        return slot

    return bookings.guarded(session, _actor(), "view_board", now(), look)


# ---- the board -------------------------------------------------------------------

def _board_context(slot_param: int | None) -> dict:
    current = now()
    day = local_today(program(), current)
    slots = console.slots_of_day(db(), g.staff.centre_id, day)
    slot = _viewed_slot(db(), slot_param) or console.current_slot(program(), slots, current)
    if slot is not None and slot not in slots:
        slots = console.slots_of_day(db(), g.staff.centre_id, slot.date)
    rows = console.board(db(), g.staff.centre_id, slot.id, current) if slot else []
    return {
        "centre": g.staff.centre, "day": slot.date if slot else day, "slots": slots, "slot": slot,
        "seated": [r for r in rows if r.seat_label is not None], "unseated": [r for r in rows if r.seat_label is None],
        "summary": console.board_summary(rows), "quiet_minutes": console.QUIET_MINUTES,
        "slot_labels": {s.id: slot_label(s) for s in slots},
        "poll_seconds": current_app.config["BOARD_POLL_SECONDS"],
        "updated": current.astimezone(ZoneInfo(program().timezone)).strftime("%H:%M:%S"),
        **_words(),
    }


@blueprint.get("/")
@staff_required("proctor")
def board():
    return render_template("proctor/board.html", **_board_context(query_id("slot", "slot")))


@blueprint.get("/board/live")
@staff_required("proctor")
def board_live():
    """The board's live part alone, which the console page polls."""
    return render_template("proctor/_board.html", **_board_context(query_id("slot", "slot")))


# ---- one candidate -----------------------------------------------------------------

def _panel_context(booking_id: int, error: Exception | None = None) -> dict:
    current = now()
    shown = console.panel(db(), program(), booking_id, _actor(), current)
    booking = shown.booking
    return dict(
        booking=booking, sitting=shown.sitting, status=shown.status, actions=shown.actions,
        time_left=shown.time_left, slot_started=current >= booking.slot.starts_at,
        seats=shown.seats, move_seats=[s for s in shown.seats if s.id != booking.seat_id],
        slot_label=slot_label(booking.slot), minutes_left_to_add=shown.minutes_left_to_add,
        awaiting_login=shown.status == BookingStatus.CHECKED_IN,
        no_show_from=sittings.local_time(program(), booking.slot.starts_at + dt.timedelta(
            minutes=program().admission.no_show_grace_minutes)),
        poll_seconds=current_app.config["BOARD_POLL_SECONDS"],
        error=user_message(error) if error is not None else None, error_field=getattr(error, "field", None),
        **_words(),
    )


def _panel(booking_id: int, error: Exception | None = None) -> str:
    return render_template("proctor/booking.html", **_panel_context(booking_id, error))


@blueprint.get(f"/bookings/<{ID}:booking_id>")
@staff_required("proctor")
def booking_panel(booking_id: int):
    return _panel(booking_id)


@blueprint.get(f"/bookings/<{ID}:booking_id>/live")
@staff_required("proctor")
def booking_live(booking_id: int):
    """The panel's facts alone (state, question, time left), which the panel polls like the board."""
    return render_template("proctor/_panel_facts.html", **_panel_context(booking_id))


def _ours(booking_id: int) -> bool:
    """Whether the booking is at the proctor's own centre (read only: nothing is recorded)."""
    booking = db().get(Booking, booking_id)
    return booking is not None and booking.slot.centre_id == g.staff.centre_id


def _in_place(booking_id: int, act):
    """Do ``act`` (a service call; its flash message) and come back to the same panel. A refusal of
    an action on one's own candidate is shown on the panel itself, with its status code; another
    centre's booking is refused as the service says (and recorded there)."""
    try:
        message = act()
    except (InvalidInput, Conflict, Refused) as error:
        if not _ours(booking_id):
            raise
        return _panel(booking_id, error), http_status(error)
    flash(message)
    return redirect(url_for("proctor.booking_panel", booking_id=booking_id))


@blueprint.post(f"/bookings/<{ID}:booking_id>/check-in")
@staff_required("proctor")
def check_in(booking_id: int):
    def act() -> str:
        booking = bookings.check_in(db(), booking_id, now(), actor=_actor(), seat_id=form_id("seat_id", "seat"),
                                    identity_verified=request.form.get("identity_verified") == "yes",
                                    reason=_reason())
        return _("%(name)s is checked in at seat %(seat)s.", name=booking.candidate.name, seat=booking.seat.label)

    return _in_place(booking_id, act)


@blueprint.post(f"/bookings/<{ID}:booking_id>/no-show")
@staff_required("proctor")
def no_show(booking_id: int):
    def act() -> str:
        booking = bookings.no_show(db(), booking_id, now(), actor=_actor(), reason=_reason())
        return _("%(name)s is recorded as a no-show.", name=booking.candidate.name)

    return _in_place(booking_id, act)


@blueprint.post(f"/bookings/<{ID}:booking_id>/start")
@staff_required("proctor")
def start(booking_id: int):
    def act() -> str:
        outcome = sittings.proctor_start(db(), program(), booking_id, now(), actor=_actor(), reason=_reason())
        return _("%(name)s's sitting has started.", name=outcome.booking.candidate.name)

    return _in_place(booking_id, act)


@blueprint.post(f"/bookings/<{ID}:booking_id>/pause")
@staff_required("proctor")
def pause(booking_id: int):
    def act() -> str:
        outcome = sittings.pause(db(), program(), booking_id, now(), actor=_actor(), reason=_reason())
        return _("%(name)s's sitting is paused; the clock is stopped.", name=outcome.booking.candidate.name)

    return _in_place(booking_id, act)


@blueprint.post(f"/bookings/<{ID}:booking_id>/resume")
@staff_required("proctor")
def resume(booking_id: int):
    def act() -> str:
        outcome = sittings.resume(db(), program(), booking_id, now(), actor=_actor(), reason=_reason())
        return _("%(name)s's sitting is running again.", name=outcome.booking.candidate.name)

    return _in_place(booking_id, act)


def _whole_minutes() -> int | None:
    text = request.form.get("minutes", "").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 6 else None


@blueprint.post(f"/bookings/<{ID}:booking_id>/add-time")
@staff_required("proctor")
def add_time(booking_id: int):
    def act() -> str:
        minutes = _whole_minutes()
        if minutes is None:
            bookings.viewed_booking(db(), booking_id, _actor(), now(), "add_time")  # another centre's: refused first
            raise InvalidInput("Enter the minutes to add as a whole number.", field="minutes")
        outcome = sittings.add_time(db(), program(), booking_id, minutes, now(), actor=_actor(), reason=_reason())
        return _("%(name)s has %(minutes)s more minutes.", name=outcome.booking.candidate.name,
                 minutes=outcome.details["minutes"])

    return _in_place(booking_id, act)


@blueprint.post(f"/bookings/<{ID}:booking_id>/move-seat")
@staff_required("proctor")
def move_seat(booking_id: int):
    def act() -> str:
        seat_id = form_id("seat_id", "seat")
        if seat_id is None:
            bookings.viewed_booking(db(), booking_id, _actor(), now(), "move_seat")  # another centre's: refused first
            raise InvalidInput("Choose the seat to move to.", field="seat_id")
        outcome = sittings.move_seat(db(), program(), booking_id, seat_id, now(), actor=_actor(), reason=_reason(),
                                     out_of_service=request.form.get("out_of_service") == "yes")
        return _("%(name)s moves to seat %(seat)s: the sitting is paused until they log in there and you resume it.",
                 name=outcome.booking.candidate.name, seat=outcome.details["to_seat"])

    return _in_place(booking_id, act)


@blueprint.post(f"/bookings/<{ID}:booking_id>/end")
@staff_required("proctor")
def end(booking_id: int):
    def act() -> str:
        if request.form.get("confirm") != "yes":
            bookings.viewed_booking(db(), booking_id, _actor(), now(), "end")  # another centre's: refused first
            raise InvalidInput("Tick the box to confirm that the sitting ends for good.", field="confirm")
        outcome = sittings.end(db(), program(), booking_id, now(), actor=_actor(), reason=_reason())
        return _("%(name)s's sitting is ended.", name=outcome.booking.candidate.name)

    return _in_place(booking_id, act)


@blueprint.post("/incidents")
@staff_required("proctor")
def log_incident():
    """Log an incident from the board (of the slot) or from a candidate's panel (of the booking);
    back to where it was logged, with a refusal shown there."""
    booking_id = form_id("booking_id", "booking")
    slot_id = form_id("slot_id", "slot")

    def act() -> str:
        incidents.log_incident(db(), now(), actor=_actor(), kind=request.form.get("kind", ""),
                               description=request.form.get("description", ""), slot_id=slot_id,
                               booking_id=booking_id)
        return _("The incident is logged.")

    if booking_id is not None:
        return _in_place(booking_id, act)
    try:
        flash(act())
    except InvalidInput as error:
        context = _board_context(slot_id)
        return render_template("proctor/board.html", error=user_message(error), **context), http_status(error)
    return redirect(url_for("proctor.board", slot=slot_id) if slot_id else url_for("proctor.board"))


# ---- the end of the day -------------------------------------------------------------

@blueprint.get("/report")
@staff_required("proctor")
def report():
    current = now()
    text = request.args.get("date", "")
    day = local_today(program(), current)
    if text:
        try:
            day = dt.date.fromisoformat(text)
        except ValueError:
            raise InvalidInput("Give the date as YYYY-MM-DD.", field="date") from None
    result = console.day_report(db(), program(), g.staff.centre_id, day, current)
    return render_template(
        "proctor/report.html", centre=g.staff.centre, report=result, totals=result.totals,
        slot_labels={s.slot.id: slot_label(s.slot) for s in result.slots},
        incident_times={i.id: sittings.local_time(program(), i.at) for i, _by in result.incidents},
        action_labels=action_labels(), **_words(),
    )


def action_labels() -> dict[str, str]:
    """The audit trail's names of the console's actions, as the report lists them."""
    return {"check_in": _("check-ins"), "no_show": _("no-shows recorded"), "start": _("sittings started"),
            "pause": _("pauses"), "resume": _("resumptions"), "add_time": _("time added"),
            "move_seat": _("seat moves"), "end": _("sittings ended"), "log_incident": _("incidents logged"),
            "view_board": _("board views"), "view_booking": _("panel views")}
