"""Imports keep the lifecycle's promises (issue 13): drafts by the importer, four eyes, valid codes,
a malformed file refused by the field at fault, the whole-bank restore as the operator's action;
and what leaves the bank as CSV is quoted and cannot run as a spreadsheet formula."""
from __future__ import annotations

import copy
import csv
import datetime as dt
import io
import json

import pytest
from sqlalchemy import func, select

from centers.accounts import create_staff
from itembank import bank, exchange, lifecycle, qti
from itembank.content import ItemContent
from itembank.models import Item, ItemStatusChange
from persistence import create_database_engine, session_factory, upgrade_database
from persistence.audit import AuditEvent
from persistence.csv_export import csv_text
from persistence.errors import DomainError
from tests.bank_helpers import DATA, zip_directory
from tests.cli_helpers import own_cbt
from tests.helpers import csrf_token, login_staff

NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.timezone.utc)
IMPORTER = {"actor": "psy-importer", "actor_role": "psychometrician", "now": NOW}
CONTENT = {"stem": "Which protocol resolves host names?", "options": ["DNS", "DHCP", "ARP", "NTP"], "key": 0}


@pytest.fixture
def empty_bank(tmp_path):
    engine = create_database_engine(f"sqlite:///{tmp_path / 'bank.sqlite3'}")
    upgrade_database(engine)
    with session_factory(engine)() as session:
        yield session
    engine.dispose()


def document(*items, **extra) -> dict:
    return {"format": "cbt-item-bank", "format_version": 1, "program": "it-passport", "enemy_sets": [],
            "items": list(items), **extra}


# What a psychometrician could do before: an "operational" item with chosen parameters and an
# invented approver, scored on at once; a draft "written by someone else", reviewed by the importer.
FORGED = {
    "code": "FORGED-1", "category": 22, "status": "operational", "author": "someone-else",
    "created_at": "2020-01-01T00:00:00+00:00",
    "versions": [{"version": 1, "created_by": "someone-else", "created_at": "2020-01-01T00:00:00+00:00",
                  "note": "written", "content": CONTENT},
                 {"version": 2, "created_by": "invented-approver", "created_at": "2020-02-01T00:00:00+00:00",
                  "note": "calibrated", "content": CONTENT,
                  "parameters": {"a": 2.5, "b": -3.0, "c": 0.0, "source": "calibration", "calibration_run": 7}}],
    "history": [{"from": None, "to": "draft", "actor": "someone-else", "at": "2020-01-01T00:00:00+00:00"},
                {"from": "draft", "to": "reviewed", "actor": "invented-reviewer", "at": "2020-01-02T00:00:00+00:00"},
                {"from": "pretest", "to": "operational", "actor": "invented-approver",
                 "at": "2020-02-01T00:00:00+00:00", "calibration_run": 7}],
}
OTHERS_DRAFT = {"code": "OTHERS-1", "category": 22, "status": "draft", "author": "someone-else",
                "versions": [{"created_by": "someone-else", "content": CONTENT}]}


def test_an_import_lands_every_item_as_a_draft_written_by_the_importer(empty_bank, program):
    report = exchange.import_bank(empty_bank, program, json.dumps(document(FORGED, OTHERS_DRAFT)),
                                  name="bank.json", **IMPORTER)
    assert report.landed and sorted(report.accepted) == ["FORGED-1", "OTHERS-1"]
    assert any("not taken" in note and "cbt items restore" in note for note in report.notes)
    empty_bank.expire_all()
    for code in ("FORGED-1", "OTHERS-1"):
        found = bank.entry(empty_bank, code)
        item, version = found.item, found.version
        assert (item.status, item.author) == ("draft", "psy-importer")
        assert [v.version for v in item.versions] == [1] and version.created_by == "psy-importer"
        assert not version.has_parameters and version.calibration_run_id is None
        assert version.note == "imported from bank.json (version %d there)" % (2 if code == "FORGED-1" else 1)
        history = empty_bank.scalars(select(ItemStatusChange).where(ItemStatusChange.item_id == item.id)).all()
        assert [(h.from_status, h.to_status, h.actor) for h in history] == [(None, "draft", "psy-importer")]
        assert found.content.stem == CONTENT["stem"]
    # Nothing the file said reached scoring: no operational item, no parameters.
    assert bank.pool(empty_bank, "operational") == []


