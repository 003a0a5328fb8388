"""What a copy of the database gives away, and settings that were hard-coded: candidates' names,
kana, dates of birth and e-mails encrypted at rest (looked up by a keyed hash), amended keys
sealed, the public address from configuration, the session's lifetime from the settings, the
added-time cap from the program file."""
from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy import select, text

from centers.accounts import Actor
from centers.candidates import by_email, register, sign_in
from centers.models import Candidate, StaffAccount
from delivery import rescoring, sittings
from delivery.web import create_app
from itembank import exchange
from itembank.content import ItemContent
from itembank.program import ProgramError, load_program, parse_program, program_path
from persistence import upgrade_database
from persistence.audit import AuditEvent
from persistence.errors import InvalidInput
from persistence.migrate import alembic_config
from persistence.personal import PersonalDataKeyError, key_from_hex, lookup_hash, open_sealed
from scoring import campaigns
from tests.helpers import api, booked_candidate, login_candidate, start_sitting
from tests.test_centre_states_migration import fresh, insert  # noqa: F401 (a fixture)


def stored_row(session, candidate_id: int) -> dict:
    return dict(session.execute(text("SELECT name, name_kana, date_of_birth, email, email_hash FROM candidates "
                                     "WHERE id = :id"), {"id": candidate_id}).mappings().one())


def test_candidates_personal_data_is_encrypted_at_rest_and_found_by_a_keyed_hash(session, clock):
    email = f"Hanako.{uuid.uuid4().hex[:8]}@Example.com"
    candidate = register(session, name="山田 花子", date_of_birth=dt.date(1994, 8, 12), email=email,
                         password="a-long-password", occupation="student", company_type=None, today=clock.now.date())
    candidate.name_kana = "ヤマダ ハナコ"
    session.commit()
    row = stored_row(session, candidate.id)
    for column in ("name", "name_kana", "date_of_birth", "email"):
        assert str(row[column]).startswith("p1:"), (column, row[column])
    blob = " ".join(str(v) for v in row.values())
    for secret in ("山田", "ヤマダ", "1994", "hanako", "Hanako", "example"):
        assert secret not in blob
    assert row["email_hash"] == lookup_hash(email.lower())
    # The application reads them as they were.
    session.expire_all()
    again = session.get(Candidate, candidate.id)
    assert (again.name, again.name_kana, again.date_of_birth, again.email) == (
        "山田 花子", "ヤマダ ハナコ", dt.date(1994, 8, 12), email.lower())
    # Encryption is randomised: the same name twice is stored twice differently.
    twin = Candidate(name="山田 花子", date_of_birth=dt.date(1994, 8, 12))
    session.add(twin)
    session.commit()
    assert stored_row(session, twin.id)["name"] != row["name"]
    # Look-ups by e-mail go through the hash: sign-in, and a second registration is refused.
    assert session.scalar(select(Candidate.id).where(by_email(f"  {email.upper()} "))) == candidate.id
    assert sign_in(session, email, "a-long-password", now=clock.now)[0].id == candidate.id
    with pytest.raises(InvalidInput, match="already registered"):
        register(session, name="Another", date_of_birth=dt.date(1990, 1, 1), email=email.lower(),
                 password="a-long-password", occupation="student", company_type=None, today=clock.now.date())


def test_a_wrong_personal_data_key_is_refused_with_the_fix(session, clock):
    candidate = Candidate(name="Key Test", date_of_birth=dt.date(2000, 1, 1))
    session.add(candidate)
    session.commit()
    stored = stored_row(session, candidate.id)["name"]
    with pytest.raises(PersonalDataKeyError, match="CBT_PERSONAL_DATA_KEY"):
        open_sealed(stored, key_from_hex("11" * 32, "test"))
    with pytest.raises(PersonalDataKeyError, match="64 hex digits"):
        key_from_hex("not-hex", "CBT_PERSONAL_DATA_KEY")


