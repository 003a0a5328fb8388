"""Calibration runs beyond the recovery test: the drift watch, the review screens, the CSV for other tools."""
from __future__ import annotations

import datetime as dt

import numpy as np
from click.testing import CliRunner
from sqlalchemy import select

import engine as irt
from engine import io as engine_io
from itembank import calibration
from itembank.bank import entry
from itembank.calibration import NOT_PRESENTED, ResponseSet
from itembank.content import unpack
from itembank.models import Item
from tests.helpers import api, booked_candidate, csrf_token, login_candidate, login_staff, start_sitting

NOW = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.timezone.utc)
PSY = {"actor": "psychometrician", "actor_role": "psychometrician", "now": NOW}


def simulated_set(session, codes, truth, n, per_examinee, rng, pretest=()) -> ResponseSet:
    """Responses of ``n`` examinees to ``per_examinee`` of the items ``codes``, from ``truth`` (a, b, c);
    the items ``pretest`` sit in pretest slots and everyone answers them."""
    versions = [entry(session, code).version for code in codes]
    keys = np.array([unpack(v.content).key for v in versions])
    theta = rng.normal(0, 1, n)
    in_pretest = np.array([code in pretest for code in codes])
    presented = np.zeros((n, len(codes)), dtype=bool)
    presented[:, in_pretest] = True
    for row in presented:
        row[rng.choice(np.flatnonzero(~in_pretest), per_examinee, replace=False)] = True
    right = irt.simulate_responses(theta, truth, rng, presented=presented)
    wrong_choice = (keys[None, :] + rng.integers(1, 4, size=right.shape)) % 4
    choices = np.where(right == 1, keys[None, :], wrong_choice).astype(np.int8)
    choices[~presented] = NOT_PRESENTED
    return ResponseSet(choices, np.array([v.id for v in versions]), in_pretest,
                       np.arange(n), {"occupation": np.where(rng.random(n) < 0.4, "student", "working")})


def test_the_drift_watch_flags_the_items_that_moved_and_not_the_others(session, program):
    codes = session.scalars(select(Item.code).where(Item.status == "operational").order_by(Item.code)).all()[:60]
    bank_versions = [entry(session, code).version for code in codes]
    a = np.array([v.a for v in bank_versions])
    b = np.array([v.b for v in bank_versions])
    c = np.array([v.c for v in bank_versions])
    moved = [5, 17, 42]
    b_true = b.copy()
    b_true[moved] += 1.0  # e.g. an item whose answer spread on the internet became easier... or harder
    data = simulated_set(session, codes, irt.ItemParameters(a, b_true, c), n=4000, per_examinee=30,
                         rng=np.random.default_rng(11))
    run = calibration.run_drift_watch(session, program, data, **PSY)
    session.commit()
    flagged = {e.item.code for e in run.items if e.flagged}
    assert {codes[j] for j in moved} <= flagged
    assert len(flagged - {codes[j] for j in moved}) <= 2, flagged
    shifted = {e.item.code: e.statistics["b_shift"] for e in run.items}
    assert all(0.6 < shifted[codes[j]] < 1.4 for j in moved)
    # Acknowledging a flag leaves the item as it was.
    calibration.acknowledge(session, run.id, codes[5], note="watch it", **PSY)
    session.commit()
    assert entry(session, codes[5]).item.status == "operational"


def finished_sitting(client, session, program, clock):
    booked = booked_candidate(session, program, clock.now)
    login_candidate(client, booked)
    start_sitting(client)
    for position in range(1, 101, 3):
        api(client, "PUT", f"/api/sitting/answers/{position}", {"option": position % 4})
    api(client, "POST", "/api/sitting/finish", {})
    client.post("/logout", data={"csrf_token": csrf_token(client)})


