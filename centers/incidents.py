"""Incidents a proctor logs during a slot (equipment, identity, misconduct, ...)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from centers.accounts import Actor
from centers.bookings import booking_for, check_centre, guarded
from centers.models import INCIDENT_KINDS, Incident, Slot
from persistence.errors import InvalidInput, NotFound

# The form's limit (maxlength), enforced here too.
DESCRIPTION_LENGTH = 1000


def log_incident(session: Session, now: dt.datetime, *, actor: Actor, kind: str, description: str,
                 slot_id: int | None = None, booking_id: int | None = None) -> Incident:
    """Record an incident at the proctor's own centre (of a slot, or of a booking and its slot),
    with its audit record; another centre's slot or booking is refused and the attempt recorded."""
    def change() -> Incident:
        nonlocal slot_id
        if slot_id is not None:
            slot = session.get(Slot, slot_id)
            if slot is None:
                raise NotFound("There is no such slot.")
            check_centre(actor, slot.centre_id, f"slot:{slot_id}")
        if booking_id is not None:
            booking = booking_for(session, booking_id, actor)
            slot_id = slot_id or booking.slot_id
        if kind not in INCIDENT_KINDS:
            raise InvalidInput("Choose the kind of incident from the list.", field="kind")
        text = description.strip()
        if not text:
            raise InvalidInput("Describe what happened.", field="description")
        if len(text) > DESCRIPTION_LENGTH:
            raise InvalidInput("Describe it in at most {limit} characters.", field="description",
                               limit=DESCRIPTION_LENGTH)
        incident = Incident(centre_id=actor.centre_id, slot_id=slot_id, booking_id=booking_id, kind=kind,
                            description=text, logged_by=actor.account_id, at=now)
        session.add(incident)
        session.flush()
        actor.record(session, "log_incident", f"incident:{incident.id}", now=now, centre_id=actor.centre_id,
                     reason=text[:500], details={"kind": kind, "slot_id": slot_id, "booking_id": booking_id})
        return incident

    return guarded(session, actor, "log_incident", now, change)


def incidents_between(session: Session, centre_id: int, start: dt.datetime, end: dt.datetime) -> list[Incident]:
    return list(session.scalars(select(Incident).where(Incident.centre_id == centre_id, Incident.at >= start,
                                                       Incident.at < end).order_by(Incident.at)))
