"""The operation's statistics: examinees, pass rates and scores by month, centre, region and group."""
from __future__ import annotations

from flask import Blueprint, Response, render_template, request
from markupsafe import Markup

from delivery.statistics import operation_report
from delivery.web.context import db, program
from delivery.web.psychometrician.common import read_filter
from delivery.web.psychometrician.inputs import Period
from scoring import charts

blueprint = Blueprint("operations", __name__, url_prefix="/operations")


def _period() -> dict:
    period = read_filter(Period(request.args))
    return {"since": period.since.data, "until": period.until.data}


@blueprint.get("/")
def operations():
    report = operation_report(db(), program(), **_period())
    months, groups = report.breakdowns["month"], report.breakdowns["group"]
    edges, counts = report.distribution
    plots = {}
    if report.summary.examinees:
        plots = {
            "months": Markup(charts.pass_rate_by_month_svg(months)),
            "distribution": Markup(charts.score_distribution_svg(edges, counts, program().pass_rule.total_minimum)),
            "groups": Markup(charts.pass_rate_by_group_svg(groups)),
        }
    tables = {name: [
        {"key": key, "sittings": int(b.sittings[i]), "passed": int(b.passed[i]), "rate": b.pass_rate[i],
         "mean": b.mean_total[i], "fields": [round(v) for v in b.mean_fields[i]]}
        for i, key in enumerate(b.keys)] for name, b in report.breakdowns.items()}
    return render_template("psychometrician/operations.html", report=report, summary=report.summary, plots=plots,
                           tables=tables, since=request.args.get("since", ""), until=request.args.get("until", ""))


@blueprint.get("/statistics.csv")
def operations_csv():
    report = operation_report(db(), program(), **_period())
    return Response(report.csv, mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=operation-statistics.csv"})
