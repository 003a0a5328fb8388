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

from flask import Blueprint, abort, render_template, request
from flask_babel import gettext as _

from delivery import pretest
from delivery.web.auth import staff_required
from delivery.web.context import db, program
from delivery.web.psychometrician import bank, calibration, exchange, forms, operations, scores, studies
from delivery.web.psychometrician.common import PAGE_SIZE, ROLE, read_filter, status_name
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
    chosen = {"field": filters.field.data or None, "category": filters.category.data,
              "status": filters.status.data or None, "q": filters.q.data or ""}
    sort, order = filters.sort.data or "code", filters.order.data or "asc"
    number = filters.page.data or 1
    shown = {item_id: counts["shown"] for item_id, counts in pretest.exposure_counts(db()).items()}
    found = bank_service.browse_page(db(), field=chosen["field"], category=chosen["category"],
                                     status=chosen["status"], text=chosen["q"] or None, sort=sort,
                                     descending=order == "desc", offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE,
                                     shown=shown)
    pages = max(1, -(-found.total // PAGE_SIZE))
    if number > pages:
        abort(404, description=_("There is no page %(page)s: the list has %(pages)s.", page=number, pages=pages))
    # Links keep the filters and the sort; each column's link sorts by it (again: the other way).
    kept = {key: value for key, value in (("field", chosen["field"]), ("category", chosen["category"]),
                                          ("status", chosen["status"]), ("q", chosen["q"])) if value}
    columns = {key: {"sort": key, "order": "desc" if key == sort and order == "asc" else "asc", **kept}
               for key in bank_service.SORT_KEYS}
    here = {**kept, "sort": sort, "order": order}
    return render_template(
        "psychometrician/bank.html",
        entries=found.entries,
        total=found.total,
        first=found.offset + 1 if found.total else 0,
        last=found.offset + len(found.entries),
        page=number,
        pages=pages,
        here=here,
        endpoint="psychometrician.bank_list",
        columns=columns,
        sort=sort,
        order=order,
        exposure={e.item.id: shown.get(e.item.id, 0) for e in found.entries},
        counts=bank_service.counts_by_status(db()),
        filters=chosen,
        statuses=ITEM_STATUSES,
    )


blueprint.add_app_template_global(status_name)

for part in (bank, exchange, calibration, forms, studies, scores, operations):
    blueprint.register_blueprint(part.blueprint)
