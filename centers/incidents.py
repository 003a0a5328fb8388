"""Incidents a proctor logs during a slot (equipment, identity, misconduct, ...)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from centers.models import INCIDENT_KINDS, Incident, Slot, StaffAccount
from persistence.errors import InvalidInput, Refused


def log_incident(session: Session, proctor: StaffAccount, now: dt.datetime, *, kind: str, description: str,
                 slot_id: int | None = None, booking_id: int | None = None) -> Incident:
    """Record an incident at the proctor's own centre."""
    if kind not in INCIDENT_KINDS:
        raise InvalidInput(f"Choose the kind of incident: one of {', '.join(INCIDENT_KINDS)}.")
    description = description.strip()
    if not description:
        raise InvalidInput("Describe what happened.")
    if slot_id is not None:
        slot = session.get(Slot, slot_id)
        if slot is None or slot.centre_id != proctor.centre_id:
            raise Refused("That slot is not at your centre.")
    incident = Incident(centre_id=proctor.centre_id, slot_id=slot_id, booking_id=booking_id, kind=kind,
                        description=description[:1000], logged_by=proctor.id, at=now)
    session.add(incident)
    session.flush()
    return incident


def incidents_between(session: Session, centre_id: int, start: dt.datetime, end: dt.datetime) -> list[Incident]:
    return list(session.scalars(select(Incident).where(Incident.centre_id == centre_id, Incident.at >= start,
                                                       Incident.at < end).order_by(Incident.at)))
