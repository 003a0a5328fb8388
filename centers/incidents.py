"""Incidents a proctor logs during a slot (equipment, identity, misconduct, ...)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from centers.bookings import BookingError
from centers.models import INCIDENT_KINDS, Incident, Slot, StaffAccount


def log_incident(session: Session, proctor: StaffAccount, now: dt.datetime, *, kind: str, description: str,
                 slot_id: int | None = None, booking_id: int | None = None) -> Incident:
    """Record an incident at the proctor's own centre."""
    if kind not in INCIDENT_KINDS:
        raise BookingError(f"Choose the kind of incident: one of {', '.join(INCIDENT_KINDS)}.", status=422)
    description = description.strip()
    if not description:
        raise BookingError("Describe what happened.", status=422)
    if slot_id is not None:
        slot = session.get(Slot, slot_id)
        if slot is None or slot.centre_id != proctor.centre_id:
            raise BookingError("That slot is not at your centre.", status=403)
    incident = Incident(centre_id=proctor.centre_id, slot_id=slot_id, booking_id=booking_id, kind=kind,
                        description=description[:1000], logged_by=proctor.id, at=now)
    session.add(incident)
    session.flush()
    return incident


def incidents_between(session: Session, centre_id: int, start: dt.datetime, end: dt.datetime) -> list[Incident]:
    return list(session.scalars(select(Incident).where(Incident.centre_id == centre_id, Incident.at >= start,
                                                       Incident.at < end).order_by(Incident.at)))
