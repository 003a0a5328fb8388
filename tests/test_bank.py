"""The bank itself: encryption at rest, keys, versions, the lifecycle, enemy sets."""
from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pytest
from sqlalchemy import select, text

from itembank import bank, lifecycle
from itembank.assembly import draw_form
from itembank.content import ContentKeyError, ItemContent, unpack
from itembank.encryption import check_content_keys, rotate_keys
from itembank.enemies import delete_enemy_set, save_enemy_set
from itembank.keyring import current_keyring, load_keyring, use_keyring
from itembank.models import Item, ItemStatusChange, ItemVersion
from itembank.sample import sample_items, sample_translations
from persistence import create_database_engine, session_factory, upgrade_database
from persistence.audit import AuditEvent, verify_chain
from persistence.errors import DomainError

NOW = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.timezone.utc)
PSY = {"actor": "psychometrician", "actor_role": "psychometrician", "now": NOW}


def test_the_database_holds_no_item_text_in_plain_text(engine):
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT content FROM item_versions")).scalars().all()
    assert len(rows) >= 330
    assert all(re.fullmatch(r"v1:[0-9a-f]{8}:[A-Za-z0-9+/=]+", value) for value in rows)
    stored = "\n".join(rows)
    japanese = sample_translations()["ja"]
    for raw in sample_items()[:60]:
        for text_of in (raw, japanese[raw["id"]]):  # neither language's text
            for secret in (text_of["stem"][:40], max(text_of["options"], key=len), text_of["rationale"][:30]):
                assert len(secret) < 8 or secret not in stored
    # ... and every row decrypts to its item, in Japanese with its English version.
    content = unpack(rows[0])
    assert content.language == "ja" and content.stem in {raw["stem"] for raw in japanese.values()}
    assert content.in_language("en").stem in {raw["stem"] for raw in sample_items()}


@pytest.fixture
def own_bank(tmp_path, monkeypatch, program):
    """A small bank in a database of its own, under a key file of its own."""
    monkeypatch.setenv("CBT_CONTENT_KEY_FILE", str(tmp_path / "keys.json"))
    monkeypatch.delenv("CBT_CONTENT_KEYS", raising=False)
    monkeypatch.setenv("CBT_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("CBT_CONTENT_KEY_FILE")
    use_keyring(None)  # the dev key file of this test's var/ is created on first use
    engine = create_database_engine(f"sqlite:///{tmp_path / 'own.sqlite3'}")
    upgrade_database(engine)
    with session_factory(engine)() as session:
        for raw in sample_items()[:12]:
            bank.add_item(session, program, code=raw["id"], category=raw["category"], status=raw["status"],
                          content=ItemContent(raw["stem"], tuple(raw["options"]), "ABCD".index(raw["key"])),
                          parameters=(raw["a"], raw["b"], raw["c"]), parameter_source="synthetic")
        session.commit()
        yield engine, session, tmp_path
    engine.dispose()
    use_keyring(None)


def test_rotation_re_encrypts_the_whole_bank_under_a_new_key_and_drops_the_old(own_bank, monkeypatch):
    engine, session, tmp_path = own_bank
    old = current_keyring()
    before = {v.id: unpack(v.content) for v in session.scalars(select(ItemVersion))}
    report = rotate_keys(session, actor="ops", actor_role="operations", now=NOW)
    assert report.old_keys == (old.active,) and report.new_key != old.active and report.reencrypted == 12
    new = load_keyring()
    assert list(new.keys) == [report.new_key]  # the key file now holds the new key only
    session.expire_all()
    assert {v.id: unpack(v.content, new) for v in session.scalars(select(ItemVersion))} == before
    assert set(check_content_keys(session, new)) == {report.new_key}
    # The rotation is audited in its own transaction.
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "bank.rotate_key")).one()
    assert event.details["new_key"] == report.new_key and event.details["reencrypted"] == 12
    with pytest.raises(ContentKeyError, match=f"encrypted with key\\(s\\) {report.new_key}"):
        check_content_keys(session, old)


def test_a_wrong_or_missing_key_refuses_start_up_with_a_clear_message(own_bank, monkeypatch):
    engine, session, tmp_path = own_bank
    from delivery.web import StartupError, create_app

    create_app({"ENGINE": engine, "SECRET_KEY": "x"})  # the right key: starts
    kid = current_keyring().active
    # The same key id with other key material: AES-GCM's tag tells it is wrong.
    monkeypatch.setenv("CBT_CONTENT_KEYS", f"{kid}:{'A' * 43}=")
    use_keyring(None)
    with pytest.raises(StartupError, match=f"key {kid} of CBT_CONTENT_KEYS does not decrypt"):
        create_app({"ENGINE": engine, "SECRET_KEY": "x"})
    monkeypatch.setenv("CBT_CONTENT_KEYS", f"0badc0de:{'A' * 43}=")
    use_keyring(None)
    with pytest.raises(StartupError, match=f"encrypted with key\\(s\\) {kid}, which CBT_CONTENT_KEYS does not hold"):
        create_app({"ENGINE": engine, "SECRET_KEY": "x"})
    monkeypatch.delenv("CBT_CONTENT_KEYS")
    monkeypatch.setenv("CBT_CONTENT_KEY_FILE", str(tmp_path / "nowhere.json"))
    use_keyring(None)
    with pytest.raises(StartupError, match="nowhere.json does not exist"):
        create_app({"ENGINE": engine, "SECRET_KEY": "x"})


