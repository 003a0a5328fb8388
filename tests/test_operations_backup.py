"""The restore drill, on SQLite and PostgreSQL: sittings answered and scored, a backup with
``cbt backup``, a restore with ``cbt restore`` into a fresh database, then ``cbt audit verify``
and ``cbt rescoring check`` pass on it and every answer is there."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from delivery.cli import main as cbt
from tests.conftest import fresh_database_url
from tests.helpers import login_staff
from tests.test_rescoring import finish_sittings

ROWS = {
    "sitting_items": "SELECT sitting_id, position, item_version_id, chosen_option, answered_at, marked "
                     "FROM sitting_items ORDER BY sitting_id, position",
    "sittings": "SELECT id, status, deadline_at, current_position FROM sittings ORDER BY id",
    "score_results": "SELECT id, sitting_id, total_score, passed FROM score_results ORDER BY id",
    "audit_events": "SELECT id, action, hash FROM audit_events ORDER BY id",
}


@pytest.fixture
def fresh_url(database_url, tmp_path):
    """An empty database on the same backend: a new SQLite path, or a new PostgreSQL database."""
    yield from fresh_database_url("sqlite" if database_url.startswith("sqlite") else "postgresql", tmp_path)


def rows(url: str) -> dict[str, list]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return {table: [tuple(row) for row in connection.execute(text(query))] for table, query in ROWS.items()}
    finally:
        engine.dispose()


def run(url: str, *args: str):
    return CliRunner().invoke(cbt, list(args), env={"CBT_DATABASE_URL": url})


def test_the_restore_drill(app, session, program, clock, database_url, fresh_url, tmp_path):
    finish_sittings(app, session, program, clock, 3)
    # A staff sign-in: an event of the audit trail, sealed with the audit key.
    assert login_staff(app.test_client(), "psychometrician", "psychometrician-demo-pass").status_code == 302
    session.close()
    before = rows(database_url)
    assert len(before["score_results"]) >= 3 and before["audit_events"]
    answered = sum(1 for row in before["sitting_items"] if row[3] is not None)

    path = tmp_path / "backups" / "cbt.backup"
    made = run(database_url, "backup", str(path))
    assert made.exit_code == 0, made.output
    assert f"{answered} answers" in made.output and "content keys " in made.output
    assert "audit seal key with SHA-256 fingerprint" in made.output
    keys = json.loads(path.with_name("cbt.backup.keys.json").read_text())
    assert keys["counts"]["answers"] == answered and keys["content_keys"]
    assert (path.stat().st_mode & 0o777) == 0o600

    restored = run(fresh_url, "restore", str(path))
    assert restored.exit_code == 0, restored.output
    assert "the keys here read it" in restored.output
    verified = run(fresh_url, "audit", "verify")
    assert verified.exit_code == 0 and "audit trail intact" in verified.output, verified.output
    rescored = run(fresh_url, "rescoring", "check")
    assert rescored.exit_code == 0 and "reproduced exactly" in rescored.output, rescored.output
    assert rows(fresh_url) == before  # every answer, sitting, score and audit event

    # Never into a database that holds tables: the backup is not mixed with live rows.
    again = run(fresh_url, "restore", str(path))
    assert again.exit_code == 1 and "already holds tables" in again.output


def test_a_restore_without_the_audit_key_says_so(app, session, program, clock, database_url, fresh_url, tmp_path,
                                                 monkeypatch):
    finish_sittings(app, session, program, clock, 1)
    session.close()
    path = tmp_path / "cbt.backup"
    assert run(database_url, "backup", str(path)).exit_code == 0
    monkeypatch.setenv("CBT_AUDIT_KEY", "ab" * 32)  # another host's key, not the one that sealed the trail
    restored = run(fresh_url, "restore", str(path))
    assert restored.exit_code == 1
    assert "missing key: audit key" in restored.output and keys_fingerprint(path) in restored.output


def keys_fingerprint(path) -> str:
    return json.loads(path.with_name(path.name + ".keys.json").read_text())["audit_key_sha256"]


def test_not_a_backup_is_refused_with_a_reason(database_url, fresh_url, tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("hello")
    refused = run(fresh_url, "restore", str(junk))
    assert refused.exit_code == 1 and "is not a backup made by cbt backup" in refused.output
