"""The psychometrician's area at ``/bank/``: the item bank, exchange, calibration, forms,
design studies, rescoring and the operation's statistics.

One blueprint (``psychometrician``) holds the area's home page (the bank's list) and
the guard every page passes (an active psychometrician's account); each part of the
area is a blueprint of its own nested in it, so its endpoints read
``psychometrician.<part>.<view>``. Views are thin: they parse the request with a form
of :mod:`.inputs`, call one service (which checks the rule, writes the audit record and
commits) and render or redirect; templates only show what the view prepared.
"""
from __future__ import annotations

from flask import Blueprint, render_template, request

from delivery import pretest
from delivery.web.auth import staff_required
from delivery.web.context import db, program
from delivery.web.psychometrician import bank, calibration, exchange, forms, operations, scores, studies
from delivery.web.psychometrician.common import ROLE, read_filter
from delivery.web.psychometrician.inputs import BankFilter
from itembank import bank as bank_service
from itembank.content import FIGURE_MAX_BYTES
from itembank.exchange import IMPORT_MAX_BYTES
from itembank.models import ITEM_STATUSES

blueprint = Blueprint("psychometrician", __name__, url_prefix="/bank")

# Request bodies larger than the app's MAX_CONTENT_LENGTH that the area takes, by path prefix:
# imports up to the largest file an import reads; the item form a figure and the text around it.
UPLOAD_LIMITS = {"/bank/exchange/import/": IMPORT_MAX_BYTES, "/bank/items/": 4 * FIGURE_MAX_BYTES}


@blueprint.before_request
@staff_required(ROLE)
def psychometricians_only():
    """Every page of the area, its parts' included, is for a signed-in psychometrician."""
    return None


@blueprint.get("/")
def bank_list():
    filters = read_filter(BankFilter(program(), request.args))
    entries = bank_service.browse(db(), field=filters.field.data or None, category=filters.category.data,
                                  status=filters.status.data or None, text=filters.q.data or None)
    exposure = pretest.exposure_counts(db())
    return render_template(
        "psychometrician/bank.html",
        entries=entries,
        exposure={e.item.id: exposure.get(e.item.id, {}).get("shown", 0) for e in entries},
        counts=bank_service.counts_by_status(db()),
        filters={"field": filters.field.data or None, "category": filters.category.data,
                 "status": filters.status.data or None, "q": filters.q.data or ""},
        statuses=ITEM_STATUSES,
    )


for part in (bank, exchange, calibration, forms, studies, scores, operations):
    blueprint.register_blueprint(part.blueprint)
