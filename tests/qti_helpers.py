"""For the QTI tests: the official schemas, a fresh bank on each backend, packages written in tests."""
from __future__ import annotations

import base64
import io
import zipfile
from pathlib import Path

import pytest

from itembank.bank import add_item
from itembank.content import ItemContent
from persistence import create_database_engine, session_factory, upgrade_database
from tests.conftest import BACKENDS, fresh_database_url

# The repository's parent folder holds shared/ beside it (here and in CI).
SCHEMAS = Path(__file__).resolve().parents[1].parent / "shared" / "qti-schemas"
ITEM_SCHEMAS = {"2.1": "qtiv2p1/imsqti_v2p1.xsd", "2.2": "qtiv2p2/imsqti_v2p2.xsd",
                "3.0": "qtiv3p0/asi_sbac_local.xsd"}
MANIFEST_SCHEMAS = {"2.1": "cp21_lom.xsd", "2.2": "qtiv2p2/qtiv2p2_imscpv1p2_v1p0.xsd",
                    "3.0": "qtiv3p0/imsqtiv3p0_imscpv1p2_v1p0.xsd"}
_loaded: dict[str, object] = {}


def schema(path: str):
    """An official schema, read with no network access (every schemaLocation resolves in the folder)."""
    etree = pytest.importorskip("lxml.etree", reason="lxml validates the exports (pip install lxml)")
    if not SCHEMAS.is_dir():
        pytest.skip(f"the QTI schemas are not at {SCHEMAS} (the shared/ folder beside the repository)")
    if path not in _loaded:
        parser = etree.XMLParser(no_network=True)
        _loaded[path] = etree.XMLSchema(etree.parse(str(SCHEMAS / path), parser))
    return _loaded[path]


def schema_errors(path: str, data: bytes) -> list[str]:
    """The schema's complaints about one document (none when it is valid)."""
    from lxml import etree

    checker = schema(path)
    if checker.validate(etree.fromstring(data, etree.XMLParser(no_network=True, resolve_entities=False))):
        return []
    return [f"line {e.line}: {e.message}" for e in checker.error_log]




class Banks:
    """Fresh empty banks on one backend: ``banks.new()`` gives an open session of a new database."""

    def __init__(self, backend: str, tmp_path: Path):
        self.backend, self.tmp_path = backend, tmp_path
        self._open: list = []

    def new(self):
        urls = fresh_database_url(self.backend, self.tmp_path)
        url = next(urls)
        engine = create_database_engine(url)
        upgrade_database(engine)
        session = session_factory(engine)()
        self._open.append((session, engine, urls))
        return session

    def close(self) -> None:
        for session, engine, urls in reversed(self._open):
            session.close()
            engine.dispose()
            next(urls, None)


@pytest.fixture(params=BACKENDS)
def banks(request, tmp_path):
    made = Banks(request.param, tmp_path)
    yield made
    made.close()


SVG = base64.b64encode(b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20">'
                       b'<rect width="40" height="20" fill="#369"/></svg>').decode()
PASSAGE = {"identifier": "passage-cloud", "title": "A small firm moves to the cloud",
           "text": "A firm of 12 people keeps its files on one server in the office.\n"
                   "It plans to move them to a cloud storage service next year."}


def edge_items() -> list[dict]:
    """Items that use everything the bank can hold, in the forms that once did not round-trip."""
    return [
        {"code": "12.Edge-1", "category": 23, "content": ItemContent(
            stem="次のプログラムの出力はどれか。\n  for i in range(3):\n      print(i)\n\u3000全角の字下げ",
            options=("x  y", "x y", "0 1 2", "なし"), key=2, rationale="Line one.\n  indented line two",
            table={"header": ["入力", "出力"], "rows": []}, title="出力の問題", language="ja",
            choice_ids=("c-a", "c-b", "c-c", "none_of_these"), shuffle=True, fixed=(3,), stimulus=PASSAGE,
            instructions="Read the passage first.")},
        {"code": "1234567890123456789012345678901", "category": 1, "content": ItemContent(
            stem="A code that starts with a digit.", options=("A", "B", "C", "D"), key=0, shuffle=False)},
        {"code": "a.b", "category": 22, "content": ItemContent(
            stem="Which figure?\n\nThe one above.", options=("one", "two", "three", "four"), key=1,
            figure={"media_type": "image/svg+xml", "data": SVG, "alt": "A blue rectangle"}, stimulus=PASSAGE)},
        {"code": "a_b", "category": 22, "content": ItemContent(
            stem="Same identifier once sanitised.", options=("first\nline two", "second", "third", "fourth"),
            key=3, table={"header": ["k", "v  v"], "rows": [["1", " lead"], ["2", ""]]},
            stimulus={**PASSAGE, "text": "Another passage under the same identifier."})},
    ]


def add_edge_items(session, program) -> None:
    for raw in edge_items():
        add_item(session, program, code=raw["code"], category=raw["category"], status="draft",
                 content=raw["content"], author="qti test")


def zip_members(members: dict[str, bytes | str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as package:
        for name, data in members.items():
            package.writestr(name, data.encode() if isinstance(data, str) else data)
    return buffer.getvalue()