def test_staff_screens_still_show_names(app, session, program, clock):
    from tests.helpers import csrf_token, login_staff

    booked = booked_candidate(session, program, clock.now)
    name = session.execute(text("SELECT c.id FROM candidates c JOIN bookings b ON b.candidate_id = c.id "
                                "WHERE b.id = :id"), {"id": booked.booking_id}).scalar_one()
    shown = session.get(Candidate, name).name
    proctor = app.test_client()
    login_staff(proctor, booked.proctor, booked.password)
    assert shown in proctor.get("/proctor/").get_data(as_text=True)
    assert csrf_token(proctor, "/proctor/")


def test_migration_0930_encrypts_existing_rows_and_its_downgrade_decrypts_them(fresh):  # noqa: F811
    from alembic import command

    upgrade_database(fresh, "0920")
    with fresh.begin() as connection:
        registered = insert(connection, "candidates", name="Old Row", name_kana="オールド", date_of_birth=dt.date(1980, 2, 3),
                            email="old@example.com", created_at=dt.datetime(2026, 1, 1))
        unregistered = insert(connection, "candidates", name="No Mail", date_of_birth=dt.date(1999, 9, 9),
                              created_at=dt.datetime(2026, 1, 1))
    upgrade_database(fresh)
    with fresh.connect() as connection:
        rows = {r.id: r for r in connection.execute(text("SELECT * FROM candidates"))}
    assert all(rows[i].name.startswith("p1:") and rows[i].date_of_birth.startswith("p1:") for i in rows)
    assert rows[registered].email_hash == lookup_hash("old@example.com") and rows[unregistered].email is None
    with fresh.connect() as connection:
        from sqlalchemy.orm import Session

        with Session(connection) as orm:
            old = orm.get(Candidate, registered)
            assert (old.name, old.name_kana, old.date_of_birth, old.email) == (
                "Old Row", "オールド", dt.date(1980, 2, 3), "old@example.com")
    command.downgrade(alembic_config(fresh), "0920")
    with fresh.connect() as connection:
        back = connection.execute(text("SELECT name, date_of_birth, email FROM candidates WHERE id = :id"),
                                  {"id": registered}).one()
    assert (back.name, str(back.date_of_birth)[:10], back.email) == ("Old Row", "1980-02-03", "old@example.com")
    upgrade_database(fresh)


def test_an_amended_key_is_not_stored_in_plain_text_nor_in_the_audit_trail(session, program, clock):
    item = exchange.create_draft(session, program, code=f"T22-A{uuid.uuid4().hex[:6].upper()}", category=22,
                                 note="created", content=ItemContent(stem="Which?", options=("W", "X", "Y", "Z"),
                                                                     key=0),
                                 actor="psychometrician", actor_role="psychometrician", now=clock.now)
    campaign = rescoring.propose_campaign(session, [campaigns.Amendment(item.code, 1, "key", 2)],
                                          reason="the key was wrong", actor="psychometrician", now=clock.now)
    stored = session.execute(text("SELECT key FROM scoring_amendments WHERE campaign_id = :id"),
                             {"id": campaign.id}).scalar_one()
    assert str(stored).startswith("v1:") and str(stored) != "2"
    session.expire_all()
    assert campaign.amendments[0].key == 2
    details = session.scalar(select(AuditEvent.details).where(AuditEvent.subject == f"campaign:{campaign.id}"))
    assert "key" not in {k for a in details["amendments"] for k in a}


def test_a_key_rotation_reseals_amended_keys(session, program, clock, tmp_path, monkeypatch):
    from itembank import keyring
    from itembank.encryption import rotate_keys

    item = exchange.create_draft(session, program, code=f"T22-R{uuid.uuid4().hex[:6].upper()}", category=22,
                                 note="created", content=ItemContent(stem="Which?", options=("W", "X", "Y", "Z"),
                                                                     key=0),
                                 actor="psychometrician", actor_role="psychometrician", now=clock.now)
    campaign = rescoring.propose_campaign(session, [campaigns.Amendment(item.code, 1, "key", 3)],
                                          reason="rotate", actor="psychometrician", now=clock.now)
    current = keyring.current_keyring()
    path = tmp_path / "content-keys.json"
    keyring.write_key_file(current, path)
    monkeypatch.setattr(keyring, "_current", keyring.read_key_file(path))
    try:
        report = rotate_keys(session, actor="ops", actor_role="operations", now=clock.now)
        stored = session.execute(text("SELECT key FROM scoring_amendments WHERE campaign_id = :id"),
                                 {"id": campaign.id}).scalar_one()
        assert stored.startswith(f"v1:{report.new_key}:")
        session.expire_all()
        assert campaign.amendments[0].key == 3
    finally:
        keyring.use_keyring(None)


