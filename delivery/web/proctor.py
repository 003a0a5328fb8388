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
from sqlalchemy.orm import Session

from centers import bookings, incidents
from centers.accounts import Actor
from centers.calendar import local_today
from centers.models import INCIDENT_KINDS, BookingStatus, Slot
from delivery import console, sittings
from delivery.web.auth import staff_required
from delivery.web.context import db, form_id, now, program, query_id
from persistence.errors import InvalidInput, NotFound

blueprint = Blueprint("proctor", __name__, url_prefix="/proctor")
ID = "int(max=2147483647)"


def _actor() -> Actor:
    return Actor.staff(g.staff)


def _reason() -> str:
    return request.form.get("reason", "")


def _back(booking):
    return redirect(url_for("proctor.board", slot=booking.slot_id))


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
        "centre": g.staff.centre, "day": day, "slots": slots, "slot": slot, "rows": rows,
        "summary": console.board_summary(rows), "incident_kinds": INCIDENT_KINDS,
        "slot_time": sittings.local_time(program(), slot.starts_at) if slot else "",
        "slot_labels": {s.id: f"{s.kind} {sittings.local_time(program(), s.starts_at)}" for s in slots},
        "poll_seconds": current_app.config["BOARD_POLL_SECONDS"],
        "updated": current.astimezone(ZoneInfo(program().timezone)).strftime("%H:%M:%S"),
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

@blueprint.get(f"/bookings/<{ID}:booking_id>")
@staff_required("proctor")
def booking_panel(booking_id: int):
    current = now()
    shown = console.panel(db(), program(), booking_id, _actor(), current)
    booking = shown.booking
    return render_template(
        "proctor/booking.html", booking=booking, sitting=shown.sitting, status=shown.status, actions=shown.actions,
        status_label=shown.status_label, time_left=shown.time_left, slot_started=current >= booking.slot.starts_at,
        seats=shown.seats, move_seats=[s for s in shown.seats if s.id != booking.seat_id],
        incident_kinds=INCIDENT_KINDS, slot_time=sittings.local_time(program(), booking.slot.starts_at),
        minutes_left_to_add=shown.minutes_left_to_add, awaiting_login=shown.status == BookingStatus.CHECKED_IN,
    )


@blueprint.post(f"/bookings/<{ID}:booking_id>/check-in")
@staff_required("proctor")
def check_in(booking_id: int):
    booking = bookings.check_in(db(), booking_id, now(), actor=_actor(), seat_id=form_id("seat_id", "seat"),
                                identity_verified=request.form.get("identity_verified") == "yes", reason=_reason())
    flash(f"{booking.candidate.name} is checked in at seat {booking.seat.label}.")
    return _back(booking)


@blueprint.post(f"/bookings/<{ID}:booking_id>/no-show")
@staff_required("proctor")
def no_show(booking_id: int):
    booking = bookings.no_show(db(), booking_id, now(), actor=_actor(), reason=_reason())
    flash(f"{booking.candidate.name} is recorded as a no-show.")
    return _back(booking)


def _done(outcome: sittings.ConsoleOutcome, message: str):
    flash(message.format(name=outcome.booking.candidate.name, **outcome.details))
    return _back(outcome.booking)


@blueprint.post(f"/bookings/<{ID}:booking_id>/start")
@staff_required("proctor")
def start(booking_id: int):
    return _done(sittings.proctor_start(db(), program(), booking_id, now(), actor=_actor(), reason=_reason()),
                 "{name}'s sitting has started.")


@blueprint.post(f"/bookings/<{ID}:booking_id>/pause")
@staff_required("proctor")
def pause(booking_id: int):
    return _done(sittings.pause(db(), program(), booking_id, now(), actor=_actor(), reason=_reason()),
                 "{name}'s sitting is paused; the clock is stopped.")


@blueprint.post(f"/bookings/<{ID}:booking_id>/resume")
@staff_required("proctor")
def resume(booking_id: int):
    return _done(sittings.resume(db(), program(), booking_id, now(), actor=_actor(), reason=_reason()),
                 "{name}'s sitting is running again.")


def _whole_minutes() -> int | None:
    text = request.form.get("minutes", "").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 6 else None


@blueprint.post(f"/bookings/<{ID}:booking_id>/add-time")
@staff_required("proctor")
def add_time(booking_id: int):
    minutes = _whole_minutes()
    if minutes is None:
        bookings.viewed_booking(db(), booking_id, _actor(), now(), "add_time")  # another centre's: refused first
        raise InvalidInput("Enter the minutes to add as a whole number.", field="minutes")
    return _done(sittings.add_time(db(), program(), booking_id, minutes, now(), actor=_actor(), reason=_reason()),
                 "{name} has {minutes} more minutes.")


@blueprint.post(f"/bookings/<{ID}:booking_id>/move-seat")
@staff_required("proctor")
def move_seat(booking_id: int):
    seat_id = form_id("seat_id", "seat")
    if seat_id is None:
        bookings.viewed_booking(db(), booking_id, _actor(), now(), "move_seat")  # another centre's: refused first
        raise InvalidInput("Choose the seat to move to.", field="seat_id")
    return _done(sittings.move_seat(db(), program(), booking_id, seat_id, now(), actor=_actor(), reason=_reason(),
                                    out_of_service=request.form.get("out_of_service") == "yes"),
                 "{name} moves to seat {to_seat}: the sitting is paused until they log in there and you resume it.")


@blueprint.post(f"/bookings/<{ID}:booking_id>/end")
@staff_required("proctor")
def end(booking_id: int):
    return _done(sittings.end(db(), program(), booking_id, now(), actor=_actor(), reason=_reason()),
                 "{name}'s sitting is ended.")


@blueprint.post("/incidents")
@staff_required("proctor")
def log_incident():
    incident = incidents.log_incident(db(), now(), actor=_actor(), kind=request.form.get("kind", ""),
                                      description=request.form.get("description", ""),
                                      slot_id=form_id("slot_id", "slot"), booking_id=form_id("booking_id", "booking"))
    flash("The incident is logged.")
    slot_id = incident.slot_id
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
        slot_labels={s.slot.id: f"{s.slot.kind} {sittings.local_time(program(), s.slot.starts_at)}"
                     for s in result.slots},
        incident_times={i.id: sittings.local_time(program(), i.at) for i, _ in result.incidents},
    )
