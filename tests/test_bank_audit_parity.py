"""A bank change audited from the web is audited the same from the CLI.

Two banks start alike (the sample bank, the demo staff, a second psychometrician, the same
calibration runs and draft forms made by the services with fixed seeds). Every bank change
is then made in one through the psychometrician's pages and in the other through ``cbt``;
the audit trails they write from there on must be the same, event for event (who, in which
role, what, on what, why, and the details), the times apart.
"""
from __future__ import annotations

import datetime as dt
import io
import json

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

import engine as irt
from centers.accounts import create_staff
from centers.demo import ensure_demo_centre
from delivery.cli import main
from itembank import calibration, forms
from itembank.bank import entry
from itembank.keyring import use_keyring
from itembank.models import Item
from itembank.sample import load_sample_bank
from persistence import create_database_engine, session_factory, upgrade_database
from persistence.audit import AuditEvent, verify_chain
from tests.bank_helpers import qti_package
from tests.helpers import csrf_token, login_staff
from tests.test_calibration_workflow import simulated_set

pytestmark = pytest.mark.slow

SECOND = ("psy-second", "second-psychometrician-pass")
NEW = {"stem": "Which protocol resolves host names?", "options": ["DNS", "DHCP", "ARP", "NTP"], "key": 0}
EDITED = {"stem": "Which protocol turns a host name into an address?", "options": ["DNS", "DHCP", "ARP", "NTP"],
          "key": 0}
IMPORTED = {"format": "cbt-item-bank", "format_version": 1, "program": "it-passport", "enemy_sets": [],
            "items": [{"code": "P-IMP-1", "category": 3, "status": "operational", "author": "elsewhere",
                       "versions": [{"content": {"stem": "An imported stem", "options": ["a", "b", "c", "d"],
                                                 "key": 2},
                                     "parameters": {"a": 1.2, "b": 0.1, "c": 0.2}}]}]}


def _bank(path, program, now):
    """A bank like the other: sample items, demo staff, a second psychometrician, runs and forms."""
    bank_engine = create_database_engine(f"sqlite:///{path}")
    upgrade_database(bank_engine)
    who = {"actor": "psychometrician", "actor_role": "psychometrician", "now": now}
    with session_factory(bank_engine)() as session:
        load_sample_bank(session, program)
        ensure_demo_centre(session)
        create_staff(session, username=SECOND[0], display_name="Second", password=SECOND[1], role="psychometrician")
        session.commit()
        pretest = session.scalars(select(Item.code).where(Item.status == "pretest", Item.field == "management")
                                  .order_by(Item.code)).all()[:2]
        anchors = session.scalars(select(Item.code).where(Item.status == "operational").order_by(Item.code)).all()
        codes = anchors[:60] + pretest
        versions = [entry(session, code).version for code in codes]
        truth = irt.ItemParameters([v.a for v in versions], [v.b for v in versions], [v.c for v in versions])
        pretest_run = calibration.run_pretest_calibration(
            session, program, simulated_set(session, codes, truth, n=600, per_examinee=30,
                                            rng=np.random.default_rng(3), pretest=pretest), **who)
        drifted = anchors[:20]
        drift_truth = irt.ItemParameters(truth.a[:20], truth.b[:20], truth.c[:20])
        drift_run = calibration.run_drift_watch(session, program, simulated_set(
            session, drifted, drift_truth, n=600, per_examinee=15, rng=np.random.default_rng(5)), **who)
        made = forms.assemble_batch(session, program, 3, seed=4, **who)
        ids = {"pretest_run": pretest_run.id, "approve": pretest[0], "reject": pretest[1], "drift_run": drift_run.id,
               "drifted": drifted[0], "form": made[0].code, "other_form": made[1].code, "operational": anchors[0],
               "last_event": session.scalar(select(func.max(AuditEvent.id)))}
    return bank_engine, ids


