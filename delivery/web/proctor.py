"""The proctor's console: the live board of their own centre and every action on a sitting.

Every request is checked against the proctor's own centre on the server; an
attempt on another centre's booking or slot is refused and recorded in the
audit trail. Every action is recorded there with who, when and why.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from centers import bookings, incidents
from centers.bookings import ForeignCentre
from centers.models import INCIDENT_KINDS, Booking, Seat, Slot
from delivery import console, sittings
from delivery.models import Sitting

from delivery.web.auth import staff_required
from delivery.web.context import db, now, program
from persistence import audit
from persistence.errors import InvalidInput, NotFound, Refused, Conflict

blueprint = Blueprint("proctor", __name__, url_prefix="/proctor")

# Actions that must say why; the others may.
REASON_REQUIRED = {"pause", "add_time", "move_seat", "end"}


def _audit(action: str, subject: str, *, reason: str = "", details: dict | None = None,
           centre_id: int | None = None) -> None:
    audit.record(db(), actor=g.staff.username, actor_role="proctor", action=action, subject=subject,
                 centre_id=centre_id if centre_id is not None else g.staff.centre_id, reason=reason,
                 details=details or {}, at=now())


def _refuse_foreign(action: str, subject: str, target_centre_id: int | None) -> None:
    """Record an attempt on another centre in the audit trail, then refuse it."""
    db().rollback()
    _audit(f"refused_{action}", subject, reason="not the proctor's centre",
           details={"proctor_centre_id": g.staff.centre_id}, centre_id=target_centre_id)
    db().commit()
    raise Refused("This is another centre's; a proctor acts on their own centre only.")


def _own_booking(booking_id: int, action: str) -> Booking:
    try:
        return bookings.booking_at_centre(db(), booking_id, g.staff)
    except ForeignCentre as refused:
        _refuse_foreign(action, f"booking:{booking_id}", refused.centre_id)


def _own_slot(slot_id: int | None, action: str) -> Slot | None:
    if slot_id is None:
        return None
    slot = db().get(Slot, slot_id)
    if slot is None:
        raise NotFound("There is no such slot.")
    if slot.centre_id != g.staff.centre_id:
        _refuse_foreign(action, f"slot:{slot_id}", slot.centre_id)
    return slot


def _sitting_of(booking: Booking) -> Sitting:
    sitting = db().scalar(select(Sitting).where(Sitting.booking_id == booking.id).with_for_update())
    if sitting is None:
        raise Conflict(f"{booking.candidate.name} has not logged in at a seat yet.")
    return sitting


def _reason(action: str) -> str:
    reason = request.form.get("reason", "").strip()
    if action in REASON_REQUIRED and not reason:
        raise InvalidInput("Say why (the reason is kept in the audit trail).")
    return reason[:500]


def _back(booking: Booking):
    return redirect(url_for("proctor.board", slot=booking.slot_id))


# ---- the board -------------------------------------------------------------------

def _board_context(slot_param: int | None) -> dict:
    current = now()
    day = sittings.local_date(program(), current)
    slots = console.slots_of_day(db(), g.staff.centre_id, day)
    slot = _own_slot(slot_param, "view_board") or console.current_slot(program(), slots, current)
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
    return render_template("proctor/board.html", **_board_context(request.args.get("slot", type=int)))


@blueprint.get("/board/live")
@staff_required("proctor")
def board_live():
    """The board's live part alone, which the console page polls."""
    return render_template("proctor/_board.html", **_board_context(request.args.get("slot", type=int)))


# ---- one candidate -----------------------------------------------------------------

@blueprint.get("/bookings/<int:booking_id>")
@staff_required("proctor")
def booking_panel(booking_id: int):
    booking = _own_booking(booking_id, "view_booking")
    sitting = db().scalar(select(Sitting).where(Sitting.booking_id == booking.id))
    current = now()
    status = sitting.status if sitting else booking.status
    if sitting is not None and sittings.expire_if_due(db(), program(), sitting, current):
        db().commit()
        status = sitting.status
    actions = console.ACTIONS.get(status, ())
    seats = bookings.free_seats(db(), booking) if {"check_in", "move_seat"} & set(actions) else []
    return render_template(
        "proctor/booking.html", booking=booking, sitting=sitting, status=status, actions=actions,
        status_label=console.STATUS_LABELS.get(status, status),
        time_left=console.format_seconds(sittings.remaining_seconds(sitting, current)) if sitting else "",
        slot_started=current >= booking.slot.starts_at,
        seats=seats, move_seats=[s for s in seats if s.id != booking.seat_id], incident_kinds=INCIDENT_KINDS,
        slot_time=sittings.local_time(program(), booking.slot.starts_at),
    )


@blueprint.post("/bookings/<int:booking_id>/check-in")
@staff_required("proctor")
def check_in(booking_id: int):
    booking = _own_booking(booking_id, "check_in")
    seat_id = request.form.get("seat_id", type=int)
    bookings.check_in(db(), booking, g.staff, now(), identity_verified=request.form.get("identity_verified") == "yes",
                      seat_id=seat_id)
    seat = db().get(Seat, booking.seat_id)
    _audit("check_in", f"booking:{booking.id}", reason=request.form.get("reason", "").strip()[:500],
           details={"candidate": booking.candidate.name, "identity_verified": True, "seat": seat.label})
    db().commit()
    flash(f"{booking.candidate.name} is checked in at seat {seat.label}.")
    return _back(booking)


