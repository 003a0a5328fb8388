"""The audit trail's hash chain finds edited, deleted and inserted events."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import delete, update

from persistence.audit import AuditEvent, record, verify_chain


@pytest.fixture
def trail(session):
    """Three fresh events at the end of the trail (other tests add theirs before)."""
    tag = uuid.uuid4().hex[:6]
    events = [
        record(session, actor=f"proctor-{tag}", actor_role="proctor", action=action, subject=f"sitting:{n}",
               centre_id=1, reason="test", details={"n": n})
        for n, action in enumerate(["pause", "resume", "add_time"])
    ]
    session.commit()
    return [e.id for e in events]


def test_an_untouched_trail_verifies(session, trail):
    report = verify_chain(session)
    assert report.intact and report.events >= 3


def test_an_edited_event_breaks_the_chain(session, trail):
    session.execute(update(AuditEvent).where(AuditEvent.id == trail[1]).values(reason="nothing happened"))
    session.commit()
    report = verify_chain(session)
    assert not report.intact and report.first_broken_id == trail[1] and "altered" in report.problem
    session.execute(update(AuditEvent).where(AuditEvent.id == trail[1]).values(reason="test"))
    session.commit()
    assert verify_chain(session).intact


def test_a_deleted_event_breaks_the_chain(session, trail):
    removed = session.get(AuditEvent, trail[1])
    saved = {c.name: getattr(removed, c.name) for c in AuditEvent.__table__.columns}
    session.execute(delete(AuditEvent).where(AuditEvent.id == trail[1]))
    session.commit()
    report = verify_chain(session)
    assert not report.intact and report.first_broken_id == trail[1] and "missing" in report.problem
    session.add(AuditEvent(**saved))
    session.commit()
    assert verify_chain(session).intact


def test_a_recomputed_forgery_still_breaks_at_the_next_event(session, trail):
    from persistence.audit import _digest

    event = session.get(AuditEvent, trail[0])
    original = event.reason, event.hash
    event.reason = "forged"
    event.hash = _digest(event)
    session.commit()
    report = verify_chain(session)
    assert report.first_broken_id == trail[1] and "does not follow" in report.problem
    event.reason, event.hash = original
    session.commit()
    assert verify_chain(session).intact
