"""Calibration runs: starting them, their review screens and plots, approval and rejection."""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _

from delivery import pretest
from delivery.web.context import db, now, program
from delivery.web.errors import http_status
from delivery.web.i18n import current_language
from delivery.web.psychometrician.common import actor
from delivery.web.psychometrician.inputs import DecisionForm, RunForm
from itembank import bank, calibration, plots
from itembank.content import unpack
from itembank.models import ItemVersion
from persistence.errors import DomainError

blueprint = Blueprint("calibration", __name__, url_prefix="/calibration")


def _runs_page(form: RunForm | None = None, status: int = 200):
    settings = program().calibration
    return render_template("psychometrician/calibration_runs.html", runs=calibration.runs(db()),
                           pretest_items=bank.counts_by_status(db())["pretest"], settings=settings, form=form,
                           drift_from=(now() - dt.timedelta(days=settings.drift_window_days)).date().isoformat()
                           ), status


@blueprint.get("")
def calibration_runs():
    return _runs_page()


@blueprint.post("/runs")
def start_run():
    form = RunForm()
    if not form.validate():
        return _runs_page(form, 422)
    try:
        run = pretest.run_calibration(db(), program(), form.kind.data, finished_from=form.start.moment,
                                      finished_to=form.end.moment, now=now(), **actor())
    except DomainError as error:
        form.refuse(error)
        return _runs_page(form, http_status(error))
    flash(_("Calibration run %(run)s finished: %(items)s items from %(sittings)s sittings.", run=run.id,
            items=len(run.items), sittings=run.n_sittings))
    return redirect(url_for(".calibration_run", run_id=run.id))


@blueprint.get("/<int:run_id>")
def calibration_run(run_id: int):
    run = calibration.get_run(db(), run_id)
    entries = sorted(run.items, key=lambda e: e.item.code)
    return render_template("psychometrician/calibration_run.html", run=run, entries=entries,
                           flagged=sum(e.flagged for e in entries))


@blueprint.get("/<int:run_id>/drift.svg")
def drift_plot(run_id: int):
    run = calibration.get_run(db(), run_id)
    shifts = [(e.item.code, e.statistics.get("rmsd") or 0.0, e.flagged)
              for e in sorted(run.items, key=lambda e: e.item.code)]
    return Response(plots.drift_svg(f"Drift run {run.id}", shifts, program().calibration.drift_rmsd),
                    mimetype="image/svg+xml")


def _run_item(run_id: int, code: str):
    run = calibration.get_run(db(), run_id)
    entry = next((e for e in run.items if e.item.code == code), None)
    if entry is None:
        abort(404, description=_("Item %(code)s is not in calibration run %(run)s.", code=code, run=run_id))
    return run, entry


def _review_page(run_id: int, code: str, form: DecisionForm | None = None, status: int = 200):
    run, entry = _run_item(run_id, code)
    found = bank.entry(db(), code)
    stats = entry.statistics or {}
    language = current_language()
    labels = program().labels_for(language)
    distractors = []
    if stats.get("distractors"):
        d = stats["distractors"]
        # The key and options of the version the run calibrated (encrypted at rest; the run's
        # statistics, kept in clear, do not hold the key).
        calibrated = unpack(db().get(ItemVersion, entry.item_version_id).content).shown_in(
            language, program().default_language)
        distractors = [{"label": labels[i], "text": calibrated.options[i], "key": i == calibrated.key,
                        "proportion": d["proportion"][i], "mean_total": d["mean_total"][i],
                        "point_biserial": d["point_biserial"][i]} for i in range(len(labels))]
    dif_rows = [{"grouping": name, "focal": focal, **result}
                for name, by in (stats.get("dif") or {}).items() for focal, result in by.items()]
    return render_template("psychometrician/review_item.html", run=run, entry=entry, found=found, stats=stats,
                           distractors=distractors, dif_rows=dif_rows, form=form or DecisionForm(formdata=None),
                           can_decide=entry.decision == "pending" and found.item.status == "pretest"), status


@blueprint.get("/<int:run_id>/items/<code>")
def review_item(run_id: int, code: str):
    return _review_page(run_id, code)


@blueprint.get("/<int:run_id>/items/<code>/icc.svg")
def icc_plot(run_id: int, code: str):
    run, entry = _run_item(run_id, code)
    label = "bank parameters" if run.kind == "drift" else "parameters before the run"
    svg = plots.icc_svg(f"{code}, run {run.id}", (entry.a, entry.b, entry.c), (entry.statistics or {}).get("icc"),
                        (entry.previous_a, entry.previous_b, entry.previous_c), label)
    return Response(svg, mimetype="image/svg+xml")


@blueprint.post("/<int:run_id>/items/<code>/decision")
def decide(run_id: int, code: str):
    form = DecisionForm()
    if not form.validate():
        return _review_page(run_id, code, form, 422)
    note, decision = (form.note.data or "").strip(), form.decision.data
    try:
        if decision == "approve":
            calibration.approve(db(), program(), run_id, code, now=now(), note=note, **actor())
            message = _("%(code)s approved: it is operational with the run's parameters.", code=code)
        elif decision == "reject":
            calibration.reject(db(), program(), run_id, code, now=now(), note=note, **actor())
            message = _("%(code)s rejected: it is back in review.", code=code)
        else:
            calibration.acknowledge(db(), run_id, code, now=now(), note=note, **actor())
            message = _("Drift of %(code)s acknowledged.", code=code)
    except DomainError as error:
        form.refuse(error)
        return _review_page(run_id, code, form, http_status(error))
    flash(message)
    return redirect(url_for(".calibration_run", run_id=run_id))
