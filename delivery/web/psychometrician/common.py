"""What every page of the psychometrician's area shares: who acts, downloads, page errors."""
from __future__ import annotations

from flask import Response, abort, g
from flask_babel import gettext as _

from delivery.web.psychometrician.inputs import Form

ROLE = "psychometrician"
# Rows on one page of the area's long lists (the bank, the item statistics).
PAGE_SIZE = 50


def actor() -> dict:
    """The signed-in psychometrician, as every service takes them."""
    return {"actor": g.staff.username, "actor_role": g.staff.role}


def read_filter(form: Form) -> Form:
    """A page's query filters, or 400 naming the field at fault (a filter has no page to show it on yet)."""
    if not form.validate():
        abort(400, description=form.first_error())
    return form


def download(body: bytes | str, filename: str, mimetype: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def status_name(status: str) -> str:
    """An item's status (the stored enum value) in the reader's language; pages and messages use it."""
    names = {"draft": _("draft"), "reviewed": _("reviewed"), "pretest": _("pretest"),
             "operational": _("operational"), "retired": _("retired")}
    return names.get(status, status)