def test_four_eyes_holds_for_an_imported_item(empty_bank, program):
    exchange.import_bank(empty_bank, program, document(OTHERS_DRAFT), **IMPORTER)
    with pytest.raises(DomainError, match="another person must review it"):
        lifecycle.move(empty_bank, program, "OTHERS-1", "reviewed", **IMPORTER)
    reviewed = lifecycle.move(empty_bank, program, "OTHERS-1", "reviewed", actor="psy-reviewer",
                              actor_role="psychometrician", now=NOW)
    assert reviewed.status == "reviewed"


def test_an_import_does_not_replace_an_enemy_set_of_the_bank(empty_bank, program):
    for code in ("E-1", "E-2", "E-3"):
        exchange.create_draft(empty_bank, program, code=code, category=3, note="created", **IMPORTER,
                              content=ItemContent(f"Stem of {code}", ("a", "b", "c", "d"), 1))
    from itembank.enemies import enemy_sets, save_enemy_set
    save_enemy_set(empty_bank, "pair", ["E-1", "E-2"], **IMPORTER)
    report = exchange.import_bank(empty_bank, program, document(
        OTHERS_DRAFT, enemy_sets=[{"name": "pair", "items": ["E-3", "OTHERS-1"]}]), **IMPORTER)
    assert report.landed and any("already in the bank" in note for note in report.notes)
    assert [sorted(m.item.code for m in s.members) for s in enemy_sets(empty_bank)] == [["E-1", "E-2"]]


BAD_CODES = [
    ("A/B", "contains '/'"),
    ("=HYPERLINK(1)", "starts with '='"),
    ("+1", "starts with '+'"),
    ("-1", "starts with '-'"),
    ("@SUM", "starts with '@'"),
    ("X" * 33, "at most 32"),
    ("A B", "a space"),
    ("   ", "an item code is needed"),
]


@pytest.mark.parametrize("code, reason", BAD_CODES)
def test_item_codes_are_checked_wherever_items_are_made(empty_bank, program, code, reason):
    content = ItemContent("A stem", ("a", "b", "c", "d"), 0)
    with pytest.raises(DomainError, match=reason.replace("(", r"\(").replace("+", r"\+")):
        exchange.create_draft(empty_bank, program, code=code, category=3, content=content, note="created",
                              **IMPORTER)
    report = exchange.import_bank(empty_bank, program, document({**OTHERS_DRAFT, "code": code}), **IMPORTER)
    assert not report.landed and reason in report.rejected[0].reason
    report = exchange.restore_bank(empty_bank, program, document({**OTHERS_DRAFT, "code": code}), reason="test",
                                   actor="ops", actor_role="operations", now=NOW)
    assert not report.landed and reason in report.rejected[0].reason
    assert empty_bank.scalar(select(func.count(Item.id))) == 0


def test_a_qti_item_with_an_unusable_code_is_refused_with_the_reason(empty_bank, program, tmp_path):
    folder = tmp_path / "package"
    for path in (DATA / "qti" / "qti30").rglob("*"):
        if path.is_file():
            target = folder / path.relative_to(DATA / "qti" / "qti30")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes().replace(b'identifier="Q3-PM-002"', b'identifier="Q3/PM-002"'))
    report = exchange.import_qti(empty_bank, program, zip_directory(folder), mode="valid", **IMPORTER)
    assert report.accepted == ["Q3-DB-001"]
    assert [(r.where, "contains '/'" in r.reason) for r in report.rejected] == [("items/Q3-PM-002.xml", True)]