def test_plain_text_left_from_before_encryption_is_refused_until_encrypted(own_bank):
    engine, session, _ = own_bank
    from itembank.encryption import encrypt_plaintext

    session.execute(text("UPDATE item_versions SET content = :c WHERE id = 1"),
                    {"c": '{"stem": "legacy", "options": ["a", "b"], "key": 0}'})
    session.commit()
    with pytest.raises(ContentKeyError, match="1 item version\\(s\\) hold plain text: run `cbt items encrypt`"):
        check_content_keys(session)
    assert encrypt_plaintext(session, actor="ops", actor_role="operations", now=NOW) == 1
    check_content_keys(session)
    assert unpack(session.get(ItemVersion, 1).content).stem == "legacy"


def test_an_edit_makes_a_new_version_and_the_old_one_stays_readable(session, program):
    code = "T-EDIT-1"
    bank.add_item(session, program, code=code, category=13, status="draft", author="writer",
                  content=ItemContent("What is 1 + 1?", ("1", "2", "3", "4"), 1))
    session.commit()
    changed = ItemContent("What is 2 + 2?", ("2", "4", "6", "8"), 1, rationale="Arithmetic.")
    version = bank.edit_content(session, program, code, changed, reason="harder", **PSY)
    session.commit()
    assert version.version == 2 and bank.entry(session, code).content == changed
    assert bank.version_entry(session, code, 1).content.stem == "What is 1 + 1?"
    with pytest.raises(DomainError, match="nothing changed"):
        bank.edit_content(session, program, code, changed, **PSY)
    session.rollback()
    # Operational content is frozen: its responses must all belong to the calibrated text.
    operational = session.scalar(select(Item).where(Item.status == "operational").limit(1))
    with pytest.raises(DomainError, match="is operational: .* cannot be edited"):
        bank.edit_content(session, program, operational.code, changed, **PSY)
    session.rollback()


def test_the_lifecycle_follows_the_program_and_records_who_and_when(session, program):
    code = "T-LIFE-1"
    bank.add_item(session, program, code=code, category=22, status="draft", author="psychometrician",
                  content=ItemContent("Which layer routes packets?", ("Network", "Link", "Session", "Physical"), 0))
    session.commit()
    with pytest.raises(DomainError, match="another person must review it"):
        lifecycle.move(session, program, code, "reviewed", **PSY)
    with pytest.raises(DomainError, match="only psychometrician may"):
        lifecycle.move(session, program, code, "reviewed", actor="p1", actor_role="proctor", now=NOW)
    with pytest.raises(DomainError, match="cannot move to operational"):
        lifecycle.move(session, program, code, "operational", actor="reviewer", actor_role="psychometrician", now=NOW)
    lifecycle.move(session, program, code, "reviewed", actor="reviewer", actor_role="psychometrician", now=NOW,
                   reason="checked the key")
    lifecycle.move(session, program, code, "pretest", actor="reviewer", actor_role="psychometrician", now=NOW)
    with pytest.raises(DomainError, match="only by approval in a calibration run"):
        lifecycle.move(session, program, code, "operational", actor="reviewer", actor_role="psychometrician", now=NOW)
    session.commit()
    history = session.scalars(select(ItemStatusChange).join(Item).where(Item.code == code)
                              .order_by(ItemStatusChange.id)).all()
    assert [(h.from_status, h.to_status, h.actor) for h in history] == [
        (None, "draft", "psychometrician"), ("draft", "reviewed", "reviewer"), ("reviewed", "pretest", "reviewer")]
    assert history[1].reason == "checked the key" and history[1].at == NOW
    events = session.scalars(select(AuditEvent).where(AuditEvent.subject == f"item:{code}")).all()
    assert [e.details["to"] for e in events] == ["reviewed", "pretest"]
    assert verify_chain(session).intact


def test_assembly_never_puts_two_enemies_in_one_sitting(session, program):
    strategy = session.scalars(select(Item.code).where(Item.status == "operational", Item.field == "strategy")
                               .order_by(Item.code)).all()
    technology = session.scalars(select(Item.code).where(Item.status == "operational", Item.field == "technology")
                                 .order_by(Item.code)).all()
    pairs = [strategy[:2], [strategy[2], technology[0]]]
    save_enemy_set(session, "test-pair-1", pairs[0], **PSY)
    save_enemy_set(session, "test-pair-2", pairs[1], **PSY)
    session.flush()
    ids = {c: i for c, i in session.execute(select(Item.code, Item.id))}
    versions = {v.id: v.item_id for v in session.scalars(select(ItemVersion))}
    rng = np.random.default_rng(7)
    together = {0: 0, 1: 0}
    alone = 0
    for _ in range(200):
        form = {versions[p.version_id] for p in draw_form(session, program, rng)}
        for index, pair in enumerate(pairs):
            together[index] += {ids[c] for c in pair} <= form
        alone += ids[pairs[0][0]] in form or ids[pairs[0][1]] in form
    assert together == {0: 0, 1: 0} and alone > 0
    # Saving a set commits (a service's unit of work): take them out again for the other tests.
    for name in ("test-pair-1", "test-pair-2"):
        delete_enemy_set(session, name, **PSY)


def test_the_psychometrician_pages_are_for_psychometricians_only(client, session, program, clock):
    from tests.helpers import booked_candidate, login_staff

    booked = booked_candidate(session, program, clock.now)
    login_staff(client, booked.proctor, booked.password)
    assert client.get("/bank/").status_code == 403
    assert client.get("/bank/calibration").status_code == 403
    anonymous = client.application.test_client()
    assert anonymous.get("/bank/exchange").status_code == 302
