"""Exchange: QTI 2.1 and 3.0 packages in and out, hostile packages refused, the native format round-trips."""
from __future__ import annotations

import datetime as dt
import io
import json
import zipfile

import pytest
from sqlalchemy import func, select

from itembank import bank, exchange, qti
from itembank.models import Item, ItemVersion
from persistence import create_database_engine, session_factory, upgrade_database
from persistence.audit import AuditEvent
from tests.bank_helpers import DATA, qti_package, zip_directory

NOW = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.timezone.utc)
WHO = {"actor": "psy-test", "actor_role": "psychometrician", "now": NOW}


@pytest.fixture
def empty_bank(tmp_path):
    """A database of its own with no items (imports must not meet the sample bank's codes)."""
    engine = create_database_engine(f"sqlite:///{tmp_path / 'bank.sqlite3'}")
    upgrade_database(engine)
    with session_factory(engine)() as session:
        yield session
    engine.dispose()


def count_items(session) -> int:
    return session.scalar(select(func.count(Item.id)))


def test_a_tao_qti21_package_imports_as_draft_items_with_figure_table_and_rationale(empty_bank, program):
    report = qti.import_package(empty_bank, program, qti_package("tao-qti21"), category=23, **WHO)
    empty_bank.commit()
    assert report.landed and report.rejected == [] and sorted(report.accepted) == ["TAO-NET-001", "TAO-SEC-002"]

    star = bank.entry(empty_bank, "TAO-NET-001")
    assert star.item.status == "draft" and star.item.category == 22  # from the manifest's LOM taxon
    assert star.item.author == "psy-test" and star.version.note.startswith("imported from QTI 2.1")
    content = star.content
    assert content.stem.splitlines() == [
        "The figure shows how the five computers of a small office are cabled to one switch.",
        "The cable counts of the office are:", "Which network topology is this?"]
    assert content.options == ("Bus", "Ring", "Star", "Full mesh") and content.key == 2
    assert content.table == {"header": ["Device", "Cables"], "rows": [["Switch", "5"], ["Each computer", "1"]]}
    assert content.figure["media_type"] == "image/svg+xml" and content.figure["alt"].startswith("Five computers")
    assert content.rationale == "Every computer has its own cable to one central device: a star."
    phishing = bank.entry(empty_bank, "TAO-SEC-002")
    assert phishing.item.category == 23  # no taxon in the manifest: the category the importer gave
    assert phishing.content.key == 0 and "confirm a password" in phishing.content.stem


def test_a_qti30_package_imports_and_both_versions_export_back_losslessly(empty_bank, program, tmp_path):
    report = qti.import_package(empty_bank, program, qti_package("qti30"), **WHO)
    assert report.landed and sorted(report.accepted) == ["Q3-DB-001", "Q3-PM-002"]
    qti.import_package(empty_bank, program, qti_package("tao-qti21"), category=23, **WHO)
    empty_bank.commit()
    before = {e.item.code: (e.item.category, e.content) for e in bank.browse(empty_bank)}
    assert before["Q3-DB-001"][1].table["header"] == ["member_no", "name", "city"]

    for version in ("2.1", "2.2", "3.0"):
        package = qti.export_package(empty_bank, program, version=version, **WHO)
        names = zipfile.ZipFile(io.BytesIO(package)).namelist()
        assert "imsmanifest.xml" in names and "items/images/TAO-NET-001.svg" in names
        engine = create_database_engine(f"sqlite:///{tmp_path / f'again-{version}.sqlite3'}")
        upgrade_database(engine)
        with session_factory(engine)() as other:
            again = qti.import_package(other, program, package, name=f"export {version}", **WHO)
            assert again.rejected == [] and len(again.accepted) == 4
            assert {e.item.code: (e.item.category, e.content) for e in bank.browse(other)} == before
        engine.dispose()


