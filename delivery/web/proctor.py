"""The proctor's console: today's sittings at their own centre."""
from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from centers import bookings
from delivery import sittings
from delivery.models import Sitting
from delivery.web.auth import staff_required
from delivery.web.context import db, now, program
from persistence import audit

blueprint = Blueprint("proctor", __name__, url_prefix="/proctor")


@blueprint.get("/")
@staff_required("proctor")
def board():
    current = now()
    day = sittings.local_date(program(), current)
    todays = bookings.bookings_for_centre_day(db(), g.staff.centre_id, day)
    by_booking = {
        s.booking_id: s
        for s in db().scalars(select(Sitting).where(Sitting.booking_id.in_([b.id for b in todays])))
    }
    expired = [s for s in by_booking.values() if sittings.expire_if_due(db(), program(), s, current)]
    if expired:
        db().commit()
    rows = []
    for booking in todays:
        sitting = by_booking.get(booking.id)
        rows.append({
            "booking": booking,
            "sitting": sitting,
            "status": sitting.status if sitting else booking.status,
            "remaining_minutes": round(sittings.remaining_seconds(sitting, current) / 60) if sitting else None,
        })
    return render_template("proctor/board.html", centre=g.staff.centre, day=day, rows=rows)


@blueprint.post("/bookings/<int:booking_id>/check-in")
@staff_required("proctor")
def check_in(booking_id: int):
    booking = bookings.booking_at_centre(db(), booking_id, g.staff)
    bookings.check_in(db(), booking, g.staff, now(), identity_verified=request.form.get("identity_verified") == "yes")
    audit.record(db(), actor=g.staff.username, actor_role="proctor", action="check_in",
                 subject=f"booking:{booking.id}", centre_id=g.staff.centre_id, at=now(),
                 details={"candidate": booking.candidate.name, "identity_verified": True})
    db().commit()
    flash(f"{booking.candidate.name} is checked in.")
    return redirect(url_for("proctor.board"))