def test_a_run_is_reviewed_and_decided_in_the_web_area(client, app, session, program, clock):
    login_staff(client, "psychometrician", "psychometrician-demo-pass")
    token = csrf_token(client, "/bank/calibration")
    # Too few finished sittings: a clear refusal, nothing saved.
    refused = client.post("/bank/calibration/runs", data={"csrf_token": token, "kind": "pretest",
                                                          "from": "2026-01-01", "to": "2026-01-02"})
    assert refused.status_code == 422 and "needs at least 100" in refused.get_data(as_text=True)

    pretest = session.scalars(select(Item.code).where(Item.status == "pretest", Item.field == "management")
                              .order_by(Item.code)).all()[:2]
    anchors = session.scalars(select(Item.code).where(Item.status == "operational").order_by(Item.code)).all()[:60]
    codes = anchors + pretest
    versions = [entry(session, code).version for code in codes]
    truth = irt.ItemParameters([v.a for v in versions], [v.b for v in versions], [v.c for v in versions])
    data = simulated_set(session, codes, truth, n=600, per_examinee=30, rng=np.random.default_rng(3), pretest=pretest)
    run = calibration.run_pretest_calibration(session, program, data, **PSY)
    session.commit()
    assert sorted(e.item.code for e in run.items) == pretest and all(e.n_responses == 600 for e in run.items)

    run_page = client.get(f"/bank/calibration/{run.id}").get_data(as_text=True)
    assert f"Calibration run {run.id} (pretest)" in run_page and "600 finished sittings" in run_page
    approved, rejected = pretest
    review = client.get(f"/bank/calibration/{run.id}/items/{approved}").get_data(as_text=True)
    assert "Item characteristic curve" in review and "Differential item functioning" in review
    plot = client.get(f"/bank/calibration/{run.id}/items/{approved}/icc.svg")
    assert plot.status_code == 200 and plot.mimetype == "image/svg+xml" and b"<svg" in plot.data

    token = csrf_token(client, f"/bank/calibration/{run.id}/items/{approved}")
    without_note = client.post(f"/bank/calibration/{run.id}/items/{rejected}/decision",
                               data={"csrf_token": token, "decision": "reject"})
    assert without_note.status_code == 422 and "say why" in without_note.get_data(as_text=True)
    assert client.post(f"/bank/calibration/{run.id}/items/{rejected}/decision", data={
        "csrf_token": token, "decision": "reject", "note": "distractor C is ambiguous"}).status_code == 302
    assert client.post(f"/bank/calibration/{run.id}/items/{approved}/decision", data={
        "csrf_token": token, "decision": "approve", "note": "fits"}).status_code == 302
    again = client.post(f"/bank/calibration/{run.id}/items/{approved}/decision",
                        data={"csrf_token": token, "decision": "approve"})
    assert again.status_code == 409 and "already approved" in again.get_data(as_text=True)
    session.expire_all()
    assert entry(session, rejected).item.status == "reviewed"
    now_operational = entry(session, approved)
    assert now_operational.item.status == "operational"
    assert now_operational.version.calibration_run_id == run.id and now_operational.version.n_responses == 600
    # Put the bank back as the other tests expect it (pretest items in every field).
    for code in pretest:
        item = session.scalar(select(Item).where(Item.code == code))
        item.status = "pretest"
    session.commit()


def test_the_response_export_reads_back_with_the_engine_and_cbt_calibrate(client, app, session, program, clock,
                                                                            tmp_path, monkeypatch, database_url):
    finished_sitting(app.test_client(), session, program, clock)
    monkeypatch.setenv("CBT_DATABASE_URL", database_url)
    from delivery.cli import main

    runner = CliRunner()
    result = runner.invoke(main, ["calibration", "responses", str(tmp_path / "r.csv"), "--anchors",
                                  str(tmp_path / "a.csv"), "--as", "psychometrician"])
    assert result.exit_code == 0, result.output
    table = engine_io.read_responses(tmp_path / "r.csv")
    anchors = engine_io.read_parameters(tmp_path / "a.csv")
    assert table.responses.shape[0] >= 1 and set(anchors.item_ids) <= set(table.item_ids)
    assert all(name.endswith(".pretest") for name in set(table.item_ids) - set(anchors.item_ids))
    # Each sitting answered 100 items.
    assert ((table.responses >= 0).sum(axis=1) == 100).all()
    login_staff(client, "psychometrician", "psychometrician-demo-pass")
    download = client.get("/bank/exchange/responses.csv")
    # Every field quoted (a code with a comma stays one column); the engine reads it as the CLI's.
    assert download.status_code == 200 and download.data.decode().splitlines()[0].startswith('"examinee_id","')
    (tmp_path / "web.csv").write_bytes(download.data)
    assert engine_io.read_responses(tmp_path / "web.csv").item_ids == table.item_ids
