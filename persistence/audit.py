"""The audit trail: an append-only, hash-chained record of privileged actions.

Each event's ``hash`` covers its own content and the previous event's hash, so
editing or deleting any stored event breaks the chain from that point on;
:func:`verify_chain` finds the first break.

A plain hash chain needs no secret, so someone who can write to the database
could rewrite an event and recompute every hash after it, or cut events off the
end. The chain's head is therefore *sealed*: every append also stores the head's
id and hash with an HMAC under the audit key, which lives outside the database
(``CBT_AUDIT_KEY``, or a file created on first use in the key directory,
``CBT_KEY_DIR``, default ``var/keys``). A rewritten or truncated trail no longer
matches its seal, and a new seal cannot be made without the key.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from dataclasses import dataclass

from sqlalchemy import JSON, Integer, String, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from persistence.base import Base, UTCDateTime, utcnow
from persistence.files import secret_key_file
from persistence.settings import load_settings

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


class AuditSeal(Base):
    """The sealed head of the trail: one row, rewritten by every append."""

    __tablename__ = "audit_seal"

    id: Mapped[int] = mapped_column(primary_key=True)  # always 1
    event_id: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str] = mapped_column(String(64))


class AuditKeyError(RuntimeError):
    """The audit key is missing or malformed."""


_KEYS: dict[str, bytes] = {}


def audit_key() -> bytes:
    """The key that seals the trail's head: ``CBT_AUDIT_KEY`` (64 hex digits), or the
    file ``audit-seal.key`` in ``CBT_KEY_DIR`` (default ``var/keys``), created on first use.

    Every process that writes or verifies the trail (web servers, the CLI) needs the same key.
    """
    settings = load_settings()
    text = settings.audit_key
    if text:
        source = "CBT_AUDIT_KEY"
    else:
        path = settings.key_dir / "audit-seal.key"
        source = str(path)
        if source in _KEYS:
            return _KEYS[source]
        text = secret_key_file(path).read_text().strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise AuditKeyError(f"{source}: the audit key must be 64 hex digits") from None
    if len(key) < 32:
        raise AuditKeyError(f"{source}: the audit key must be 64 hex digits")
    _KEYS[source] = key
    return key


def seal_mac(key: bytes, event_id: int, event_hash: str) -> str:
    return hmac.new(key, f"{event_id}:{event_hash}".encode(), hashlib.sha256).hexdigest()


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
    seal = session.get(AuditSeal, 1)
    if seal is None:
        seal = AuditSeal(id=1)
        session.add(seal)
    seal.event_id, seal.hash, seal.mac = event.id, event.hash, seal_mac(audit_key(), event.id, event.hash)
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


def _seal(session: Session) -> tuple[int, str, str] | None:
    row = session.execute(select(AuditSeal.event_id, AuditSeal.hash, AuditSeal.mac).where(AuditSeal.id == 1)).first()
    return tuple(row) if row else None


def verify_chain(session: Session, batch: int = 5000, key: bytes | None = None) -> ChainReport:
    """Walk the whole trail; report the first event that was edited, removed or inserted,
    and whether the end of the trail is the head sealed under the audit key (``key``, by
    default :func:`audit_key`): a trail rewritten from some event on, or cut short, is not.
    """
    key = audit_key() if key is None else key
    seal = _seal(session)
    expected_previous, expected_id, count = GENESIS, 1, 0
    sealed_hash = None
    last_id = 0
    while True:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.id > last_id).order_by(AuditEvent.id).limit(batch)
        ).all()
        if not events:
            return _check_seal(session, key, seal, count, sealed_hash)
        for event in events:
            if event.id != expected_id:
                return ChainReport(count, expected_id, f"event {expected_id} is missing")
            if event.previous_hash != expected_previous:
                return ChainReport(count, event.id, f"event {event.id} does not follow event {event.id - 1}")
            if _digest(event) != event.hash:
                return ChainReport(count, event.id, f"event {event.id} was altered after it was written")
            if seal is not None and event.id == seal[0]:
                sealed_hash = event.hash
            expected_previous, expected_id, count = event.hash, event.id + 1, count + 1
        last_id = events[-1].id
        session.expunge_all()


def _check_seal(session: Session, key: bytes, seal, count: int, sealed_hash: str | None) -> ChainReport:
    """The intact chain of ``count`` events against the seal read before walking it."""
    if seal is None:
        if count == 0:
            return ChainReport(0, None, None)
        return ChainReport(count, count, "the trail's head is not sealed: events were written outside the application")
    event_id, head_hash, mac = seal
    if not hmac.compare_digest(mac, seal_mac(key, event_id, head_hash)):
        return ChainReport(count, event_id, "the seal of the trail's head is not valid under the audit key "
                                            "(a forged seal, or the wrong CBT_AUDIT_KEY)")
    if event_id > count:
        return ChainReport(count, count + 1, f"the trail ends at event {count} but was sealed at event {event_id}: "
                                             "events were deleted from its end")
    if sealed_hash != head_hash:
        return ChainReport(count, event_id, f"event {event_id} is not the event that was sealed: "
                                            "the trail was rewritten")
    if count > event_id:
        # Appended while we walked? The seal then moved on with them.
        latest = _seal(session)
        if latest is None or latest[0] < count:
            return ChainReport(count, event_id + 1, f"events after {event_id} are not sealed: "
                                                    "they were written outside the application")
    return ChainReport(count, None, None)
