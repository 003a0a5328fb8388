"""The psychometrician's area: the item bank, exchange, calibration runs and statistics.

Thin views: each reads the form, calls an itembank service (or delivery.pretest
for what only sittings know), commits and redirects; templates only show what
the view prepared.
"""
from __future__ import annotations

import base64
import csv
import dataclasses
import datetime as dt
import io
import json

from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for

from delivery import pretest
from delivery.web.auth import staff_required
from delivery.web.context import db, now, program
from itembank import bank, calibration, enemies, exchange, lifecycle, plots, qti
from itembank.content import FIGURE_TYPES, ContentError, ItemContent
from itembank.models import ITEM_STATUSES
from persistence import audit
from persistence.errors import DomainError

blueprint = Blueprint("psychometrician", __name__, url_prefix="/bank")
ROLE = "psychometrician"
IMPORT_BYTES = 50 * 1024 * 1024


def _actor() -> dict:
    return {"actor": g.staff.username, "actor_role": g.staff.role}


def _date(name: str) -> dt.datetime | None:
    """A date field of the form or query as the start of that day in UTC ('' means none)."""
    text = (request.values.get(name) or "").strip()
    if not text:
        return None
    try:
        return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), dt.timezone.utc)
    except ValueError:
        abort(400, description=f"{name}: {text!r} is not a date (YYYY-MM-DD)")


# The bank ----------------------------------------------------------------------------------

@blueprint.get("/")
@staff_required(ROLE)
def bank_list():
    field = request.args.get("field") or None
    status = request.args.get("status") or None
    text = request.args.get("q", "").strip() or None
    category = request.args.get("category", type=int)
    if field is not None and field not in program().field_codes:
        abort(400, description=f"unknown field {field!r}")
    if status is not None and status not in ITEM_STATUSES:
        abort(400, description=f"unknown status {status!r}")
    entries = bank.browse(db(), field=field, category=category, status=status, text=text)
    exposure = pretest.exposure_counts(db())
    return render_template(
        "psychometrician/bank.html",
        entries=entries,
        exposure={e.item.id: exposure.get(e.item.id, {}).get("shown", 0) for e in entries},
        counts=bank.counts_by_status(db()),
        filters={"field": field, "category": category, "status": status, "q": text or ""},
        statuses=ITEM_STATUSES,
    )


def _item_page(found: bank.BankEntry, *, old: bool = False):
    item = found.item
    steps = lifecycle.allowed_steps(program(), item, g.staff.username, g.staff.role)
    sets = [s for s in enemies.enemy_sets(db()) if any(m.item_id == item.id for m in s.members)]
    exposure = pretest.exposure_counts(db()).get(item.id, {"shown": 0, "pretest": 0, "answered": 0})
    runs = [(run, entry) for run in calibration.runs(db()) for entry in run.items if entry.item_id == item.id]
    return render_template(
        "psychometrician/item.html", entry=found, old=old, steps=steps, enemy_sets=sets, exposure=exposure,
        runs=runs, editable=item.status in bank.EDITABLE and not old,
        category=program().category(item.category), major=program().major_of_category(item.category),
    )


@blueprint.get("/items/<code>")
@staff_required(ROLE)
def item(code: str):
    found = bank.entry(db(), code)
    if found is None:
        abort(404, description=f"no item {code}")
    return _item_page(found)


@blueprint.get("/items/<code>/versions/<int:number>")
@staff_required(ROLE)
def item_version(code: str, number: int):
    found = bank.version_entry(db(), code, number)
    if found is None:
        abort(404, description=f"item {code} has no version {number}")
    return _item_page(found, old=found.version.id != found.item.current_version.id)


