"""Signed score certificates: genuine ones verify, altered or forged ones do not, keys rotate."""
from __future__ import annotations

import json
import re

from click.testing import CliRunner
from sqlalchemy import select

from centers.models import Booking
from delivery.cli import main as cbt
from delivery.models import Sitting
from scoring import certificates
from scoring.models import ScoreResult
from tests.helpers import api, booked_candidate, login_candidate, start_sitting


def sit_and_finish(client, session, program, clock, answers=(0, 1, 2, 3)):
    booked = booked_candidate(session, program, clock.now)
    login_candidate(client, booked)
    start_sitting(client)
    for position, option in enumerate(answers, start=1):
        api(client, "PUT", f"/api/sitting/answers/{position}", {"option": option})
    api(client, "POST", "/api/sitting/finish", {})
    session.expire_all()
    result = session.scalar(select(ScoreResult).join(Sitting, Sitting.id == ScoreResult.sitting_id)
                            .where(Sitting.booking_id == booked.booking_id))
    return booked, result


def report_code(client) -> str:
    page = client.get("/result/report").get_data(as_text=True)
    return re.search(r'id="certificate-code">([^<]+)<', page).group(1)


def test_the_report_carries_a_certificate_that_verifies(client, session, program, clock):
    booked, result = sit_and_finish(client, session, program, clock)
    page = client.get("/result/report").get_data(as_text=True)
    assert "<svg" in page and "Certificate QR code" in page
    code = report_code(client)
    assert report_code(client) == code  # issued once, the same on every visit

    name = session.get(Booking, booked.booking_id).candidate.name
    check = certificates.verify(code, certificates.public_keys(session), f"  {name.upper()} ")
    assert check.valid and check.statement.number == result.id
    assert check.statement.total == result.total_score
    assert check.statement.field_scores == tuple(result.field_scores[f] for f in program.field_codes)
    assert check.statement.passed == result.passed
    assert check.name_matches is True
    assert certificates.verify(code, certificates.public_keys(session), "Someone Else").name_matches is False

    verified = client.get("/verify", query_string={"code": code.lower().replace("-", " ")}).get_data(as_text=True)
    assert "Genuine certificate" in verified and f'id="certificate-number">{result.id}<' in verified


def test_any_changed_character_or_digit_fails(client, session, program, clock):
    _, result = sit_and_finish(client, session, program, clock)
    code = report_code(client)
    keys = certificates.public_keys(session)
    letters = [i for i, ch in enumerate(code) if ch != "-"]
    for index in letters[::7]:
        swapped = "A" if code[index] != "A" else "B"
        assert not certificates.verify(code[:index] + swapped + code[index + 1:], keys).valid

    # Re-encode the statement with a better total but keep the signature: refused.
    raw = certificates.parse_code(code)
    statement = certificates.Statement.decode(raw[:-64])
    better = certificates.Statement(**{**statement.__dict__, "total": min(1000, statement.total + 100), "passed": True})
    forged = certificates.format_code(better.encode() + raw[-64:])
    check = certificates.verify(forged, keys)
    assert not check.valid and "altered or forged" in check.reason
    page = client.get("/verify", query_string={"code": forged}).get_data(as_text=True)
    assert "Not a valid certificate" in page


def test_certificates_stay_valid_after_a_key_rotation(app, session, program, clock, key_directory):
    first_client, second_client = app.test_client(), app.test_client()
    sit_and_finish(first_client, session, program, clock)
    before = report_code(first_client)
    assert CliRunner().invoke(cbt, ["certificates", "rotate-key"], env={"CBT_DATABASE_URL": str(session.get_bind().url.render_as_string(hide_password=False)), "CBT_KEY_DIR": str(key_directory)}).exit_code == 0
    session.expire_all()
    sit_and_finish(second_client, session, program, clock)
    after = report_code(second_client)
    keys = certificates.public_keys(session)
    old, new = certificates.verify(before, keys), certificates.verify(after, keys)
    assert old.valid and new.valid and old.statement.key_id < new.statement.key_id

    # A key this body never published signs nothing that verifies.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    message = certificates.parse_code(after)[:-64]
    impostor = certificates.format_code(message + Ed25519PrivateKey.generate().sign(message))
    assert not certificates.verify(impostor, keys).valid


def test_cbt_verify_works_offline_from_exported_keys(client, session, program, clock, tmp_path):
    booked, result = sit_and_finish(client, session, program, clock)
    code = report_code(client)
    url = session.get_bind().url.render_as_string(hide_password=False)
    runner = CliRunner()
    keys_file = tmp_path / "keys.json"
    assert runner.invoke(cbt, ["certificates", "export-keys", str(keys_file)], env={"CBT_DATABASE_URL": url}).exit_code == 0
    assert json.loads(keys_file.read_text())

    offline = {"CBT_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    genuine = runner.invoke(cbt, ["verify", code, "--public-keys", str(keys_file)], env=offline)
    assert genuine.exit_code == 0 and f"total {result.total_score}" in genuine.output
    tampered = code[:-3] + ("A" if code[-3] != "A" else "B") + code[-2:]
    refused = runner.invoke(cbt, ["verify", tampered, "--public-keys", str(keys_file)], env=offline)
    assert refused.exit_code == 1 and "NOT VALID" in refused.output
