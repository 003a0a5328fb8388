"""The demo's data for the psychometrician: draft and reviewed items to edit, and a finished stretch of
simulated sittings from which a pretest calibration run is made and reviewed in the web area."""
from __future__ import annotations

from sqlalchemy import func, select

from delivery.demo_stretch import ensure_demo_stretch, stretch_sittings
from delivery.models import Sitting, SittingStatus
from itembank.models import CalibrationRun, Item
from tests.helpers import csrf_token, login_staff


def test_the_demo_gives_items_to_edit_and_sittings_to_calibrate(app, client, engine, session, program, clock):
    made = ensure_demo_stretch(session, engine, program, clock.now)
    assert made.sittings == stretch_sittings(program) >= program.calibration.min_sittings
    statuses = dict(session.execute(select(Item.code, Item.status).where(Item.code.in_(made.reviewed + made.drafts))).all())
    assert made.reviewed and made.drafts and all(statuses[c] == "reviewed" for c in made.reviewed)
    assert all(statuses[c] == "draft" for c in made.drafts)
    finished = session.scalar(select(func.count(Sitting.id)).where(Sitting.status == SittingStatus.FINISHED))
    assert finished == made.sittings
    # Once per database: a second demo adds nothing.
    again = ensure_demo_stretch(session, engine, program, clock.now)
    assert again.sittings == 0 and session.scalar(select(func.count(Sitting.id))) == finished

    login_staff(client, "psychometrician", "psychometrician-demo-pass")
    draft = client.get(f"/bank/items/{made.drafts[0]}").get_data(as_text=True)
    assert f"/bank/items/{made.drafts[0]}/edit" in draft
    token = csrf_token(client, "/bank/calibration")
    started = client.post("/bank/calibration/runs", data={"csrf_token": token, "kind": "pretest"})
    assert started.status_code == 302
    run = session.scalar(select(CalibrationRun).order_by(CalibrationRun.id.desc()))
    assert run.kind == "pretest" and run.n_sittings == made.sittings and run.items
    page = client.get(f"/bank/calibration/{run.id}").get_data(as_text=True)
    assert f"Calibration run {run.id} (pretest)" in page
    code = run.items[0].item.code
    review = client.get(f"/bank/calibration/{run.id}/items/{code}")
    assert review.status_code == 200 and "Item characteristic curve" in review.get_data(as_text=True)
    # The operation statistics now have sittings to chart.
    assert client.get("/bank/operations/months.svg").status_code == 200
    assert session.scalar(select(func.count()).select_from(select(Item.id).where(Item.status == "pretest")
                                                           .subquery())) > 0