def _trail(bank_engine, after: int) -> list[tuple]:
    with session_factory(bank_engine)() as session:
        assert verify_chain(session).intact
        events = session.scalars(select(AuditEvent).where(AuditEvent.id > after).order_by(AuditEvent.id)).all()
        # Signing in to the web area is audited too; it is not a bank change.
        return [(e.actor, e.actor_role, e.action, e.subject, e.reason, e.details) for e in events
                if not e.action.startswith("staff.")]


def test_every_bank_change_is_audited_alike_from_the_web_and_the_cli(tmp_path, monkeypatch, program):
    from delivery.web import create_app

    monkeypatch.setenv("CBT_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CBT_KEY_DIR", str(tmp_path / "keys"))
    monkeypatch.delenv("CBT_CONTENT_KEYS", raising=False)
    monkeypatch.delenv("CBT_CONTENT_KEY_FILE", raising=False)
    monkeypatch.delenv("CBT_ACTOR", raising=False)
    use_keyring(None)
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    web_engine, web_ids = _bank(tmp_path / "web.sqlite3", program, now)
    cli_engine, cli_ids = _bank(tmp_path / "cli.sqlite3", program, now)
    assert web_ids == cli_ids
    ids = web_ids

    # The web: the demo psychometrician and a second one, each in a browser of their own.
    app = create_app({"ENGINE": web_engine, "SECRET_KEY": "parity", "TESTING": True, "CLOCK": lambda: now})
    first, second = app.test_client(), app.test_client()
    login_staff(first, "psychometrician", "psychometrician-demo-pass")
    login_staff(second, *SECOND)

    def post(client, path, data, status=302):
        response = client.post(path, data={"csrf_token": csrf_token(client, "/bank/"), **data},
                               content_type="multipart/form-data")
        assert response.status_code == status, response.get_data(as_text=True)[-1500:]
        return response

    def get(client, path):
        response = client.get(path)
        assert response.status_code == 200, response.get_data(as_text=True)[-1500:]
        return response

    def options(content):
        return {f"options-{i}": text for i, text in enumerate(content["options"])} | {
            "stem": content["stem"], "key": str(content["key"])}

    post(first, "/bank/items/new", {"code": "P-NEW-1", "category": "22", **options(NEW)})
    post(first, "/bank/items/P-NEW-1/edit", {"reason": "clearer stem", **options(EDITED)})
    post(second, "/bank/items/P-NEW-1/status", {"to": "reviewed", "reason": "checked the key"})
    post(second, "/bank/items/P-NEW-1/status", {"to": "pretest", "reason": "ready"})
    post(first, "/bank/enemies", {"name": "pair", "items": "P-NEW-1 S01-001", "note": "same topic"})
    post(first, "/bank/enemies/pair/delete", {})
    post(first, "/bank/exchange/import/native", {"mode": "all", "package": (
        io.BytesIO(json.dumps(IMPORTED).encode()), "imported.json")}, status=200)
    post(first, "/bank/exchange/import/qti", {"mode": "all", "package": (io.BytesIO(qti_package("qti30")),
                                                                         "qti30.zip")}, status=200)
    get(first, "/bank/exchange/export.json")
    get(first, "/bank/exchange/export-qti?version=3.0")
    get(first, "/bank/exchange/responses.csv")
    get(first, "/bank/exchange/anchors.csv")
    run, drift = ids["pretest_run"], ids["drift_run"]
    post(first, f"/bank/calibration/{run}/items/{ids['approve']}/decision", {"decision": "approve", "note": "fits"})
    post(first, f"/bank/calibration/{run}/items/{ids['reject']}/decision", {"decision": "reject",
                                                                           "note": "distractor C is ambiguous"})
    post(first, f"/bank/calibration/{drift}/items/{ids['drifted']}/decision", {"decision": "acknowledge",
                                                                              "note": "watch it"})
    post(first, f"/bank/forms/{ids['form']}/publish", {"reason": "reviewed"})
    post(first, f"/bank/forms/{ids['other_form']}/retire", {"reason": "not needed"})
    post(first, "/bank/studies", {"candidates": "50", "pool": "bank", "forms": "3", "seed": "2", "design": "loft"})
    key_campaign = post(first, "/bank/rescoring/", {"code": ids["operational"], "version": "1", "kind": "key",
                                                     "key": "D" if entry_key(web_engine, ids) != 3 else "C",
                                                     "reason": "the key was wrong"})
    post(second, key_campaign.headers["Location"] + "/apply", {})
    withdrawal = post(first, "/bank/rescoring/", {"code": "P-NEW-1", "version": "2", "kind": "withdrawn",
                                                  "reason": "ambiguous"})
    post(second, withdrawal.headers["Location"] + "/discard", {"reason": "kept after all"})

    # The command line, against the other bank.
    monkeypatch.setenv("CBT_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    runner = CliRunner()

    def cbt(*args, who="psychometrician"):
        result = runner.invoke(main, [*map(str, args), "--as", who])
        assert result.exit_code == 0, result.output
        return result.output

    for name, content in (("new.json", NEW), ("edited.json", EDITED), ("imported.json", IMPORTED)):
        (tmp_path / name).write_text(json.dumps(content))
    (tmp_path / "qti30.zip").write_bytes(qti_package("qti30"))
    cbt("items", "new", "P-NEW-1", 22, tmp_path / "new.json")
    cbt("items", "edit", "P-NEW-1", tmp_path / "edited.json", "--reason", "clearer stem")
    cbt("items", "move", "P-NEW-1", "reviewed", "--reason", "checked the key", who=SECOND[0])
    cbt("items", "move", "P-NEW-1", "pretest", "--reason", "ready", who=SECOND[0])
    cbt("items", "enemies", "pair", "P-NEW-1", "S01-001", "--note", "same topic")
    cbt("items", "enemies", "pair", "--delete")
    cbt("items", "import", tmp_path / "imported.json")
    cbt("items", "import", tmp_path / "qti30.zip")
    cbt("items", "export", tmp_path / "bank.json")
    cbt("items", "export", tmp_path / "bank.zip", "--format", "qti3.0")
    cbt("calibration", "responses", tmp_path / "r.csv", "--anchors", tmp_path / "a.csv")
    cbt("calibration", "approve", run, ids["approve"], "--note", "fits")
    cbt("calibration", "reject", run, ids["reject"], "--note", "distractor C is ambiguous")
    cbt("calibration", "acknowledge", drift, ids["drifted"], "--note", "watch it")
    cbt("forms", "publish", ids["form"], "--reason", "reviewed")
    cbt("forms", "retire", ids["other_form"], "--reason", "not needed")
    cbt("simulate", "--candidates", 50, "--pool", "bank", "--forms", 3, "--seed", 2, "--design", "loft")
    out = cbt("rescoring", "propose", "--item", ids["operational"], "--version", 1, "--key",
              "D" if entry_key(cli_engine, ids) != 3 else "C", "--reason", "the key was wrong")
    cbt("rescoring", "apply", out.split()[1].rstrip(":"), who=SECOND[0])
    out = cbt("rescoring", "propose", "--item", "P-NEW-1", "--version", 2, "--withdraw", "--reason", "ambiguous")
    runner.invoke(main, ["rescoring", "discard", out.split()[1].rstrip(":"), "--reason", "kept after all",
                         "--as", SECOND[0]])

    web, cli = _trail(web_engine, ids["last_event"]), _trail(cli_engine, ids["last_event"])
    assert [e[2] for e in web] == [
        "item.create", "item.edit", "item.status", "item.status", "enemies.save", "enemies.delete", "bank.import",
        "bank.import", "bank.export", "bank.export", "bank.export", "bank.export", "item.status",
        "calibration.approve", "item.status", "calibration.reject", "calibration.acknowledge", "forms.publish",
        "forms.retire", "study.run", "rescoring.propose", "rescoring.apply", "rescoring.propose",
        "rescoring.discard"]
    assert web == cli
    web_engine.dispose()
    cli_engine.dispose()
    use_keyring(None)


def entry_key(bank_engine, ids) -> int:
    with session_factory(bank_engine)() as session:
        return entry(session, ids["operational"]).content.key
