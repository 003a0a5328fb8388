"""Hostile QTI packages are refused with a reason, at bounded cost (issue 13)."""
from __future__ import annotations

import base64
import datetime as dt
import io
import struct
import tracemalloc
import zipfile

import pytest
from sqlalchemy import func, select

from itembank import qti
from itembank.content import ContentError, check_figure
from itembank.models import Item
from persistence import create_database_engine, session_factory, upgrade_database
from tests.bank_helpers import DATA, zip_directory

NOW = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.timezone.utc)
WHO = {"actor": "psy-test", "actor_role": "psychometrician", "now": NOW}
ITEM = "items/Q3-PM-002.xml"


@pytest.fixture
def empty_bank(tmp_path):
    engine = create_database_engine(f"sqlite:///{tmp_path / 'bank.sqlite3'}")
    upgrade_database(engine)
    with session_factory(engine)() as session:
        yield session
    engine.dispose()


def refused(session, program, package: bytes) -> str:
    report = qti.import_package(session, program, package, **WHO)  # all or nothing
    assert not report.landed and session.scalar(select(func.count(Item.id))) == 0
    return " ".join(r.reason for r in report.rejected)


def _patch_member(package: bytes, name: str, **fields) -> bytes:
    """The package with header fields of member ``name`` overwritten in its local header and
    its central directory entry (flag bits, method, declared size), as a forger would."""
    data = bytearray(package)
    offsets = {"flags": (6, 8, "<H"), "method": (8, 10, "<H"), "size": (22, 24, "<I")}
    central = {"flags": (8, 10, "<H"), "method": (10, 12, "<H"), "size": (24, 28, "<I")}
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        info = archive.getinfo(name)
    local = info.header_offset
    for field, value in fields.items():
        start, _end, fmt = offsets[field]
        start = {"size": 22}.get(field, start)
        struct.pack_into(fmt, data, local + start, value)
    position = data.find(b"PK\x01\x02")
    while position != -1:
        name_length = struct.unpack_from("<H", data, position + 28)[0]
        if data[position + 46:position + 46 + name_length].decode() == name:
            for field, value in fields.items():
                start, _end, fmt = central[field]
                struct.pack_into(fmt, data, position + start, value)
        position = data.find(b"PK\x01\x02", position + 4)
    return bytes(data)


def test_a_zip_bomb_that_understates_its_sizes_is_refused_within_a_bounded_memory(empty_bank, program):
    bomb = zip_directory(DATA / "qti" / "qti30", {ITEM: b"<a>" + b" " * (300 * 1024 * 1024) + b"</a>"})
    assert len(bomb) < 2 * 1024 * 1024
    forged = _patch_member(bomb, ITEM, size=1000)
    tracemalloc.start()
    try:
        reason = refused(empty_bank, program, forged)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "inflates to more than the size the zip declares" in reason or "corrupt" in reason
    assert peak < 64 * 1024 * 1024


def test_a_manifest_naming_one_item_thousands_of_times_is_refused_at_once(empty_bank, program):
    manifest = (DATA / "qti" / "qti30" / "imsmanifest.xml").read_bytes()
    resource = f'<resource identifier="r{{}}" type="imsqti_item_xmlv3p0" href="{ITEM}"/>'
    many = "".join(resource.format(i) for i in range(15_000)).encode()
    package = zip_directory(DATA / "qti" / "qti30", {"imsmanifest.xml": manifest.replace(b"</resources>",
                                                                                          many + b"</resources>")})
    assert "more than once" in refused(empty_bank, program, package)