def _with(path: str, value):
    """The forged document with the value at ``path`` (dots, [n]) replaced."""
    raw = document(copy.deepcopy(OTHERS_DRAFT))
    target = raw
    parts = path.replace("[", ".").replace("]", "").split(".")
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    last = parts[-1]
    target[int(last) if last.isdigit() else last] = value
    return raw


@pytest.mark.parametrize("raw, where, message", [
    (b"{not json", "file", "not JSON"),
    (b"[1, 2]", "file", "not a cbt-item-bank export"),
    (json.dumps(_with("items", {"code": "x"})), "file", "items: Input should be a valid list"),
    (json.dumps(_with("enemy_sets", [{"name": "pair"}])), "file", "enemy_sets[0].items: Field required"),
    (json.dumps(_with("items[0].category", "three")), "OTHERS-1", "items[0].category: Input should be a valid integer"),
    (json.dumps(_with("items[0].versions", [])), "OTHERS-1", "items[0].versions: List should have at least 1 item"),
    (json.dumps(_with("items[0].versions[0].content.options", "abcd")), "OTHERS-1",
     "items[0].versions[0].content.options: Input should be a valid list"),
    (json.dumps(_with("items[0].versions[0].content", {"options": ["a", "b"], "key": 0})), "OTHERS-1",
     "items[0].versions[0].content.stem: Field required"),
    (json.dumps(_with("items[0].versions[0].content.key", 9)), "OTHERS-1",
     "items[0].versions[0].content: key 9 is not an option index"),
    (json.dumps(_with("items[0].versions[0].content.table", ["not", "a", "table"])), "OTHERS-1",
     "items[0].versions[0].content.table: Input should be a valid dictionary"),
    (json.dumps(_with("items[0]", "an item")), "item #1", "items[0]: Input should be a valid dictionary"),
    (json.dumps(_with("items[0].category", 99)), "OTHERS-1", "items[0].category: 99 is not in the syllabus"),
])
def test_a_malformed_file_is_refused_with_the_field_at_fault(empty_bank, program, raw, where, message):
    report = exchange.import_bank(empty_bank, program, raw, name="file", **IMPORTER)
    assert not report.landed and report.accepted == []
    assert [(r.where, message in r.reason) for r in report.rejected] == [(where, True)], report.rejected
    assert empty_bank.scalar(select(func.count(Item.id))) == 0


def test_a_malformed_file_is_a_clear_refusal_in_the_web_area_too(client, session):
    login_staff(client, "psychometrician", "psychometrician-demo-pass")
    token = csrf_token(client, "/bank/exchange")
    bad = json.dumps(_with("items[0].versions[0].content.options", "abcd")).encode()
    response = client.post("/bank/exchange/import/native", data={
        "csrf_token": token, "mode": "all", "package": (io.BytesIO(bad), "bank.json")},
        content_type="multipart/form-data")
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "items[0].versions[0].content.options: Input should be a valid list" in page
    missing = client.post("/bank/exchange/import/native", data={"csrf_token": token, "mode": "all"},
                          content_type="multipart/form-data")
    assert missing.status_code == 422 and 'id="native-package-error">choose a file to import' in missing.get_data(
        as_text=True)


@pytest.fixture
def cli(tmp_path, monkeypatch):
    with own_cbt(tmp_path, monkeypatch, ["db", "upgrade"]) as run:
        yield run, tmp_path, monkeypatch