def _content_from_form(previous: ItemContent | None) -> ItemContent:
    """Item content from the edit form; the figure is kept unless replaced or removed."""
    form = request.form
    options = tuple(form.get(f"option_{i}", "").strip() for i in range(len(program().option_labels)))
    try:
        key = int(form.get("key", ""))
    except ValueError:
        raise ContentError("choose the key") from None
    table = None
    table_text = form.get("table", "").strip()
    if table_text:
        lines = [[cell.strip() for cell in line.split("|")] for line in table_text.splitlines() if line.strip()]
        table = {"header": lines[0], "rows": lines[1:]}
    figure = previous.figure if previous else None
    upload = request.files.get("figure")
    if form.get("remove_figure") == "yes":
        figure = None
    elif upload and upload.filename:
        media_type = upload.mimetype
        if media_type not in FIGURE_TYPES:
            raise ContentError(f"a figure must be one of {', '.join(FIGURE_TYPES)}, not {media_type}")
        figure = {"media_type": media_type, "data": base64.b64encode(upload.read()).decode(),
                  "alt": form.get("figure_alt", "").strip()}
    elif figure is not None and form.get("figure_alt", "").strip():
        figure = {**figure, "alt": form.get("figure_alt", "").strip()}
    edited = {"stem": form.get("stem", "").strip(), "options": options, "key": key,
              "rationale": form.get("rationale", "").strip(), "table": table, "figure": figure}
    # What the form does not show (a stimulus, shuffle flags, QTI identifiers) stays as it was.
    return dataclasses.replace(previous, **edited) if previous else ItemContent(**edited)


def _form_values(content: ItemContent | None) -> dict:
    """What the edit form shows: the stored content, or what the user sent when it was refused."""
    if request.method == "POST":
        values = dict(request.form)
        values["options"] = [request.form.get(f"option_{i}", "") for i in range(len(program().option_labels))]
        values["key"] = request.form.get("key", "")
        return values
    if content is None:
        return {"options": [""] * len(program().option_labels), "key": ""}
    table = ""
    if content.table:
        table = "\n".join(" | ".join(map(str, row)) for row in [content.table["header"], *content.table["rows"]])
    return {"stem": content.stem, "options": list(content.options), "key": str(content.key),
            "rationale": content.rationale, "table": table,
            "figure_alt": content.figure["alt"] if content.figure else ""}


@blueprint.route("/items/new", methods=["GET", "POST"])
@staff_required(ROLE)
def new_item():
    error = None
    if request.method == "POST":
        try:
            category = int(request.form.get("category", ""))
        except ValueError:
            category = 0
        try:
            content = _content_from_form(None)
            exchange.create_draft(db(), program(), code=request.form.get("code", ""), category=category,
                                  content=content, now=now(), note="created", **_actor())
            db().commit()
            flash(f"Draft {request.form.get('code', '').strip()} created.")
            return redirect(url_for("psychometrician.item", code=request.form.get("code", "").strip()))
        except (ContentError, DomainError) as problem:
            db().rollback()
            error = str(problem)
    return render_template("psychometrician/edit.html", entry=None, values=_form_values(None), error=error,
                           code=request.form.get("code", ""), category=request.form.get("category", "")), (
        422 if error else 200)


@blueprint.route("/items/<code>/edit", methods=["GET", "POST"])
@staff_required(ROLE)
def edit_item(code: str):
    found = bank.entry(db(), code)
    if found is None:
        abort(404, description=f"no item {code}")
    error = None
    if request.method == "POST":
        try:
            content = _content_from_form(found.content)
            version = bank.edit_content(db(), program(), code, content, now=now(),
                                        reason=request.form.get("reason", "").strip(), **_actor())
            db().commit()
            flash(f"Version {version.version} of {code} saved.")
            return redirect(url_for("psychometrician.item", code=code))
        except (ContentError, DomainError) as problem:
            db().rollback()
            error = str(problem)
    return render_template("psychometrician/edit.html", entry=found, values=_form_values(found.content),
                           error=error, code=code, category=found.item.category), (422 if error else 200)


@blueprint.post("/items/<code>/status")
@staff_required(ROLE)
def move_item(code: str):
    target = request.form.get("to", "")
    lifecycle.move(db(), program(), code, target, now=now(), reason=request.form.get("reason", "").strip(),
                   **_actor())
    db().commit()
    flash(f"{code} is now {target}.")
    return redirect(url_for("psychometrician.item", code=code))


# Enemy sets ----------------------------------------------------------------------------------

@blueprint.get("/enemies")
@staff_required(ROLE)
def enemy_list():
    return render_template("psychometrician/enemies.html", sets=enemies.enemy_sets(db()))