def finished_sitting(app, session, program, clock):
    booked = booked_candidate(session, program, clock.now)
    seat = app.test_client()
    login_candidate(seat, booked)
    start_sitting(seat)
    assert api(seat, "POST", "/api/sitting/finish", {}).status_code == 200
    return seat


def test_the_report_links_to_the_configured_address_never_the_host_header(engine, session, program, clock):
    app = create_app({"ENGINE": engine, "SECRET_KEY": "test-secret", "TESTING": True, "CLOCK": clock,
                      "PUBLIC_URL": "https://results.example.org/"})
    seat = finished_sitting(app, session, program, clock)
    # The same browser, reaching the site under a Host header of the attacker's choosing.
    seat.set_cookie("session", seat.get_cookie("session").value, domain="attacker.example")
    seat.set_cookie("cbt_language", "en", domain="attacker.example")
    response = seat.get("/result/report", base_url="http://attacker.example")
    assert response.status_code == 200, response.headers
    page = response.get_data(as_text=True)
    links = set(re.findall(r'href="(https?://[^"]+)"', page))
    assert links and all(link.startswith("https://results.example.org/verify") for link in links), links
    assert "attacker.example" not in page


def test_the_public_address_comes_from_the_environment(monkeypatch):
    from persistence.settings import load_settings

    assert load_settings({}).public_url == "http://127.0.0.1:8000"
    assert load_settings({"CBT_BIND": "0.0.0.0:9000"}).public_url == "http://0.0.0.0:9000"
    assert load_settings({"CBT_PUBLIC_URL": "https://cbt.example.org/"}).public_url == "https://cbt.example.org"
    with pytest.raises(InvalidInput, match="CBT_PUBLIC_URL"):
        load_settings({"CBT_PUBLIC_URL": "javascript:alert(1)"})


def test_the_session_cookie_lasts_as_long_as_the_settings_say(engine, clock, monkeypatch):
    monkeypatch.setenv("CBT_SESSION_HOURS", "3")
    app = create_app({"ENGINE": engine, "SECRET_KEY": "test-secret", "TESTING": True, "CLOCK": clock})
    assert app.permanent_session_lifetime == dt.timedelta(hours=3)
    monkeypatch.delenv("CBT_SESSION_HOURS")
    assert create_app({"ENGINE": engine, "SECRET_KEY": "test-secret", "TESTING": True, "CLOCK": clock,
                       "SESSION_HOURS": 5}).permanent_session_lifetime == dt.timedelta(hours=5)


def test_added_minutes_are_capped_by_the_program_file(session, program, clock):
    assert load_program().admission.max_added_minutes == 60
    data = __import__("tomllib").loads(program_path(None).read_text(encoding="utf-8"))
    data["admission"]["max_added_minutes"] = 30
    capped = parse_program(data)
    assert capped.admission.max_added_minutes == 30
    data["admission"]["max_added_minutes"] = -1
    with pytest.raises(ProgramError, match="max_added_minutes"):
        parse_program(data)
    booked = booked_candidate(session, program, clock.now)
    sittings.candidate_login(session, capped, booked.admission_code, booked.date_of_birth, clock.now,
                             seat_token=booked.seat_token)
    actor = Actor.staff(session.scalar(select(StaffAccount).where(StaffAccount.username == booked.proctor)))
    with pytest.raises(InvalidInput, match="At most 30 minutes can be added to a sitting in all; 30 are left"):
        sittings.add_time(session, capped, booked.booking_id, 31, clock.now, actor=actor, reason="PC failure")
    assert sittings.add_time(session, capped, booked.booking_id, 30, clock.now, actor=actor,
                             reason="PC failure").details == {"minutes": 30}


def test_the_sample_column_types_are_text(engine):
    columns = {c["name"]: c["type"] for c in sa.inspect(engine).get_columns("candidates")}
    assert all(isinstance(columns[name], sa.Text) for name in ("name", "name_kana", "date_of_birth", "email"))