@blueprint.post("/bookings/<int:booking_id>/no-show")
@staff_required("proctor")
def no_show(booking_id: int):
    booking = _own_booking(booking_id, "no_show")
    if booking.status != "booked":
        raise Conflict(f"Only a booking not checked in can be a no-show; this one is {booking.status}.")
    if now() < booking.slot.starts_at:
        raise Conflict("A candidate is a no-show only once the slot has started.")
    booking.status = "no_show"
    _audit("no_show", f"booking:{booking.id}", details={"candidate": booking.candidate.name})
    db().commit()
    flash(f"{booking.candidate.name} is recorded as a no-show.")
    return _back(booking)


def _sitting_action(booking_id: int, action: str, apply, message: str):
    booking = _own_booking(booking_id, action)
    reason = _reason(action)
    sitting = _sitting_of(booking)
    current = now()
    before = {"status": sitting.status, "remaining_seconds": round(sittings.remaining_seconds(sitting, current), 1)}
    details = apply(booking, sitting, current) or {}
    after = {"status": sitting.status, "remaining_seconds": round(sittings.remaining_seconds(sitting, current), 1)}
    _audit(action, f"sitting:{sitting.id}", reason=reason,
           details={"booking_id": booking.id, "candidate": booking.candidate.name, "position": sitting.current_position,
                    "before": before, "after": after, **details})
    db().commit()
    flash(message.format(name=booking.candidate.name, **details))
    return _back(booking)


@blueprint.post("/bookings/<int:booking_id>/start")
@staff_required("proctor")
def start(booking_id: int):
    return _sitting_action(booking_id, "start",
                           lambda b, s, t: sittings.proctor_start(db(), program(), s, t),
                           "{name}'s sitting has started.")


@blueprint.post("/bookings/<int:booking_id>/pause")
@staff_required("proctor")
def pause(booking_id: int):
    return _sitting_action(booking_id, "pause", lambda b, s, t: sittings.pause(db(), program(), s, t),
                           "{name}'s sitting is paused; the clock is stopped.")


@blueprint.post("/bookings/<int:booking_id>/resume")
@staff_required("proctor")
def resume(booking_id: int):
    return _sitting_action(booking_id, "resume", lambda b, s, t: sittings.resume(db(), program(), s, t),
                           "{name}'s sitting is running again.")


@blueprint.post("/bookings/<int:booking_id>/add-time")
@staff_required("proctor")
def add_time(booking_id: int):
    _own_booking(booking_id, "add_time")  # another centre's is refused (and recorded) before the form is read
    try:
        minutes = float(request.form.get("minutes", ""))
    except ValueError:
        raise InvalidInput("Enter the minutes to add as a number.") from None

    def apply(booking, sitting, current):
        sittings.add_time(db(), program(), sitting, minutes, current)
        return {"minutes": minutes}

    return _sitting_action(booking_id, "add_time", apply, "{name} has {minutes:g} more minutes.")


@blueprint.post("/bookings/<int:booking_id>/move-seat")
@staff_required("proctor")
def move_seat(booking_id: int):
    _own_booking(booking_id, "move_seat")  # another centre's is refused (and recorded) before the form is read
    seat_id = request.form.get("seat_id", type=int)
    if seat_id is None:
        raise InvalidInput("Choose the seat to move to.")
    out_of_service = request.form.get("out_of_service") == "yes"

    def apply(booking, sitting, current):
        old = db().get(Seat, sitting.seat_id or booking.seat_id) if (sitting.seat_id or booking.seat_id) else None
        sittings.move_seat(db(), program(), sitting, booking, seat_id, current)
        if old is not None and out_of_service:
            old.active = False
        new = db().get(Seat, seat_id)
        return {"from_seat": old.label if old else "", "to_seat": new.label, "old_seat_out_of_service": out_of_service}

    return _sitting_action(booking_id, "move_seat", apply,
                           "{name} moves to seat {to_seat}: the sitting is paused until they log in there "
                           "and you resume it.")


@blueprint.post("/bookings/<int:booking_id>/end")
@staff_required("proctor")
def end(booking_id: int):
    return _sitting_action(booking_id, "end",
                           lambda b, s, t: sittings.end(db(), program(), s, t, reason="misconduct"),
                           "{name}'s sitting is ended.")


@blueprint.post("/incidents")
@staff_required("proctor")
def log_incident():
    slot_id = request.form.get("slot_id", type=int)
    booking_id = request.form.get("booking_id", type=int)
    _own_slot(slot_id, "log_incident")
    if booking_id is not None:
        booking = _own_booking(booking_id, "log_incident")
        slot_id = slot_id or booking.slot_id
    incident = incidents.log_incident(db(), g.staff, now(), kind=request.form.get("kind", ""),
                                      description=request.form.get("description", ""), slot_id=slot_id,
                                      booking_id=booking_id)
    _audit("log_incident", f"incident:{incident.id}", reason=incident.description[:500],
           details={"kind": incident.kind, "slot_id": slot_id, "booking_id": booking_id})
    db().commit()
    flash("The incident is logged.")
    return redirect(url_for("proctor.board", slot=slot_id) if slot_id else url_for("proctor.board"))


# ---- the end of the day -------------------------------------------------------------

@blueprint.get("/report")
@staff_required("proctor")
def report():
    current = now()
    text = request.args.get("date", "")
    try:
        day = dt.date.fromisoformat(text) if text else sittings.local_date(program(), current)
    except ValueError:
        raise InvalidInput("Give the date as YYYY-MM-DD.") from None
    result = console.day_report(db(), program(), g.staff.centre_id, day, current)
    return render_template(
        "proctor/report.html", centre=g.staff.centre, report=result, totals=result.totals,
        slot_labels={s.slot.id: f"{s.slot.kind} {sittings.local_time(program(), s.slot.starts_at)}"
                     for s in result.slots},
        incident_times={i.id: sittings.local_time(program(), i.at) for i, _ in result.incidents},
    )