@blueprint.post("/enemies")
@staff_required(ROLE)
def save_enemies():
    codes = request.form.get("items", "").replace(",", " ").split()
    enemies.save_enemy_set(db(), request.form.get("name", ""), codes, now=now(),
                           note=request.form.get("note", "").strip(), **_actor())
    db().commit()
    flash(f"Enemy set {request.form.get('name', '').strip()} saved.")
    return redirect(url_for("psychometrician.enemy_list"))


@blueprint.post("/enemies/<name>/delete")
@staff_required(ROLE)
def delete_enemies(name: str):
    enemies.delete_enemy_set(db(), name, now=now(), **_actor())
    db().commit()
    flash(f"Enemy set {name} deleted.")
    return redirect(url_for("psychometrician.enemy_list"))


# Exchange ------------------------------------------------------------------------------------

@blueprint.get("/exchange")
@staff_required(ROLE)
def exchange_page():
    return render_template("psychometrician/exchange.html", versions=list(qti.VERSIONS), modes=exchange.IMPORT_MODES)


def _upload() -> tuple[bytes, str]:
    upload = request.files.get("package")
    if upload is None or not upload.filename:
        abort(400, description="choose a file to import")
    return upload.read(), upload.filename


@blueprint.post("/exchange/import/qti")
@staff_required(ROLE)
def import_qti():
    data, name = _upload()
    category = request.form.get("category", type=int)
    report = qti.import_package(db(), program(), data, mode=request.form.get("mode", "all"), category=category,
                                name=name, now=now(), **_actor())
    db().commit() if report.landed else db().rollback()
    return render_template("psychometrician/import_report.html", report=report, name=name), (
        200 if report.landed or not report.rejected else 422)


@blueprint.post("/exchange/import/native")
@staff_required(ROLE)
def import_native():
    data, name = _upload()
    report = exchange.import_bank(db(), program(), data, mode=request.form.get("mode", "all"), now=now(),
                                  **_actor())
    db().commit() if report.landed else db().rollback()
    return render_template("psychometrician/import_report.html", report=report, name=name), (
        200 if report.landed or not report.rejected else 422)


def _download(body: bytes | str, filename: str, mimetype: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.get("/exchange/export.json")
@staff_required(ROLE)
def export_native():
    document = exchange.export_bank(db(), program(), now=now(), **_actor())
    db().commit()
    return _download(json.dumps(document, ensure_ascii=False, indent=1), f"item-bank-{now():%Y%m%d}.json",
                     "application/json")


@blueprint.get("/exchange/export-qti")
@staff_required(ROLE)
def export_qti():
    version = request.args.get("version", "2.1")
    status = request.args.get("status") or None
    package = qti.export_package(db(), program(), version=version, status=status, now=now(), **_actor())
    db().commit()
    return _download(package, f"item-bank-qti{version.replace('.', '')}-{now():%Y%m%d}.zip", "application/zip")


@blueprint.get("/exchange/responses.csv")
@staff_required(ROLE)
def export_responses():
    """Responses of finished sittings in the RESPONSES.csv format of `cbt calibrate`."""
    data = pretest.gather_responses(db(), finished_from=_date("from"), finished_to=_date("to"))
    names, scored, _versions = calibration.response_csv_columns(db(), data)
    buffer = io.StringIO()
    buffer.write(",".join(["examinee_id", *names]) + "\n")
    symbols = ["", "0", "1"]
    for sitting_id, row in zip(data.sitting_ids, scored):
        buffer.write(f"sitting-{sitting_id}," + ",".join(symbols[v + 1] for v in row) + "\n")
    audit.record(db(), action="bank.export", subject="responses", details={"sittings": data.n_sittings},
                 at=now(), **_actor())
    db().commit()
    return _download(buffer.getvalue(), f"responses-{now():%Y%m%d}.csv", "text/csv")


@blueprint.get("/exchange/anchors.csv")
@staff_required(ROLE)
def export_anchors():
    """The parameters of the versions answered in scored slots, as PARAMS.csv for `cbt calibrate --fixed`."""
    data = pretest.gather_responses(db(), finished_from=_date("from"), finished_to=_date("to"))
    names, _scored, versions = calibration.response_csv_columns(db(), data)
    rows = [(name, v) for name, v, pretest_slot in zip(names, versions, data.pretest_slot)
            if not pretest_slot and v.has_parameters]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["item_id", "a", "b", "c"])
    for name, v in rows:
        writer.writerow([name, f"{v.a:.6f}", f"{v.b:.6f}", f"{v.c:.6f}"])
    # The bank's parameters leave the system: recorded like every other export.
    audit.record(db(), action="bank.export", subject="anchors", details={"items": len(rows)}, at=now(), **_actor())
    db().commit()
    return _download(buffer.getvalue(), f"anchors-{now():%Y%m%d}.csv", "text/csv")


