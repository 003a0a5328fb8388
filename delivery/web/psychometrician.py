"""The psychometrician's area: the item bank."""
from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from delivery.web.auth import staff_required
from delivery.web.context import db, program
from itembank import bank
from itembank.models import ITEM_STATUSES

blueprint = Blueprint("psychometrician", __name__, url_prefix="/bank")


@blueprint.get("/")
@staff_required("psychometrician")
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
    return render_template(
        "psychometrician/bank.html",
        entries=entries,
        filters={"field": field, "category": category, "status": status, "q": text or ""},
        statuses=ITEM_STATUSES,
    )


@blueprint.get("/items/<code>")
@staff_required("psychometrician")
def item(code: str):
    found = bank.entry(db(), code)
    if found is None:
        abort(404, description=f"no item {code}")
    return render_template("psychometrician/item.html", entry=found)
