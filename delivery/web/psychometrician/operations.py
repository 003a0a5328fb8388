"""The operation's statistics: examinees, pass rates and scores by month, centre, region and group."""
from __future__ import annotations

from flask import Blueprint, Response, abort, render_template, request
from flask_babel import gettext as _

from delivery.statistics import operation_report
from delivery.web.context import db, program
from delivery.web.psychometrician.common import read_filter
from delivery.web.psychometrician.inputs import Period
from scoring import charts

blueprint = Blueprint("operations", __name__, url_prefix="/operations")

# The page's charts, each an SVG document of its own shown by an <img> (the CSP allows no inline style,
# and matplotlib's SVG carries style attributes).
CHARTS = ("months", "distribution", "groups")


def _period() -> dict:
    period = read_filter(Period(request.args))
    return {"since": period.since.data, "until": period.until.data}


def _labels() -> dict[str, str]:
    return {"sittings": _("sittings"), "pass rate (%)": _("pass rate (%)"), "total score": _("total score"),
            "pass mark {cut}": _("pass mark {cut}"),
            "Sittings and pass rate by month": _("Sittings and pass rate by month"),
            "Distribution of total scores": _("Distribution of total scores"),
            "Pass rate by candidate group": _("Pass rate by candidate group")}


@blueprint.get("/")
def operations():
    period = _period()
    report = operation_report(db(), program(), **period)
    tables = {name: [
        {"key": key, "sittings": int(b.sittings[i]), "passed": int(b.passed[i]), "rate": b.pass_rate[i],
         "mean": b.mean_total[i], "fields": [round(v) for v in b.mean_fields[i]]}
        for i, key in enumerate(b.keys)] for name, b in report.breakdowns.items()}
    query = {key: value for key, value in (("since", request.args.get("since", "")),
                                           ("until", request.args.get("until", ""))) if value}
    return render_template("psychometrician/operations.html", report=report, summary=report.summary,
                           charts=CHARTS if report.summary.examinees else (), query=query, tables=tables,
                           since=request.args.get("since", ""), until=request.args.get("until", ""))


@blueprint.get("/<chart>.svg")
def operations_chart(chart: str):
    if chart not in CHARTS:
        abort(404, description=_("There is no chart %(chart)s.", chart=chart))
    report = operation_report(db(), program(), **_period())
    if not report.summary.examinees:
        abort(404, description=_("No scored sittings in this period."))
    labels = _labels()
    if chart == "months":
        svg = charts.pass_rate_by_month_svg(report.breakdowns["month"], labels)
    elif chart == "distribution":
        edges, counts = report.distribution
        svg = charts.score_distribution_svg(edges, counts, program().pass_rule.total_minimum, labels)
    else:
        svg = charts.pass_rate_by_group_svg(report.breakdowns["group"], labels)
    return Response(svg, mimetype="image/svg+xml")


@blueprint.get("/statistics.csv")
def operations_csv():
    report = operation_report(db(), program(), **_period())
    return Response(report.csv, mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=operation-statistics.csv"})
