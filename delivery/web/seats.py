"""Seat PCs: the proctor enrols the PC they stand at as a seat of their centre, or a PC opens a
one-time enrolment link (``cbt seats enrol``); the PC then holds the seat cookie, which the
candidate's login needs where the program says so (:mod:`centers.seats`).

The cookie holds the PC's credential signed with the application's secret key (a forged or
altered cookie is ignored); the database holds its hash, so a revocation ends it at once.
"""
from __future__ import annotations

from flask import Blueprint, current_app, g, render_template, request
from itsdangerous import BadSignature, URLSafeSerializer

from centers import seats
from centers.accounts import Actor
from delivery.web import errors
from delivery.web.auth import staff_required
from delivery.web.context import db, form_id, now
from delivery.web.i18n import user_message
from persistence.errors import DomainError, InvalidInput

blueprint = Blueprint("seats", __name__)

SEAT_COOKIE = "cbt_seat"
# Browsers keep a cookie at most 400 days; the enrolment itself lasts until revoked or replaced.
SEAT_COOKIE_DAYS = 400
CODE_LENGTH = 64


def _serializer(secret_key: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret_key, salt="seat-enrolment")


def seat_cookie_value(secret_key: str, token: str) -> str:
    """The seat cookie's value for a PC credential (what the enrolment pages set)."""
    return _serializer(secret_key).dumps(token)


def seat_token() -> str | None:
    """This PC's seat credential, if its cookie carries a valid signature."""
    cookie = request.cookies.get(SEAT_COOKIE)
    if not cookie or len(cookie) > 512:
        return None
    try:
        token = _serializer(current_app.secret_key).loads(cookie)
    except BadSignature:
        return None
    return token if isinstance(token, str) else None


def _with_seat_cookie(response, token: str):
    response.set_cookie(SEAT_COOKIE, seat_cookie_value(current_app.secret_key, token),
                        max_age=SEAT_COOKIE_DAYS * 86400, httponly=True, samesite="Lax",
                        secure=current_app.config["SESSION_COOKIE_SECURE"])
    return response


def _this_pc():
    return seats.enrolled_seat(db(), seat_token())


# ---- the proctor at the PC -------------------------------------------------------------------

def _enrol_page(error: str | None = None, status: int = 200, enrolled=None):
    centre = g.staff.centre
    held = {e.seat_id: e for e in seats.enrolments(db(), centre.id) if e.token_hash}
    return render_template("proctor/seat_enrol.html", centre=centre, seats=[s for s in centre.seats if s.active],
                           held=held, this_pc=_this_pc(), enrolled=enrolled, error=error), status


@blueprint.get("/proctor/seat")
@staff_required("proctor")
def enrol_form():
    return _enrol_page()


@blueprint.post("/proctor/seat")
@staff_required("proctor")
def enrol():
    try:
        seat_id = form_id("seat_id", "seat")
        if seat_id is None:
            raise InvalidInput("Choose the seat this PC is.", field="seat_id")
        token, enrolled = seats.enrol_this_pc(db(), seat_id, actor=Actor.staff(g.staff),
                                              reason=request.form.get("reason", ""), now=now(),
                                              replacing=seat_token())
    except DomainError as error:
        return _enrol_page(user_message(error), errors.http_status(error))
    page, status = _enrol_page(enrolled=enrolled)
    return _with_seat_cookie(current_app.make_response((page, status)), token)


# ---- a one-time enrolment link ------------------------------------------------------------

def _code(code: str) -> str:
    return code[:CODE_LENGTH]


@blueprint.get("/seat/enrol/<code>")
def link(code: str):
    try:
        pending = seats.pending_link(db(), _code(code), now())
    except DomainError as error:
        return render_template("seat/enrol.html", error=user_message(error), code=None), errors.http_status(error)
    return render_template("seat/enrol.html", pending=pending, this_pc=_this_pc(), code=code)


@blueprint.post("/seat/enrol/<code>")
def claim(code: str):
    try:
        token, enrolled = seats.claim_enrolment_link(db(), _code(code), now=now(), replacing=seat_token())
    except DomainError as error:
        return render_template("seat/enrol.html", error=user_message(error), code=None), errors.http_status(error)
    response = current_app.make_response(render_template("seat/enrol.html", enrolled=enrolled, code=None))
    return _with_seat_cookie(response, token)