def test_cbt_items_restore_brings_a_whole_bank_back_as_the_operator_s_audited_action(cli):
    run, tmp_path, monkeypatch = cli
    run("sample", "load")
    run("items", "export", str(tmp_path / "bank.json"))
    exported = json.loads((tmp_path / "bank.json").read_text())

    # Into a bank that holds items: refused, nothing changes.
    refused = run("items", "restore", str(tmp_path / "bank.json"), "--reason", "drill", code=1)
    assert "a restore goes into an empty bank only" in refused

    monkeypatch.setenv("CBT_DATABASE_URL", f"sqlite:///{tmp_path / 'new.sqlite3'}")
    run("db", "upgrade")
    restored = run("items", "restore", str(tmp_path / "bank.json"), "--reason", "moved to new hardware",
                   "--by", "ops-tanaka")
    assert f"{len(exported['items'])} item(s) imported" in restored
    engine = create_database_engine()
    with session_factory(engine)() as session:
        statuses = dict(session.execute(select(Item.status, func.count(Item.id)).group_by(Item.status)).all())
        assert statuses == {s: sum(i["status"] == s for i in exported["items"]) for s in statuses}
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "bank.restore")).one()
        assert (event.actor, event.actor_role, event.reason) == ("ops-tanaka", "operations", "moved to new hardware")
        assert event.details["items"] == len(exported["items"])
        # The CLI's import of the same file lands drafts only, and only codes not in the bank.
        create_staff(session, username="psychometrician", display_name="P", password="psychometrician-pass-1",
                     role="psychometrician")
        session.commit()
    engine.dispose()
    (tmp_path / "one.json").write_text(json.dumps(document(FORGED)))
    assert "1 item(s) imported" in run("items", "import", str(tmp_path / "one.json"))
    assert json.loads(run("items", "show", "FORGED-1"))["status"] == "draft"
    (tmp_path / "bad.json").write_text(json.dumps(_with("items[0].category", "x")))
    refused = run("items", "import", str(tmp_path / "bad.json"), code=1)
    assert "refused OTHERS-1: items[0].category: Input should be a valid integer" in refused


def test_an_item_is_written_from_the_command_line_and_its_file_checked(cli):
    run, tmp_path, _ = cli
    run("sample", "load")
    (tmp_path / "new.json").write_text(json.dumps(CONTENT))
    assert "draft T22-NEW created" in run("items", "new", "T22-NEW", "22", str(tmp_path / "new.json"))
    shown = json.loads(run("items", "show", "T22-NEW"))
    assert (shown["status"], shown["author"]) == ("draft", "psychometrician")
    (tmp_path / "bad.json").write_text(json.dumps({**CONTENT, "options": "DNS"}))
    refused = run("items", "new", "T22-BAD", "22", str(tmp_path / "bad.json"), code=1)
    assert "bad.json: options: Input should be a valid list" in refused and "Traceback" not in refused
    (tmp_path / "broken.json").write_text("{")
    assert "broken.json: not JSON" in run("items", "edit", "T22-NEW", str(tmp_path / "broken.json"), code=1)
    assert "contains '/'" in run("items", "new", "T22/NEW", "22", str(tmp_path / "new.json"), code=1)


def test_csv_exports_quote_every_field_and_neutralise_formula_prefixes():
    text = csv_text(["examinee_id", "T01-001.v1", "A,B.v2"],
                    [["=HYPERLINK(\"http://x\")", "+1", "-1"], ["@SUM(A1)", "\tx", "\rx"], ["ok", -0.25, 3]])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["examinee_id", "T01-001.v1", "A,B.v2"]  # a header with a comma stays one column
    assert rows[1] == ["'=HYPERLINK(\"http://x\")", "'+1", "'-1"]
    assert rows[2] == ["'@SUM(A1)", "'\tx", "'\rx"]
    assert rows[3] == ["ok", "-0.250000", "3"]  # numbers stay numbers
    assert all(line.startswith('"') for line in text.split("\n")[:-1])


def test_the_anchor_export_is_quoted_and_reads_back_with_the_engine(client, session, tmp_path):
    from engine import io as engine_io

    login_staff(client, "psychometrician", "psychometrician-demo-pass")
    response = client.get("/bank/exchange/anchors.csv")
    assert response.status_code == 200 and response.data.startswith(b'"item_id","a","b","c"\n')
    (tmp_path / "a.csv").write_bytes(response.data)
    if response.data.count(b"\n") > 1:
        assert engine_io.read_parameters(tmp_path / "a.csv").items.a.min() > 0
    assert client.get("/bank/exchange/anchors.csv?from=yesterday").status_code == 400


