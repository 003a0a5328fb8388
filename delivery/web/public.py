"""Pages for anyone: checking a score certificate."""
from __future__ import annotations

from flask import Blueprint, render_template, request

from delivery.web.context import db, program
from scoring import certificates

blueprint = Blueprint("public", __name__)


@blueprint.get("/verify")
def verify():
    code = request.args.get("code", "").strip()
    name = request.args.get("name", "").strip()
    verification = None
    lines = []
    if code:
        verification = certificates.verify(code, certificates.public_keys(db()), name or None)
        if verification.valid:
            statement = verification.statement
            names = ["Total"] + [f.name for f in program().fields]
            if len(statement.field_scores) == len(program().fields):
                lines = list(zip(names, (statement.total,) + statement.field_scores))
            else:
                lines = [("Total", statement.total)]
    replaced = certificates.superseded(db(), code) if verification is not None and verification.valid else None
    return render_template("public/verify.html", code=code, name=name, verification=verification, lines=lines,
                           superseded_at=replaced.superseded_at if replaced else None,
                           program_matches=verification is not None and verification.valid and
                           verification.statement.program_digest == certificates.short_digest(program().code, 2))
