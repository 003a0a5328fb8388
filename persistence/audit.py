"""The audit trail: an append-only, hash-chained record of privileged actions.

Each event's ``hash`` covers its own content and the previous event's hash, so
editing or deleting any stored event breaks the chain from that point on;
:func:`verify_chain` finds the first break.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import JSON, ForeignKey, Integer, String, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from persistence.base import Base, UTCDateTime, utcnow

GENESIS = "0" * 64


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))  # username, "candidate:<sitting id>", or "system"
    actor_role: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(String(64))  # e.g. "sitting:12", "item:S01-004"
    # The centre an action concerns, for each centre's own trail; empty for bank-wide actions.
    centre_id: Mapped[int | None] = mapped_column(Integer, index=True)
    reason: Mapped[str] = mapped_column(String(500), default="")
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    previous_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


def _digest(event: AuditEvent) -> str:
    body = json.dumps(
        {
            "id": event.id,
            "at": event.at.astimezone(dt.timezone.utc).isoformat(timespec="microseconds"),
            "actor": event.actor,
            "actor_role": event.actor_role,
            "action": event.action,
            "subject": event.subject,
            "centre_id": event.centre_id,
            "reason": event.reason,
            "details": event.details,
            "previous": event.previous_hash,
        },
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(body.encode()).hexdigest()


def _lock_chain(session: Session) -> None:
    # One writer at a time extends the chain; SQLite serialises writers by itself.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(7331001)"))


def record(
    session: Session,
    *,
    actor: str,
    actor_role: str,
    action: str,
    subject: str,
    centre_id: int | None = None,
    reason: str = "",
    details: dict | None = None,
    at: dt.datetime | None = None,
) -> AuditEvent:
    """Append an event to the chain, in the caller's transaction."""
    _lock_chain(session)
    last = session.execute(select(AuditEvent.id, AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)).first()
    event = AuditEvent(
        id=(last.id + 1) if last else 1,
        at=(at or utcnow()).astimezone(dt.timezone.utc),
        actor=actor,
        actor_role=actor_role,
        action=action,
        subject=subject,
        centre_id=centre_id,
        reason=reason[:500],
        details=details or {},
        previous_hash=last.hash if last else GENESIS,
    )
    event.hash = _digest(event)
    session.add(event)
    session.flush()
    return event


@dataclass(frozen=True)
class ChainReport:
    events: int
    first_broken_id: int | None
    problem: str | None

    @property
    def intact(self) -> bool:
        return self.problem is None


def verify_chain(session: Session, batch: int = 5000) -> ChainReport:
    """Walk the whole trail; report the first event that was edited, removed or inserted."""
    expected_previous, expected_id, count = GENESIS, 1, 0
    last_id = 0
    while True:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.id > last_id).order_by(AuditEvent.id).limit(batch)
        ).all()
        if not events:
            return ChainReport(count, None, None)
        for event in events:
            if event.id != expected_id:
                return ChainReport(count, expected_id, f"event {expected_id} is missing")
            if event.previous_hash != expected_previous:
                return ChainReport(count, event.id, f"event {event.id} does not follow event {event.id - 1}")
            if _digest(event) != event.hash:
                return ChainReport(count, event.id, f"event {event.id} was altered after it was written")
            expected_previous, expected_id, count = event.hash, event.id + 1, count + 1
        last_id = events[-1].id
        session.expunge_all()
