"""Rescoring campaigns: propose a corrected key or a withdrawal, see its effect, apply or discard it."""
from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, url_for
from flask_babel import gettext as _

from delivery import rescoring
from delivery.web.context import db, now, program
from delivery.web.errors import http_status
from delivery.web.i18n import current_language
from delivery.web.psychometrician.common import actor
from delivery.web.psychometrician.inputs import ProposeForm, RequiredReasonForm
from itembank.content import unpack
from itembank.models import ItemVersion
from persistence.errors import DomainError
from scoring import campaigns

blueprint = Blueprint("scores", __name__, url_prefix="/rescoring")


def _list_page(form: ProposeForm | None = None, status: int = 200):
    return render_template("psychometrician/rescoring.html", campaigns=campaigns.campaigns(db()),
                           form=form or ProposeForm(program(), formdata=None, data={"version": 1, "kind": "key"})
                           ), status


@blueprint.get("/")
def rescoring_list():
    return _list_page()


@blueprint.post("/")
def propose_rescoring():
    form = ProposeForm(program())
    if not form.validate():
        return _list_page(form, 422)
    amendment = campaigns.Amendment(code=form.code.data, version=form.version.data, kind=form.kind.data,
                                    key=form.key_index)
    try:
        campaign = rescoring.propose_campaign(db(), [amendment], reason=form.reason.data, now=now(), **actor())
    except DomainError as error:
        form.refuse(error)
        return _list_page(form, http_status(error))
    return redirect(url_for(".rescoring_campaign", campaign_id=campaign.id))


def _campaign_page(campaign_id: int, discard: RequiredReasonForm | None = None, status: int = 200):
    campaign = campaigns.campaign_by_id(db(), campaign_id)
    labels = program().labels_for(current_language())
    amendments = []
    for amendment in campaign.amendments:
        version = db().get(ItemVersion, amendment.item_version_id)
        amendments.append({
            "code": version.item.code, "version": version.version,
            "was": labels[unpack(version.content).key],
            "now": _("withdrawn") if amendment.kind == "withdrawn" else _("key %(label)s", label=labels[amendment.key]),
        })
    changes = [{"result": c.score_result_id, "before": c.before, "after": c.after,
                "flipped": c.before["passed"] != c.after["passed"]} for c in campaign.changes]
    return render_template("psychometrician/rescoring_campaign.html", campaign=campaign, amendments=amendments,
                           changes=changes, flips=sum(c["flipped"] for c in changes),
                           discard=discard or RequiredReasonForm(formdata=None),
                           may_decide=campaign.status == "proposed" and campaign.proposed_by != g.staff.username
                           ), status


@blueprint.get("/<int:campaign_id>")
def rescoring_campaign(campaign_id: int):
    return _campaign_page(campaign_id)


@blueprint.post("/<int:campaign_id>/apply")
def apply_rescoring(campaign_id: int):
    changed = rescoring.apply_campaign(db(), program(), campaign_id, now=now(), **actor())
    flash(_("Campaign %(id)s applied: %(n)s result(s) changed.", id=campaign_id, n=changed))
    return redirect(url_for(".rescoring_campaign", campaign_id=campaign_id))


@blueprint.post("/<int:campaign_id>/discard")
def discard_rescoring(campaign_id: int):
    form = RequiredReasonForm()
    try:
        form.checked()
        rescoring.discard_campaign(db(), campaign_id, now=now(), reason=form.reason.data.strip(), **actor())
    except DomainError as error:
        form.refuse(error)
        return _campaign_page(campaign_id, discard=form, status=http_status(error))
    flash(_("Campaign %(id)s discarded.", id=campaign_id))
    return redirect(url_for(".rescoring_campaign", campaign_id=campaign_id))
