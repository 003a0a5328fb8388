"""Assembly through the real delivery code: LOFT at login, shuffled options, exposure counts,
pre-assembled forms (assembled, reviewed, published, drawn, retired), design studies, the CLI and the screens."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sqlalchemy import select

from delivery import sittings
from delivery.models import Sitting
from engine.assembly import form_violations
from itembank import forms as form_service
from itembank.assembly import AssemblyError, blueprint_for, draw_form, load_pool
from itembank.assembly_models import Form, ItemExposure
from itembank.content import unpack
from itembank.models import Item, ItemVersion
from tests.cli_helpers import own_cbt
from tests.helpers import api, booked_candidate, csrf_token, login_candidate, login_staff, start_sitting

PSY = {"actor": "psychometrician", "actor_role": "psychometrician"}


def test_login_assembles_a_blueprint_form_with_options_shuffled_and_recorded(client, session, program, clock):
    booked = booked_candidate(session, program, clock.now)
    before = dict(session.execute(select(ItemExposure.item_id, ItemExposure.scored)).all())
    login_candidate(client, booked)
    state = start_sitting(client)
    session.expire_all()
    sitting = session.scalar(select(Sitting).where(Sitting.booking_id == booked.booking_id))
    assert sitting.form_id is None  # the sample program assembles on the fly
    versions = {v.id: v for v in session.scalars(select(ItemVersion))}
    items = {i.id: i for i in session.scalars(select(Item))}
    # The blueprint: fields in order, their counts, scored items operational and pretest items pretest only.
    assert [e.field for e in sitting.items] == [f.code for f in program.fields for _ in range(f.items)]
    for field in program.fields:
        entries = [e for e in sitting.items if e.field == field.code]
        assert sum(not e.is_pretest for e in entries) == field.scored
        assert sum(e.is_pretest for e in entries) == field.pretest
    for entry in sitting.items:
        status = items[versions[entry.item_version_id].item_id].status
        assert status == ("pretest" if entry.is_pretest else "operational")
    scored_ids = [versions[e.item_version_id].item_id for e in sitting.items if not e.is_pretest]
    assert len(set(scored_ids)) == 92
    # The form meets the blueprint, the enemy sets and the information targets, as the engine checks them.
    bank = load_pool(session, program)
    form = np.array(sorted(bank.index_of()[i] for i in scored_ids))
    assert form_violations(bank.pool, blueprint_for(program), form, bank.targets, program.assembly.tolerance) == []

    # Options: shown in the recorded order, each with its content index; answers keep content indices.
    shuffled = 0
    for shown, entry in zip(state["items"], sitting.items):
        content = unpack(versions[entry.item_version_id].content)
        order = [int(i) for i in entry.option_order.split(",")]
        assert sorted(order) == list(range(len(content.options)))
        assert [o["id"] for o in shown["options"]] == order
        assert [o["text"] for o in shown["options"]] == [content.options[i] for i in order]
        shuffled += order != sorted(order)
    assert shuffled > 50
    # Answer every item with its key, clicked wherever it is shown: the score is full marks.
    for shown, entry in zip(state["items"], sitting.items):
        key = unpack(versions[entry.item_version_id].content).key
        assert api(client, "PUT", f"/api/sitting/answers/{shown['position']}", {"option": key}).status_code == 200
    api(client, "POST", "/api/sitting/finish", {})
    session.expire_all()
    result = session.scalar(select(Sitting).where(Sitting.id == sitting.id))
    assert all(e.chosen_option == unpack(versions[e.item_version_id].content).key for e in result.items)
    client.get("/result")
    from scoring.results import result_for_sitting
    assert result_for_sitting(session, sitting.id).total_score >= 900

    # Exposure: one more sitting for each scored item shown, in the database for every process.
    after = dict(session.execute(select(ItemExposure.item_id, ItemExposure.scored)).all())
    assert all(after[i] == before.get(i, 0) + 1 for i in scored_ids)


def test_forms_are_assembled_reviewed_published_drawn_and_retired(session, program, clock):
    forms_program = dataclasses.replace(program, assembly=dataclasses.replace(program.assembly, method="forms"))
    booked = booked_candidate(session, forms_program, clock.now)
    # Start clean: other tests' published forms and drafts are set aside.
    for form in form_service.forms(session, forms_program):
        if form.status != "retired":
            form_service.retire(session, form.code, reason="test starts clean", now=clock.now, **PSY)
    session.commit()
    rng = np.random.default_rng(1)
    with pytest.raises(AssemblyError, match="no published form"):
        draw_form(session, forms_program, rng)
    session.rollback()

    made = form_service.assemble_batch(session, forms_program, 3, seed=4, now=clock.now, **PSY)
    session.commit()
    assert [f.status for f in made] == ["draft"] * 3
    for form in made:
        review = form_service.review(session, forms_program, form)
        assert review.problems == [] and all(line.met for line in review.fields + review.categories)
        assert all(abs(line.deviation) <= program.assembly.tolerance for line in review.information)
        assert all(shared <= review.max_overlap for _, shared in review.overlaps)
    for form in made:
        form_service.publish(session, forms_program, form.code, reason="reviewed", now=clock.now, **PSY)
    session.commit()

    sitting, _token = sittings.candidate_login(session, forms_program, booked.admission_code, booked.date_of_birth,
                                               clock.now, rng, seat_token=booked.seat_token)
    session.commit()
    drawn = session.get(Form, sitting.form_id)
    assert drawn.code in {f.code for f in made}
    assert {e.item_version_id for e in drawn.items} == {e.item_version_id for e in sitting.items if not e.is_pretest}

    # A retired form is not drawn again: the next login in any process sees it at once.
    for form in made[1:]:
        form_service.retire(session, form.code, reason="compromised", now=clock.now, **PSY)
    session.commit()
    for _ in range(5):
        assert draw_form(session, forms_program, rng).form_id == made[0].id
    session.rollback()
    # An item retired from the bank makes its forms unusable, with the reason.
    from itembank import lifecycle

    victim = session.get(Item, made[0].items[0].item_id)
    lifecycle.move(session, program, victim.code, "retired", reason="leaked", now=clock.now, **PSY)
    with pytest.raises(AssemblyError, match="no longer operational"):
        draw_form(session, forms_program, rng)
    session.rollback()
    # A lifecycle step commits (it is a service's unit of work): bring the item back for the other tests.
    lifecycle.move(session, program, victim.code, "operational", reason="test done", now=clock.now, **PSY)
    form_service.retire(session, made[0].code, reason="test done", now=clock.now, **PSY)
    session.commit()


def test_the_forms_and_study_screens(client, session, program):
    login_staff(client, "psychometrician", "psychometrician-demo-pass")
    token = csrf_token(client, "/bank/forms")
    refused = client.post("/bank/forms", data={"csrf_token": token, "count": "1"})
    assert refused.status_code == 422 and "at least 3 forms must be in use" in refused.get_data(as_text=True)
    made = client.post("/bank/forms", data={"csrf_token": token, "count": "3", "note": "web"})
    assert made.status_code == 302
    code = session.scalars(select(Form.code).where(Form.note == "web")).first()
    page = client.get(f"/bank/forms/{code}").get_data(as_text=True)
    assert "meets the blueprint" in page and "Information at the cut points" in page
    assert client.post(f"/bank/forms/{code}/publish", data={"csrf_token": token}).status_code == 302
    assert client.post(f"/bank/forms/{code}/retire", data={"csrf_token": token, "reason": ""}).status_code == 422
    assert client.post(f"/bank/forms/{code}/retire", data={"csrf_token": token, "reason": "done"}).status_code == 302
    assert client.get("/bank/forms/NOPE").status_code == 404

    bad = client.post("/bank/studies", data={"csrf_token": token, "candidates": "60", "pool": "elsewhere",
                                            "forms": "5", "design": ["loft"]})
    assert bad.status_code == 422 and "Pool elsewhere: use bank or synthetic:N." in bad.get_data(as_text=True)
    ran = client.post("/bank/studies", data={"csrf_token": token, "candidates": "60", "pool": "bank", "forms": "5",
                                            "seed": "2", "design": ["loft", "forms"]})
    assert ran.status_code == 302
    page = client.get(ran.headers["Location"]).get_data(as_text=True)
    assert "Classification accuracy" in page and "Exposure max" in page
    svg = client.get(ran.headers["Location"] + "/exposure.svg")
    assert svg.status_code == 200 and svg.data.startswith(b"<?xml")
    assert client.get(ran.headers["Location"] + "/csem-strategy.svg").status_code == 200


def test_a_design_study_on_the_sample_program_keeps_precision_and_exposure(session, program):
    from delivery.design_studies import run_study

    study = run_study(session, program, candidates=300, pool_source="bank", n_forms=5, seed=7, now=_now(), **PSY)
    session.rollback()
    for design, report in study.results.items():
        assert report["exposure"]["max"] <= program.assembly.max_exposure, design
        assert all(i["within_tolerance"] == 1.0 for i in report["information"].values()), design
        assert report["classification"]["accuracy"] > 0.85, design
        assert 0 < report["overlap"]["mean"] < 1


def _now():
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc)


def test_forms_and_simulate_from_the_command_line(tmp_path, monkeypatch):
    with own_cbt(tmp_path, monkeypatch, ["db", "upgrade"], ["sample", "load"]) as run:
        assert "at least 3 forms must be in use" in run("forms", "assemble", "--count", "2", code=1)
        out = run("forms", "assemble", "--count", "3", "--seed", "5")
        codes = [line.split()[0] for line in out.splitlines()]
        assert len(codes) == 3 and "draft" in out
        shown = run("forms", "show", codes[0])
        assert "no problems: it can be published" in shown and "information at total 600" in shown
        assert f"{codes[0]} published" in run("forms", "publish", codes[0], "--reason", "reviewed")
        assert "only a draft can be published" in run("forms", "publish", codes[0], code=1)
        assert "published" in run("forms", "list", "--status", "published")
        assert f"{codes[1]} retired" in run("forms", "retire", codes[1], "--reason", "not needed")
        report = run("simulate", "--candidates", "60", "--forms", "5", "--plots", str(tmp_path / "plots"))
        assert "[loft]" in report and "[forms]" in report and "classification accuracy" in report
        assert (tmp_path / "plots" / "exposure.svg").exists() and (tmp_path / "plots" / "report.json").exists()
        assert "between 50 and" in run("simulate", "--candidates", "10", code=1)