# Calibration ---------------------------------------------------------------------------------

@blueprint.get("/calibration")
@staff_required(ROLE)
def calibration_runs():
    settings = program().calibration
    return render_template("psychometrician/calibration_runs.html", runs=calibration.runs(db()),
                           pretest_items=bank.counts_by_status(db())["pretest"], settings=settings,
                           drift_from=(now() - dt.timedelta(days=settings.drift_window_days)).date().isoformat())


@blueprint.post("/calibration/runs")
@staff_required(ROLE)
def start_run():
    kind = request.form.get("kind", "pretest")
    data = pretest.gather_responses(db(), finished_from=_date("from"), finished_to=_date("to"))
    if kind == "pretest":
        run = calibration.run_pretest_calibration(db(), program(), data, now=now(), **_actor())
    elif kind == "drift":
        run = calibration.run_drift_watch(db(), program(), data, now=now(), **_actor())
    else:
        abort(400, description="kind must be pretest or drift")
    db().commit()
    flash(f"Calibration run {run.id} finished: {len(run.items)} items from {run.n_sittings} sittings.")
    return redirect(url_for("psychometrician.calibration_run", run_id=run.id))


@blueprint.get("/calibration/<int:run_id>")
@staff_required(ROLE)
def calibration_run(run_id: int):
    run = calibration.get_run(db(), run_id)
    entries = sorted(run.items, key=lambda e: e.item.code)
    return render_template("psychometrician/calibration_run.html", run=run, entries=entries,
                           flagged=sum(e.flagged for e in entries))


@blueprint.get("/calibration/<int:run_id>/drift.svg")
@staff_required(ROLE)
def drift_plot(run_id: int):
    run = calibration.get_run(db(), run_id)
    shifts = [(e.item.code, e.statistics.get("rmsd") or 0.0, e.flagged) for e in sorted(run.items,
                                                                                       key=lambda e: e.item.code)]
    return Response(plots.drift_svg(f"Drift run {run.id}", shifts, program().calibration.drift_rmsd),
                    mimetype="image/svg+xml")


def _run_item(run_id: int, code: str):
    run = calibration.get_run(db(), run_id)
    entry = next((e for e in run.items if e.item.code == code), None)
    if entry is None:
        abort(404, description=f"item {code} is not in calibration run {run_id}")
    return run, entry


@blueprint.get("/calibration/<int:run_id>/items/<code>")
@staff_required(ROLE)
def review_item(run_id: int, code: str):
    run, entry = _run_item(run_id, code)
    found = bank.entry(db(), code)
    stats = entry.statistics or {}
    labels = program().option_labels
    distractors = []
    if stats.get("distractors"):
        d = stats["distractors"]
        distractors = [{"label": labels[i], "text": found.content.options[i], "key": i == d["key"],
                        "proportion": d["proportion"][i], "mean_total": d["mean_total"][i],
                        "point_biserial": d["point_biserial"][i]} for i in range(len(labels))]
    dif_rows = [{"grouping": name, "focal": focal, **result}
                for name, by in (stats.get("dif") or {}).items() for focal, result in by.items()]
    return render_template("psychometrician/review_item.html", run=run, entry=entry, found=found, stats=stats,
                           distractors=distractors, dif_rows=dif_rows,
                           can_decide=entry.decision == "pending" and found.item.status == "pretest")