def test_corrupt_members_are_refused_with_a_reason(empty_bank, program):
    stored = io.BytesIO()
    original = zip_directory(DATA / "qti" / "qti30", {})
    with zipfile.ZipFile(io.BytesIO(original)) as source, zipfile.ZipFile(stored, "w", zipfile.ZIP_STORED) as copy:
        for info in source.infolist():
            copy.writestr(info.filename, source.read(info))
    data = bytearray(stored.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo(ITEM)
    body = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[body + 10] ^= 0xFF  # one byte of the item changed: its CRC no longer matches
    assert "corrupt" in refused(empty_bank, program, bytes(data))

    deflated = bytearray(original)
    with zipfile.ZipFile(io.BytesIO(original)) as archive:
        info = archive.getinfo(ITEM)
    body = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    deflated[body:body + 16] = b"\xff" * 16  # not a deflate stream
    assert "corrupt" in refused(empty_bank, program, bytes(deflated))


@pytest.mark.parametrize("fields, reason", [({"flags": 0x1}, "encrypted"), ({"method": 99}, "compression method")])
def test_encrypted_members_and_unknown_compression_are_refused(empty_bank, program, fields, reason):
    package = _patch_member(zip_directory(DATA / "qti" / "qti30", {}), ITEM, **fields)
    assert reason in refused(empty_bank, program, package)


def test_two_manifests_in_one_zip_are_refused(empty_bank, program):
    buffer = io.BytesIO(zip_directory(DATA / "qti" / "qti30", {}))
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr("imsmanifest.xml", b"<manifest/>")
    assert "in the zip twice" in refused(empty_bank, program, buffer.getvalue())


def test_twenty_thousand_nested_divs_are_refused_not_a_recursion_error(empty_bank, program):
    body = (DATA / "qti" / "qti30" / ITEM).read_bytes()
    nested = b"<div>" * 20_000 + b"x" + b"</div>" * 20_000
    start = body.index(b"<qti-item-body>") + len(b"<qti-item-body>")
    package = zip_directory(DATA / "qti" / "qti30", {ITEM: body[:start] + nested + body[start:]})
    assert "nested more than" in refused(empty_bank, program, package)


SCRIPTED_SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
HANDLER_SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><rect width="4" height="4" onload="alert(1)"/></svg>'
LINKED_SVG = (b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
              b'<image xlink:href="https://elsewhere.example/x.png"/></svg>')
PLAIN_SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/></svg>'


@pytest.mark.parametrize("media_type, raw, reason", [
    ("image/svg+xml", SCRIPTED_SVG, "<script>"),
    ("image/svg+xml", HANDLER_SVG, "event handler"),
    ("image/svg+xml", LINKED_SVG, "links to another document"),
    ("image/png", b"<html><script>alert(1)</script></html>", "not a image/png image"),
    ("image/jpeg", b"GIF89a....", "not a image/jpeg image"),
])
def test_a_figure_is_what_its_bytes_are_and_an_svg_cannot_run_code(media_type, raw, reason):
    with pytest.raises(ContentError, match=reason):
        check_figure({"media_type": media_type, "data": base64.b64encode(raw).decode(), "alt": "a figure"})


def test_a_plain_svg_figure_is_accepted():
    check_figure({"media_type": "image/svg+xml", "data": base64.b64encode(PLAIN_SVG).decode(), "alt": "a square"})


@pytest.mark.parametrize("encoding", ["Shift_JIS", "EUC-JP", "cp932"])
def test_an_item_in_a_japanese_legacy_encoding_imports_with_its_text_intact(empty_bank, program, encoding):
    from itembank.bank import item_by_code
    from itembank.content import unpack

    path = DATA / "qti" / "qti30" / "items" / "Q3-DB-001.xml"
    text = path.read_text(encoding="utf-8").replace('encoding="UTF-8"', f'encoding="{encoding}"').replace(
        "Which column is suited to be the primary key?", "主キーとして適切な列はどれか。").replace('xml:lang="en"', 'xml:lang="ja"')
    package = zip_directory(DATA / "qti" / "qti30", {"items/Q3-DB-001.xml": text.encode(encoding)})
    report = qti.import_package(empty_bank, program, package, mode="valid", **WHO)
    assert "Q3-DB-001" in report.accepted, report.rejected
    assert "主キーとして適切な列はどれか。" in unpack(item_by_code(empty_bank, "Q3-DB-001").versions[-1].content).stem


def test_a_document_that_is_not_in_its_declared_encoding_is_refused_with_a_reason(empty_bank, program):
    path = DATA / "qti" / "qti30" / "items" / "Q3-DB-001.xml"
    text = path.read_text(encoding="utf-8").replace('encoding="UTF-8"', 'encoding="Shift_JIS"')
    broken = text.encode("utf-8").replace(b"primary key", "主キー".encode("utf-8") + b"\xff\xfe")
    package = zip_directory(DATA / "qti" / "qti30", {"items/Q3-DB-001.xml": broken})
    assert "not valid Shift_JIS" in refused(empty_bank, program, package)