def _replace(directory, member: str, body: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                name = path.relative_to(directory).as_posix()
                package.writestr(name, body if name == member else path.read_bytes())
    return buffer.getvalue()


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<qti-assessment-item xmlns="http://www.imsglobal.org/xsd/imsqtiasi_v3p0" identifier="Q3-PM-002"><qti-item-body><p>&lol3;</p></qti-item-body></qti-assessment-item>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE item [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<qti-assessment-item xmlns="http://www.imsglobal.org/xsd/imsqtiasi_v3p0" identifier="Q3-PM-002"><qti-item-body><p>&secret;</p></qti-item-body></qti-assessment-item>"""
MULTIPLE_RESPONSE = (DATA / "qti" / "qti30" / "items" / "Q3-PM-002.xml").read_bytes().replace(
    b'max-choices="1"', b'max-choices="2"')


@pytest.mark.parametrize("body, reason", [
    (BILLION_LAUGHS, "refused unsafe XML"),
    (EXTERNAL_ENTITY, "refused unsafe XML"),
    (b"<qti-assessment-item", "not well-formed XML"),
    (MULTIPLE_RESPONSE, "only single-response items"),
])
def test_a_hostile_or_malformed_item_is_refused_with_its_reason_and_nothing_lands(empty_bank, program, body, reason):
    package = _replace(DATA / "qti" / "qti30", "items/Q3-PM-002.xml", body)
    events = empty_bank.scalar(select(func.count(AuditEvent.id)))
    report = qti.import_package(empty_bank, program, package, **WHO)
    empty_bank.commit()
    assert not report.landed and report.accepted == []
    assert [(r.where, reason in r.reason) for r in report.rejected] == [("items/Q3-PM-002.xml", True)]
    assert "nothing imported" in report.summary
    assert count_items(empty_bank) == 0
    assert empty_bank.scalar(select(func.count(AuditEvent.id))) == events

    # The user may choose to let the good items land instead.
    partial = qti.import_package(empty_bank, program, package, mode="valid", **WHO)
    empty_bank.commit()
    assert partial.landed and partial.accepted == ["Q3-DB-001"] and len(partial.rejected) == 1
    assert count_items(empty_bank) == 1


@pytest.mark.parametrize("package, reason", [
    (b"not a zip at all", "not a zip file"),
    (_replace(DATA / "qti" / "qti30", "imsmanifest.xml", EXTERNAL_ENTITY.replace(
        b"qti-assessment-item", b"manifest")), "refused unsafe XML"),
    (zip_directory(DATA / "qti" / "qti30", {"../escape.xml": b"<x/>"}), "unsafe path"),
])
def test_a_hostile_package_is_refused_whole(empty_bank, program, package, reason):
    report = qti.import_package(empty_bank, program, package, mode="valid", **WHO)
    assert not report.landed and reason in report.rejected[0].reason
    assert count_items(empty_bank) == 0


def test_an_item_without_a_category_or_already_in_the_bank_is_refused(empty_bank, program):
    report = qti.import_package(empty_bank, program, qti_package("tao-qti21"), **WHO)
    assert [r.where for r in report.rejected] == ["items/i002/qti.xml"]
    assert "no syllabus category" in report.rejected[0].reason and count_items(empty_bank) == 0
    qti.import_package(empty_bank, program, qti_package("qti30"), **WHO)
    again = qti.import_package(empty_bank, program, qti_package("qti30"), **WHO)
    assert all("already in the bank" in r.reason for r in again.rejected) and len(again.rejected) == 2


def test_the_native_format_round_trips_the_bank_losslessly_by_a_restore(session, program, tmp_path):
    exported = exchange.export_bank(session, program, **WHO)
    assert len(exported["items"]) >= 330
    text = json.dumps(exported, ensure_ascii=False)

    engine = create_database_engine(f"sqlite:///{tmp_path / 'restored.sqlite3'}")
    upgrade_database(engine)
    with session_factory(engine)() as other:
        report = exchange.restore_bank(other, program, text, actor="ops", actor_role="operations",
                                       reason="disaster recovery drill", now=NOW)
        assert report.landed and report.rejected == [] and len(report.accepted) == len(exported["items"])
        restored = other.scalars(select(AuditEvent).where(AuditEvent.action == "bank.restore")).one()
        assert (restored.actor, restored.reason) == ("ops", "disaster recovery drill")
        again = exchange.export_bank(other, program, **WHO)
        assert again == exported
        # The restored bank is encrypted like any other.
        stored = other.scalars(select(ItemVersion.content)).all()
        assert all(value.startswith("v1:") for value in stored)
    engine.dispose()


def test_a_native_import_lists_bad_items_and_lands_nothing_unless_asked(empty_bank, program):
    document = {"format": "cbt-item-bank", "format_version": 1, "program": "it-passport", "enemy_sets": [],
                "items": [
                    {"code": "N-1", "category": 3, "status": "draft", "versions": [{"content": {
                        "stem": "Good stem", "options": ["a", "b", "c", "d"], "key": 1}}]},
                    {"code": "N-2", "category": 99, "status": "draft", "versions": [{"content": {
                        "stem": "Bad category", "options": ["a", "b", "c", "d"], "key": 1}}]},
                    {"code": "N-3", "category": 3, "status": "draft", "versions": [{"content": {
                        "stem": "Key out of range", "options": ["a", "b", "c", "d"], "key": 7}}]},
                ]}
    report = exchange.import_bank(empty_bank, program, document, **WHO)
    assert not report.landed and [r.where for r in report.rejected] == ["N-2", "N-3"]
    assert "not in the syllabus" in report.rejected[0].reason and "key 7" in report.rejected[1].reason
    assert count_items(empty_bank) == 0
    report = exchange.import_bank(empty_bank, program, document, mode="valid", **WHO)
    assert report.accepted == ["N-1"] and count_items(empty_bank) == 1