@blueprint.get("/calibration/<int:run_id>/items/<code>/icc.svg")
@staff_required(ROLE)
def icc_plot(run_id: int, code: str):
    run, entry = _run_item(run_id, code)
    label = "bank parameters" if run.kind == "drift" else "parameters before the run"
    svg = plots.icc_svg(f"{code}, run {run.id}", (entry.a, entry.b, entry.c), (entry.statistics or {}).get("icc"),
                        (entry.previous_a, entry.previous_b, entry.previous_c), label)
    return Response(svg, mimetype="image/svg+xml")


@blueprint.post("/calibration/<int:run_id>/items/<code>/decision")
@staff_required(ROLE)
def decide(run_id: int, code: str):
    decision = request.form.get("decision")
    note = request.form.get("note", "").strip()
    if decision == "approve":
        calibration.approve(db(), program(), run_id, code, now=now(), note=note, **_actor())
        message = f"{code} approved: it is operational with the run's parameters."
    elif decision == "reject":
        calibration.reject(db(), program(), run_id, code, now=now(), note=note, **_actor())
        message = f"{code} rejected: it is back in review."
    elif decision == "acknowledge":
        calibration.acknowledge(db(), run_id, code, now=now(), note=note, **_actor())
        message = f"Drift of {code} acknowledged."
    else:
        abort(400, description="decision must be approve, reject or acknowledge")
    db().commit()
    flash(message)
    return redirect(url_for("psychometrician.calibration_run", run_id=run_id))


# Statistics ----------------------------------------------------------------------------------

@blueprint.get("/statistics")
@staff_required(ROLE)
def statistics():
    since = _date("since")
    exposure = pretest.exposure_counts(db(), since=since)
    total = pretest.sittings_count(db(), since=since)
    latest: dict[int, object] = {}
    for run in reversed(calibration.runs(db())):
        for entry in run.items:
            latest[entry.item_id] = entry
    rows = []
    for e in bank.browse(db(), status=request.args.get("status") or None):
        shown = exposure.get(e.item.id, {}).get("shown", 0)
        stats = latest.get(e.item.id)
        rows.append({"entry": e, "shown": shown, "rate": shown / total if total else None,
                     "p_value": stats.statistics.get("p_value") if stats is not None else None,
                     "point_biserial": stats.statistics.get("point_biserial") if stats is not None else None,
                     "run_id": stats.run_id if stats is not None else None})
    rows.sort(key=lambda r: -(r["shown"]))
    return render_template("psychometrician/statistics.html", rows=rows, sittings=total,
                           since=request.args.get("since", ""), status=request.args.get("status", ""),
                           statuses=ITEM_STATUSES)


# Forms ---------------------------------------------------------------------------------------

def _assembly_refusal(template: str, status: int = 422, **context):
    """An assembly or study that cannot be done as asked: the page again, with the reason."""
    db().rollback()
    return render_template(template, **context), status


def _forms_page(error: str | None = None, values: dict | None = None):
    from itembank import forms as form_service

    settings = program().assembly
    return render_template("psychometrician/forms.html", forms=form_service.forms(db(), program()),
                           settings=settings, error=error, values=values or {"count": 5, "note": ""})


@blueprint.get("/forms")
@staff_required(ROLE)
def forms_list():
    return _forms_page()


@blueprint.post("/forms")
@staff_required(ROLE)
def assemble_forms():
    from itembank import forms as form_service
    from itembank.assembly import AssemblyError

    values = {"count": request.form.get("count", ""), "note": request.form.get("note", "").strip()}
    try:
        count = int(values["count"])
        made = form_service.assemble_batch(db(), program(), count, note=values["note"], now=now(), **_actor())
    except (ValueError, DomainError) as problem:  # a count that is not a number, or refused
        db().rollback()
        message = str(problem) if isinstance(problem, DomainError) else "enter how many forms to assemble"
        return _forms_page(message, values), 422
    except AssemblyError as problem:
        db().rollback()
        return _forms_page(f"The forms cannot be assembled: {problem}", values), 422
    db().commit()
    flash(f"{len(made)} draft forms assembled: {', '.join(f.code for f in made)}. Review each before publishing.")
    return redirect(url_for("psychometrician.forms_list"))


@blueprint.get("/forms/<code>")
@staff_required(ROLE)
def form_review(code: str):
    from itembank import forms as form_service

    form = form_service.form_by_code(db(), code)
    return render_template("psychometrician/form.html", review=form_service.review(db(), program(), form),
                           form=form)


