"""`cbt items` and `cbt calibration` as a script would use them, on a database of their own."""
from __future__ import annotations

import json

import pytest

from tests.bank_helpers import qti_package
from tests.cli_helpers import own_cbt


@pytest.fixture
def cli(tmp_path, monkeypatch):
    with own_cbt(tmp_path, monkeypatch, ["db", "upgrade"], ["sample", "load"]) as run:
        yield run, tmp_path


def test_the_bank_is_scripted_from_the_command_line(cli):
    run, tmp_path = cli
    assert "T13-002\ttechnology\t13\tpretest" in run("items", "list", "--status", "pretest")
    shown = json.loads(run("items", "show", "T13-002"))
    assert shown["category"] == "13. Basic theory" and shown["parameters"]["source"] == "synthetic"

    (tmp_path / "q3.zip").write_bytes(qti_package("qti30"))
    assert "2 item(s) imported" in run("items", "import", str(tmp_path / "q3.zip"))
    refused = run("items", "import", str(tmp_path / "q3.zip"), code=1)
    assert "refused items/Q3-DB-001.xml: item Q3-DB-001 is already in the bank" in refused

    (tmp_path / "edit.json").write_text(json.dumps({
        "stem": "Which column can be the primary key?", "options": ["name", "member_no", "city", "all"], "key": 1}))
    assert "Q3-DB-001: version 2 saved" in run("items", "edit", "Q3-DB-001", str(tmp_path / "edit.json"))
    refused = run("items", "move", "Q3-DB-001", "reviewed", code=1)
    assert "another person must review it" in refused
    assert "S01-001 is now retired" in run("items", "move", "S01-001", "retired", "--reason", "outdated law")
    assert "enemy set pair: S01-001 S01-002" in run("items", "enemies", "pair", "S01-001", "S01-002")

    run("items", "export", str(tmp_path / "bank.json"))
    assert len(json.loads((tmp_path / "bank.json").read_text())["items"]) == 332
    assert "wrote 332 items" in run("items", "export", str(tmp_path / "bank.zip"), "--format", "qti2.1")

    rotated = run("items", "rotate-key")
    assert "bank re-encrypted under key" in rotated
    assert "Q3-DB-001" in run("items", "list", "--text", "primary key")
    assert "needs at least 100" in run("calibration", "run", code=1)
    assert "no active staff account 'nobody'" in run("items", "move", "S01-001", "retired", "--as", "nobody", code=1)
