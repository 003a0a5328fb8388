"""The psychometrician's scores area, on the psychometrician blueprint: the operation's
statistics (dashboard and CSV) and rescoring campaigns."""
from __future__ import annotations

from flask import Response, flash, g, redirect, render_template, request, url_for
from markupsafe import Markup

from delivery import rescoring
from delivery.statistics import operation_report
from delivery.web.auth import staff_required
from delivery.web.context import db, now, program
from delivery.web.psychometrician import ROLE, _date, blueprint
from itembank.content import unpack
from itembank.models import ItemVersion
from scoring import campaigns, charts


def _period() -> dict:
    since, until = _date("since"), _date("until")
    return {"since": since.date() if since else None, "until": until.date() if until else None}


@blueprint.get("/operations/")
@staff_required(ROLE)
def operations():
    period = _period()
    report = operation_report(db(), program(), **period)
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


@blueprint.get("/operations/statistics.csv")
@staff_required(ROLE)
def operations_csv():
    report = operation_report(db(), program(), **_period())
    return Response(report.csv, mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=operation-statistics.csv"})


@blueprint.get("/rescoring/")
@staff_required(ROLE)
def rescoring_list():
    return render_template("psychometrician/rescoring.html", campaigns=campaigns.campaigns(db()))


@blueprint.post("/rescoring/")
@staff_required(ROLE)
def propose_rescoring():
    form = request.form
    kind = form.get("kind", "")
    try:
        version = int(form.get("version", ""))
    except ValueError:
        version = -1
    key = form.get("key", "")
    amendment = campaigns.Amendment(
        code=form.get("code", "").strip().upper(), version=version, kind=kind,
        key="ABCD".index(key) if kind == "key" and key in ("A", "B", "C", "D") else None)
    campaign = rescoring.propose_campaign(db(), [amendment], reason=form.get("reason", ""),
                                          actor=g.staff.username, now=now())
    db().commit()
    return redirect(url_for("psychometrician.rescoring_campaign", campaign_id=campaign.id))


@blueprint.get("/rescoring/<int:campaign_id>")
@staff_required(ROLE)
def rescoring_campaign(campaign_id: int):
    campaign = campaigns.campaign_by_id(db(), campaign_id)
    labels = program().option_labels
    amendments = []
    for amendment in campaign.amendments:
        version = db().get(ItemVersion, amendment.item_version_id)
        amendments.append({
            "code": version.item.code, "version": version.version,
            "was": labels[unpack(version.content).key],
            "now": "withdrawn" if amendment.kind == "withdrawn" else f"key {labels[amendment.key]}",
        })
    changes = [{"result": c.score_result_id, "before": c.before, "after": c.after,
                "flipped": c.before["passed"] != c.after["passed"]} for c in campaign.changes]
    return render_template("psychometrician/rescoring_campaign.html", campaign=campaign, amendments=amendments,
                           changes=changes, flips=sum(c["flipped"] for c in changes),
                           may_decide=campaign.status == "proposed" and campaign.proposed_by != g.staff.username)


@blueprint.post("/rescoring/<int:campaign_id>/apply")
@staff_required(ROLE)
def apply_rescoring(campaign_id: int):
    changed = rescoring.apply_campaign(db(), program(), campaign_id, actor=g.staff.username, now=now())
    db().commit()
    flash(f"Campaign {campaign_id} applied: {changed} result(s) changed.")
    return redirect(url_for("psychometrician.rescoring_campaign", campaign_id=campaign_id))


@blueprint.post("/rescoring/<int:campaign_id>/discard")
@staff_required(ROLE)
def discard_rescoring(campaign_id: int):
    campaign = campaigns.campaign_by_id(db(), campaign_id, lock=True)
    campaigns.discard(db(), campaign, actor=g.staff.username, now=now(), reason=request.form.get("reason", ""))
    db().commit()
    flash(f"Campaign {campaign_id} discarded.")
    return redirect(url_for("psychometrician.rescoring_campaign", campaign_id=campaign_id))