def test_calibration_statistics_keep_no_answer_key(session, program):
    from itembank.models import CalibrationItem

    stored = session.scalars(select(CalibrationItem.statistics)).all()
    assert all("key" not in (s or {}).get("distractors", {}) for s in stored)


def test_the_migration_takes_keys_out_of_stored_runs(tmp_path):
    from alembic import command
    from sqlalchemy import text

    from itembank.models import CalibrationItem, CalibrationRun, ItemVersion
    from persistence.migrate import alembic_config

    engine = create_database_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    upgrade_database(engine)
    with session_factory(engine)() as session:  # a run stored as before this change, key and all
        item = Item(code="T01", field="technology", category=13, status="pretest", author="a", created_at=NOW)
        item.versions.append(ItemVersion(version=1, content="v1:00000000:x", created_by="a", created_at=NOW, note=""))
        run = CalibrationRun(kind="pretest", model="3pl", created_at=NOW, created_by="a", n_sittings=1, n_anchors=1,
                             converged=True, iterations=1, log_likelihood=-1.0, latent_mean=0.0, latent_sd=1.0,
                             settings={}, summary={})
        session.add_all([item, run])
        session.flush()
        run.items.append(CalibrationItem(item_id=item.id, item_version_id=item.versions[0].id, n_responses=1,
                                         converged=True, message="", statistics={
                                             "p_value": 0.5, "distractors": {"proportion": [1, 0, 0, 0], "key": 2}}))
        session.commit()
    command.downgrade(alembic_config(engine), "0400")
    command.upgrade(alembic_config(engine), "head")
    with engine.connect() as connection:
        stored = json.loads(connection.execute(text("SELECT statistics FROM calibration_items")).scalar_one())
    assert stored == {"p_value": 0.5, "distractors": {"proportion": [1, 0, 0, 0]}}
    engine.dispose()


def test_the_qti_export_and_import_services_commit_their_unit_of_work(empty_bank, program):
    from tests.bank_helpers import qti_package

    report = exchange.import_qti(empty_bank, program, qti_package("qti30"), **IMPORTER)
    empty_bank.rollback()  # nothing left to roll back: the service committed
    assert report.landed and empty_bank.scalar(select(func.count(Item.id))) == 2
    package = exchange.export_qti(empty_bank, program, version="3.0", status=None, **IMPORTER)
    empty_bank.rollback()
    assert package[:2] == b"PK"
    actions = empty_bank.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions == ["bank.import", "bank.export"]
    assert qti.VERSIONS  # the wrappers are the ways in and out; itembank.qti does the format


def test_the_import_routes_take_files_up_to_the_import_limit_and_the_item_form_less(client, session):
    from delivery.web.psychometrician import UPLOAD_LIMITS

    assert UPLOAD_LIMITS["/bank/exchange/import/"] == exchange.IMPORT_MAX_BYTES
    login_staff(client, "psychometrician", "psychometrician-demo-pass")
    token = csrf_token(client, "/bank/exchange")
    # Larger than the app's request limit (1 MiB): an import still reads it, and refuses what it holds.
    padded = json.dumps(document({**OTHERS_DRAFT, "category": 99})).encode() + b" " * (3 * 1024 * 1024)
    response = client.post("/bank/exchange/import/native", data={
        "csrf_token": token, "mode": "all", "package": (io.BytesIO(padded), "big.json")},
        content_type="multipart/form-data")
    assert response.status_code == 422 and "99 is not in the syllabus" in response.get_data(as_text=True)
    too_big = client.post("/bank/items/new", data={"csrf_token": token, "stem": "x" * (3 * 1024 * 1024)})
    assert too_big.status_code == 413