@blueprint.post("/forms/<code>/publish")
@staff_required(ROLE)
def publish_form(code: str):
    from itembank import forms as form_service

    form_service.publish(db(), program(), code, reason=request.form.get("reason", "").strip(), now=now(), **_actor())
    db().commit()
    flash(f"{code} is published" + ("." if program().assembly.method == "forms" else
                                    " (the program assembles on the fly today: it is drawn once method is \"forms\")."))
    return redirect(url_for("psychometrician.form_review", code=code))


@blueprint.post("/forms/<code>/retire")
@staff_required(ROLE)
def retire_form(code: str):
    from itembank import forms as form_service

    form_service.retire(db(), code, reason=request.form.get("reason", ""), now=now(), **_actor())
    db().commit()
    flash(f"{code} is retired.")
    return redirect(url_for("psychometrician.form_review", code=code))


# Design studies ------------------------------------------------------------------------------

# A study in the web request is kept small; larger ones run with `cbt simulate`.
WEB_MAX_CANDIDATES = 2000


def _studies_page(error: str | None = None, values: dict | None = None):
    from delivery import design_studies

    return render_template("psychometrician/studies.html", studies=design_studies.studies(db()), error=error,
                           values=values or {"candidates": 500, "pool": "bank", "forms": 10, "seed": 1,
                                             "designs": ["loft", "forms"]},
                           limit=WEB_MAX_CANDIDATES)


@blueprint.get("/studies")
@staff_required(ROLE)
def studies_list():
    return _studies_page()


@blueprint.post("/studies")
@staff_required(ROLE)
def run_study():
    from delivery import design_studies

    form = request.form
    values = {"candidates": form.get("candidates", ""), "pool": form.get("pool", "bank").strip(),
              "forms": form.get("forms", ""), "seed": form.get("seed", ""), "designs": form.getlist("design")}
    try:
        candidates, n_forms, seed = int(values["candidates"]), int(values["forms"]), int(values["seed"] or 1)
    except ValueError:
        return _studies_page("Candidates, forms and seed must be whole numbers.", values), 422
    if candidates > WEB_MAX_CANDIDATES:
        return _studies_page(f"At most {WEB_MAX_CANDIDATES:,} candidates here; run larger studies with "
                             "`cbt simulate`.", values), 422
    try:
        study = design_studies.run_study(db(), program(), candidates=candidates, designs=tuple(values["designs"]),
                                         pool_source=values["pool"], n_forms=n_forms, seed=seed, now=now(),
                                         **_actor())
    except design_studies.StudyError as problem:
        db().rollback()
        return _studies_page(str(problem), values), 422
    db().commit()
    flash(f"Design study {study.id} finished.")
    return redirect(url_for("psychometrician.study", study_id=study.id))


@blueprint.get("/studies/<int:study_id>")
@staff_required(ROLE)
def study(study_id: int):
    from delivery import design_studies

    found = _study_or_404(design_studies, study_id)
    return render_template("psychometrician/study.html", study=found, results=found.results,
                           scopes=["total", *program().field_codes])


def _study_or_404(design_studies, study_id: int):
    try:
        return design_studies.get_study(db(), study_id)
    except design_studies.StudyError as problem:
        abort(404, description=str(problem))


@blueprint.get("/studies/<int:study_id>/<plot>.svg")
@staff_required(ROLE)
def study_plot(study_id: int, plot: str):
    from delivery import design_studies
    from itembank import design_plots

    results = _study_or_404(design_studies, study_id).results
    rule = program().pass_rule
    if plot == "exposure":
        svg = design_plots.exposure_svg(results)
    elif plot == "information":
        svg = design_plots.information_svg(results)
    elif plot.startswith("csem-") and plot[5:] in ("total", *program().field_codes):
        scope = plot[5:]
        svg = design_plots.csem_svg(results, scope, float(rule.total_minimum if scope == "total" else rule.field_minimum))
    else:
        abort(404, description=f"no plot {plot}")
    return Response(svg, mimetype="image/svg+xml")


from delivery.web import scores as _scores_pages  # noqa: E402,F401  (views on this blueprint)
