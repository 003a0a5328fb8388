"""The decrypted-content cache keeps the versions of two databases apart (one process may serve several)."""
from __future__ import annotations

from sqlalchemy import select

from itembank import bank
from itembank.content import ItemContent
from itembank.models import ItemVersion
from persistence import create_database_engine, session_factory, upgrade_database


def test_the_same_version_id_in_two_databases_gives_each_its_own_content(tmp_path, program, monkeypatch):
    monkeypatch.setenv("CBT_VAR_DIR", str(tmp_path))
    monkeypatch.setattr(bank, "CONTENTS", bank.ContentCache(100))
    stems = {}
    for name in ("first", "second"):
        engine = create_database_engine(f"sqlite:///{tmp_path / name}.sqlite3")
        upgrade_database(engine)
        with session_factory(engine)() as session:
            bank.add_item(session, program, code="T-CACHE-1", category=13, status="draft", author="writer",
                          content=ItemContent(f"Stem in the {name} database", ("1", "2", "3", "4"), 1))
            session.commit()
            version_id = session.scalar(select(ItemVersion.id))
            stems[name] = bank.contents_by_version(session, [version_id])[version_id].stem
        engine.dispose()
    assert stems == {"first": "Stem in the first database", "second": "Stem in the second database"}
