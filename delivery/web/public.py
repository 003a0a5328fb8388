"""Pages for anyone: checking a score certificate."""
from __future__ import annotations

import re

from flask import Blueprint, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext

from delivery.web.context import db, program
from persistence import typed_input
from scoring import certificates

blueprint = Blueprint("public", __name__)

# Why a code is not a genuine certificate, as the verifier reads it (the check's own words are English).
REASONS = {
    "no code given": lazy_gettext("No code was given."),
    "the code is too short to be a certificate": lazy_gettext("The code is too short to be a certificate."),
    "the code's length does not match its contents": lazy_gettext(
        "The code's length does not match its contents: part of it is missing or extra."),
    "the code has characters that cannot be part of a certificate": lazy_gettext(
        "The code has characters that cannot be part of a certificate."),
    "this is not a certificate code as issued (its last character is wrong)": lazy_gettext(
        "This is not a certificate code as issued (its last character is wrong): check it for a typing mistake."),
    "the signature does not match: the code was altered or forged": lazy_gettext(
        "The signature does not match: the code was altered or forged."),
}
_UNKNOWN_KEY = re.compile(r"signed with key (\d+), which this verifier does not know")
_UNKNOWN_VERSION = re.compile(r"unknown certificate version (\d+)")


def reason_words(reason: str) -> str:
    """A verification's reason in the reader's language (as given, if it is a new one)."""
    if reason in REASONS:
        return str(REASONS[reason])
    if found := _UNKNOWN_KEY.fullmatch(reason):
        return _("It is signed with key %(key)s, which this verifier does not know.", key=found.group(1))
    if found := _UNKNOWN_VERSION.fullmatch(reason):
        return _("It is of a certificate version this verifier does not know (%(version)s).",
                 version=found.group(1))
    return reason


@blueprint.get("/verify")
def verify():
    # As typed or pasted: full-width letters and dashes are folded, spaces dropped.
    code = typed_input.plain_code(request.args.get("code", ""))
    name = request.args.get("name", "").strip()
    verification = None
    lines = []
    if code:
        verification = certificates.verify(code, certificates.public_keys(db()), name or None)
        if verification.valid:
            statement = verification.statement
            names = [_("Total")] + [f.name for f in program().fields]
            if len(statement.field_scores) == len(program().fields):
                lines = list(zip(names, (statement.total,) + statement.field_scores))
            else:
                lines = [(_("Total"), statement.total)]
    replaced = certificates.superseded(db(), code) if verification is not None and verification.valid else None
    return render_template("public/verify.html", code=code, name=name, verification=verification, lines=lines,
                           reason=reason_words(verification.reason) if verification is not None else "",
                           superseded_at=replaced.superseded_at if replaced else None,
                           program_matches=verification is not None and verification.valid and
                           verification.statement.program_digest == certificates.short_digest(program().code, 2))
