"""Design studies: simulated candidates through the program's assembly designs, with their plots."""
from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _

from delivery import design_studies
from delivery.design_studies import MIN_CANDIDATES, WEB_MAX_CANDIDATES
from delivery.web.context import db, now, program
from delivery.web.errors import http_status
from delivery.web.psychometrician.common import actor
from delivery.web.psychometrician.inputs import StudyForm
from itembank import design_plots
from persistence.errors import DomainError

blueprint = Blueprint("studies", __name__, url_prefix="/studies")



def _studies_page(form: StudyForm | None = None, status: int = 200):
    return render_template("psychometrician/studies.html", studies=design_studies.studies(db()),
                           form=form or StudyForm(WEB_MAX_CANDIDATES, formdata=None, data={"candidates": 500}),
                           low=MIN_CANDIDATES, limit=WEB_MAX_CANDIDATES), status


@blueprint.get("")
def studies_list():
    return _studies_page()


@blueprint.post("")
def run_study():
    form = StudyForm(WEB_MAX_CANDIDATES)
    if not form.validate():
        return _studies_page(form, 422)
    try:
        study = design_studies.run_study(db(), program(), candidates=form.candidates.data,
                                         designs=tuple(form.design.data or ()), pool_source=form.pool.data,
                                         n_forms=form.forms.data, seed=1 if form.seed.data is None else form.seed.data,
                                         now=now(), max_candidates=WEB_MAX_CANDIDATES, **actor())
    except DomainError as error:
        form.refuse(error)
        return _studies_page(form, http_status(error))
    flash(_("Design study %(id)s finished.", id=study.id))
    return redirect(url_for(".study", study_id=study.id))


@blueprint.get("/<int:study_id>")
def study(study_id: int):
    found = design_studies.get_study(db(), study_id)
    return render_template("psychometrician/study.html", study=found, results=found.results,
                           scopes=["total", *program().field_codes])


@blueprint.get("/<int:study_id>/<plot>.svg")
def study_plot(study_id: int, plot: str):
    results = design_studies.get_study(db(), study_id).results
    rule = program().pass_rule
    if plot == "exposure":
        svg = design_plots.exposure_svg(results)
    elif plot == "information":
        svg = design_plots.information_svg(results)
    elif plot.startswith("csem-") and plot[5:] in ("total", *program().field_codes):
        scope = plot[5:]
        svg = design_plots.csem_svg(results, scope, float(rule.total_minimum if scope == "total" else rule.field_minimum))
    else:
        abort(404, description=_("There is no plot %(plot)s.", plot=plot))
    return Response(svg, mimetype="image/svg+xml")
