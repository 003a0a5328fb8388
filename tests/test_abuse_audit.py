"""The audit trail: every privileged action is in it, and `cbt audit verify` finds any edit or deletion.

The plain hash chain is tested in tests/test_audit.py; here the attacks it cannot see
alone (a rewritten suffix, a cut-off end, forged events appended) and the seal that
catches them, through the command an operator runs.
"""
from __future__ import annotations

import uuid

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, func, insert, select, update

from delivery.cli import main as cli
from persistence.audit import AuditEvent, AuditSeal, _digest, audit_key, record, verify_chain
from tests.helpers import booked_candidate, csrf_token, login_staff


@pytest.fixture
def verify(database_url, monkeypatch):
    """`cbt audit verify` on the test database, as an operator runs it."""
    monkeypatch.setenv("CBT_DATABASE_URL", database_url)

    def run():
        result = CliRunner().invoke(cli, ["audit", "verify"])
        return result.exit_code, result.output
    return run


@pytest.fixture
def tail(session):
    """Three fresh events at the end of the trail; the test puts back whatever it breaks."""
    tag = uuid.uuid4().hex[:6]
    events = [record(session, actor=f"proctor-{tag}", actor_role="proctor", action="pause", subject=f"sitting:{n}",
                     centre_id=1, reason="test", details={"n": n}) for n in range(3)]
    session.commit()
    ids = [e.id for e in events]
    saved = [{c.name: getattr(session.get(AuditEvent, i), c.name) for c in AuditEvent.__table__.columns} for i in ids]
    seal = {c.name: getattr(session.get(AuditSeal, 1), c.name) for c in AuditSeal.__table__.columns}
    yield ids
    session.rollback()
    session.execute(delete(AuditEvent).where(AuditEvent.id >= ids[0]))
    session.execute(insert(AuditEvent), saved)
    session.execute(update(AuditSeal).where(AuditSeal.id == 1).values(**seal))
    session.commit()
    assert verify_chain(session).intact


def test_an_intact_trail_verifies(verify, tail):
    code, output = verify()
    assert code == 0 and "audit trail intact" in output


def test_an_edited_event_is_found(session, verify, tail):
    session.execute(update(AuditEvent).where(AuditEvent.id == tail[1]).values(reason="nothing happened"))
    session.commit()
    code, output = verify()
    assert code == 1 and f"event {tail[1]} was altered" in output


def test_a_deleted_event_in_the_middle_is_found(session, verify, tail):
    session.execute(delete(AuditEvent).where(AuditEvent.id == tail[1]))
    session.commit()
    code, output = verify()
    assert code == 1 and f"event {tail[1]} is missing" in output


def test_events_cut_off_the_end_are_found(session, verify, tail):
    session.execute(delete(AuditEvent).where(AuditEvent.id >= tail[1]))
    session.commit()
    code, output = verify()
    assert code == 1 and "deleted from its end" in output


def test_a_rewritten_suffix_with_every_hash_recomputed_is_found(session, verify, tail):
    """Rewrite an event and recompute the whole chain after it: the hashes agree, the seal does not."""
    previous = session.get(AuditEvent, tail[0] - 1).hash if tail[0] > 1 else "0" * 64
    for event_id in tail:
        event = session.get(AuditEvent, event_id)
        if event_id == tail[0]:
            event.reason = "forged"
        event.previous_hash = previous
        event.hash = _digest(event)
        previous = event.hash
    session.commit()
    code, output = verify()
    assert code == 1 and "the trail was rewritten" in output
    # Resealing it needs the audit key, which is not in the database: a seal made without it fails.
    session.execute(update(AuditSeal).where(AuditSeal.id == 1).values(hash=previous))
    session.commit()
    code, output = verify()
    assert code == 1 and "not valid under the audit key" in output


def test_events_appended_outside_the_application_are_found(session, verify, tail):
    last = session.get(AuditEvent, tail[-1])
    forged = AuditEvent(id=last.id + 1, at=last.at, actor="psychometrician", actor_role="psychometrician",
                        action="rescoring.apply", subject="campaign:1", centre_id=None, reason="", details={},
                        previous_hash=last.hash)
    forged.hash = _digest(forged)
    session.add(forged)
    session.commit()
    code, output = verify()
    assert code == 1 and "not sealed" in output


def test_the_wrong_audit_key_is_told_apart(session, tail):
    report = verify_chain(session, key=b"\x01" * 32)
    assert not report.intact and "wrong CBT_AUDIT_KEY" in report.problem
    assert verify_chain(session, key=audit_key()).intact


# Every privileged action of the web application, and the audit action it leaves.
def _events_since(session, last: int) -> list[AuditEvent]:
    session.expire_all()
    return session.scalars(select(AuditEvent).where(AuditEvent.id > last).order_by(AuditEvent.id)).all()


def test_staff_sign_in_and_out_are_recorded_with_the_address(app, session, program, clock):
    booked = booked_candidate(session, program, clock.now)
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "192.0.2.44"
    last = session.scalar(select(func.max(AuditEvent.id))) or 0
    assert login_staff(client, booked.proctor, booked.password).status_code == 302
    client.post("/staff/logout", data={"csrf_token": csrf_token(client, "/staff/login")})
    events = _events_since(session, last)
    assert [(e.action, e.actor, e.centre_id, e.details["client"]) for e in events] == [
        ("staff.sign_in", booked.proctor, None, "192.0.2.44"), ("staff.sign_out", booked.proctor, None, "192.0.2.44")]


def test_every_export_of_bank_data_is_recorded(app, session):
    """Exports put keys, parameters or responses in someone's hands: each one is in the trail."""
    client = app.test_client()
    login_staff(client, "psychometrician", "psychometrician-demo-pass")
    for path, subject in (("/bank/exchange/export.json", "bank"), ("/bank/exchange/export-qti?status=draft", "bank"),
                          ("/bank/exchange/responses.csv", "responses"), ("/bank/exchange/anchors.csv", "anchors")):
        last = session.scalar(select(func.max(AuditEvent.id))) or 0
        response = client.get(path)
        assert response.status_code == 200, path
        events = _events_since(session, last)
        assert [(e.action, e.subject, e.actor) for e in events] == [("bank.export", subject, "psychometrician")], path
    assert verify_chain(session).intact
