"""QTI exports that other tools accept: every document of the sample bank's export validates against the
official schemas in each version, and a re-import gives the same bank, byte-identical on a second export."""
from __future__ import annotations

import datetime as dt
import io
import zipfile

import pytest

from itembank import bank, qti
from itembank.sample import load_sample_bank
from tests.qti_helpers import (
    ITEM_SCHEMAS,
    MANIFEST_SCHEMAS,
    add_edge_items,
    banks,  # noqa: F401 (a fixture)
    schema,
    schema_errors,
)

NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.timezone.utc)
WHO = {"actor": "psy-test", "actor_role": "psychometrician", "now": NOW}
VERSIONS = ("2.1", "2.2", "3.0")


def members(package: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def the_bank(session) -> dict:
    """What a round trip must keep: per code, the category and the whole content."""
    return {e.item.code: (e.item.category, e.content) for e in bank.browse(session)}


@pytest.fixture
def full_bank(banks, program):
    session = banks.new()
    load_sample_bank(session, program)
    add_edge_items(session, program)
    session.commit()
    return session


@pytest.mark.parametrize("version", VERSIONS)
def test_every_document_of_the_bank_export_validates_against_the_official_schemas(full_bank, program, version):
    schema(ITEM_SCHEMAS[version])  # skips with the reason when lxml or the schema folder is missing
    files = members(qti.export_package(full_bank, program, version=version, **WHO))
    documents = {name: data for name, data in files.items() if name.startswith("items/") and name.endswith(".xml")}
    stimuli = [name for name in documents if name.startswith("items/stimuli/")]
    # One document per item and language: the 330 sample items in Japanese and English, the edge items in one.
    entries = bank.browse(full_bank)
    assert len(entries) == 334
    assert len(documents) - len(stimuli) == sum(len(e.content.languages) for e in entries) == 334 + 330
    assert len(stimuli) == 2  # two items share one passage; a third has another under the same identifier
    invalid = {name: errors[:2] for name, data in documents.items()
               if (errors := schema_errors(ITEM_SCHEMAS[version], data))}
    assert invalid == {}
    assert schema_errors(MANIFEST_SCHEMAS[version], files["imsmanifest.xml"]) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_a_reimported_export_is_the_same_bank_and_exports_to_the_same_bytes(full_bank, banks, program, version):
    before = the_bank(full_bank)
    first = qti.export_package(full_bank, program, version=version, **WHO)
    other = banks.new()
    report = qti.import_package(other, program, first, name=f"bank {version}", **WHO)
    other.commit()
    assert report.rejected == [] and report.landed and len(report.accepted) == len(before)
    again = the_bank(other)
    differing = sorted(code for code in before if before[code] != again.get(code))
    assert differing == [] and set(again) == set(before)
    assert qti.export_package(other, program, version=version, **WHO) == first


def test_the_edge_items_keep_codes_titles_flags_and_spacing(full_bank, program):
    document = members(qti.export_package(full_bank, program, version="3.0", codes=["12.Edge-1"], **WHO))
    item = next(data for name, data in document.items() if name.startswith("items/i12.Edge-1")).decode()
    assert 'title="出力の問題"' in item and 'xml:lang="ja"' in item and 'shuffle="true"' in item
    assert '<qti-simple-choice identifier="none_of_these" fixed="true">' in item
    assert "<pre>  for i in range(3):\n      print(i)</pre>" in item
    assert '<qti-rubric-block use="instructions" view="candidate">' in item
    assert '<qti-assessment-stimulus-ref identifier="passage-cloud" href="stimuli/passage-cloud.xml"' in item
    manifest = document["imsmanifest.xml"].decode()
    assert "<entry>12.Edge-1</entry>" in manifest and "<catalog>it-passport item code</catalog>" in manifest


def test_identifiers_are_qti_identifiers_of_at_most_32_characters_and_distinct():
    codes = ["12.Edge-1", "1234567890123456789012345678901", "a.b", "a_b", "A_B", "ok-code", "x" * 32]
    identifiers = qti.export_identifiers(codes)
    assert identifiers["ok-code"] == "ok-code" and identifiers["x" * 32] == "x" * 32
    assert all(qti.NCNAME.match(i) and len(i) <= 32 for i in identifiers.values())
    assert len({i.casefold() for i in identifiers.values()}) == len(codes)


def test_a_header_only_table_exports_as_one_row_of_th_and_validates(full_bank, program):
    for version in VERSIONS:
        data = members(qti.export_package(full_bank, program, version=version, codes=["12.Edge-1"], **WHO))
        item = next(d for n, d in data.items() if n.startswith("items/i12")).decode()
        assert "<tbody><tr><th>入力</th><th>出力</th></tr></tbody>" in item and "<thead" not in item
        assert schema_errors(ITEM_SCHEMAS[version], item.encode()) == []


def test_the_native_format_keeps_what_qti_brought(banks, program):
    from itembank import exchange

    session = banks.new()
    add_edge_items(session, program)
    session.commit()
    document = exchange.export_bank(session, program, **WHO)
    other = banks.new()
    report = exchange.import_bank(other, program, document, **WHO)
    assert report.rejected == [] and the_bank(other) == the_bank(session)
