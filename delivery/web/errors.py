"""Errors as the user sees them: a clear message in the reader's language, JSON for the API,
never a trace; and the error page keeps the user in their area (the staff navigation, the
applicant's booking header, the seat's way back to its sitting), not on a bare page."""
from __future__ import annotations

import logging
import sqlite3

from flask import Flask, Response, g, jsonify, make_response, render_template, request, session
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DataError, DisconnectionError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from delivery.answers import StorageUnavailable
from delivery.sittings import Paused
from delivery.throttle import LoginThrottled
from delivery.web.i18n import user_message
from itembank.assembly import AssemblyError
from persistence.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    NotSignedIn,
    Refused,
    Unavailable,
    status_for,
)
from scoring.certificates import CertificateError

log = logging.getLogger(__name__)


class _PipelineEcho(logging.Filter):
    """psycopg warns "error ignored terminating <Pipeline>: pipeline aborted" when a statement of
    a batch (a sitting's items) fails inside its pipeline. The statement's own error goes on to
    :func:`register`'s handlers, which log it once: the warning would tell the same fault twice."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith("error ignored terminating"))


logging.getLogger("psycopg").addFilter(_PipelineEcho())


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def user_area(*, look_up: bool = True) -> dict:
    """The area of the user an error page is shown to, and what its menu needs: ``area`` is
    "proctor", "psychometrician", "applicant", "seat" or None (anyone).

    The views keep who is signed in on ``g`` (``g.staff``, ``g.applicant``); an error raised before
    a view ran (an unknown address, a refused role) looks the sign-in up, unless ``look_up`` is
    False: a database that cannot be reached is not asked again. A lookup that fails leaves the
    page without a menu rather than failing the error page."""
    role = session.get("role")
    if role in ("proctor", "psychometrician"):
        account = g.get("staff")
        if account is None and look_up:
            account = _quietly("current_staff")
            if account is not None:
                g.staff = account
        return {"area": account.role} if account is not None else {}
    if role == "applicant":
        candidate = g.get("applicant")
        if candidate is None and look_up:
            candidate = _quietly("current_applicant")
        return {"area": "applicant", "candidate": candidate} if candidate is not None else {}
    if role == "candidate":
        return {"area": "seat"}
    return {}


def _quietly(lookup: str):
    from delivery.web import auth

    try:
        return getattr(auth, lookup)()
    except Exception:  # the page that tells of an error must not fail on a second one
        log.warning("no menu on the error page: the sign-in could not be looked up", exc_info=True)
        return None


def error_response(status: int, message: str, *, look_up: bool = True) -> Response:
    if wants_json():
        response = jsonify(error=message, status=status)
    else:
        response = make_response(render_template("error.html", status=status, message=message,
                                                 **user_area(look_up=look_up)))
    response.status_code = status
    return response


# What the candidate (or anyone) reads when the database does not take a request: the
# request changed nothing, so it can simply be sent again once the fault is cleared.
# N_ marks a message for the catalogue (babel's keyword); it is translated where it is shown.
N_ = str
DATABASE_UNREACHABLE = N_("The server could not reach its database; nothing was lost. "
                          "Please try again; if this keeps happening, tell the proctor.")
STORAGE_FULL = N_("The server cannot store anything right now (its storage is full); nothing was saved "
                  "and nothing saved before is lost. Please tell the proctor, then try again.")


def storage_full(error: BaseException) -> bool:
    """Whether the database refused ``error``'s statement for want of disk space: SQLite's
    SQLITE_FULL, or PostgreSQL's SQLSTATE 53100 (disk_full, psycopg's DiskFull)."""
    cause = getattr(error, "orig", None) or error.__cause__
    return (getattr(cause, "sqlstate", None) == "53100"
            or getattr(cause, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL)


# The HTTP status of each kind of domain error (persistence.errors); the most specific class wins.
HTTP_STATUS: dict[type[DomainError], int] = {
    InvalidInput: 422, NotFound: 404, Refused: 403, NotSignedIn: 401, Conflict: 409, Paused: 423, Unavailable: 503,
}


def http_status(error: DomainError) -> int:
    return status_for(error, HTTP_STATUS, 409)


def too_many_attempts(body, refused: LoginThrottled) -> Response:
    """A sign-in refused by the throttle: 429 with Retry-After, the form shown again."""
    response = make_response(body)
    response.status_code = 429
    response.headers["Retry-After"] = str(refused.retry_after)
    return response


def register(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def domain_error(error):
        response = error_response(http_status(error), user_message(error))
        if getattr(error, "retry_after", None):
            response.headers["Retry-After"] = str(error.retry_after)
        return response

    @app.errorhandler(AssemblyError)
    def assembly_failed(error):
        log.error("assembly failed: %s", error)
        return error_response(503, _("The exam cannot be assembled: %(reason)s. Please tell the proctor.",
                                     reason=user_message(error)))

    @app.errorhandler(CertificateError)
    def certificate_unavailable(error):
        log.error("certificate signing failed: %s", error)
        return error_response(503, _("The certificate cannot be signed right now; your score is safe. "
                                     "Please try later."))

    @app.errorhandler(LoginThrottled)
    def throttled(error):
        return too_many_attempts(error_response(429, user_message(error)), error)

    @app.errorhandler(CSRFError)
    def csrf_failed(error):
        return error_response(400, _("The form has expired or did not come from this site; reload the page and "
                                     "try again."))

    @app.errorhandler(StorageUnavailable)
    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    @app.errorhandler(DisconnectionError)
    def storage_unavailable(error):
        # The driver's own message: SQLAlchemy's adds the statement and its parameters.
        reason = " ".join(str(getattr(error, "orig", None) or error).split())
        if storage_full(error):
            # Not cleared by waiting a second: someone has to free space first.
            log.error("database storage full on %s %s: %s", request.method, request.path, reason)
            response = error_response(503, _(STORAGE_FULL), look_up=False)
            response.headers["Retry-After"] = "30"
        else:
            log.warning("database unavailable on %s %s: %s", request.method, request.path, reason)
            response = error_response(503, _(DATABASE_UNREACHABLE), look_up=False)
            response.headers["Retry-After"] = "1"
        return response

    @app.errorhandler(OverflowError)
    @app.errorhandler(DataError)
    def out_of_range(error):
        # A number (or text) past what the database column holds: SQLite's driver refuses an
        # integer beyond 64 bits (OverflowError), PostgreSQL's column its type (DataError).
        log.info("value out of range on %s %s: %s", request.method, request.path,
                 " ".join(str(getattr(error, "orig", None) or error).split())[:200])
        return error_response(422, _("A value in the request is out of range; check the numbers and try again."),
                              look_up=False)

    @app.errorhandler(HTTPException)
    def http_error(error):
        # Werkzeug's own descriptions are English; ours (abort(403, description=_(...))) are translated.
        described = error.description if error.description != type(error).description else None
        return error_response(error.code or 500, described or str(HTTP_WORDS.get(error.code, error.name)))

    @app.errorhandler(Exception)
    def unexpected(error):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, _("Something went wrong on our side; please try again."), look_up=False)


# What the error page says for the HTTP errors werkzeug raises itself (its descriptions are English).
HTTP_WORDS = {
    400: lazy_gettext("The request was not understood; go back and try again."),
    403: lazy_gettext("You may not open this page."),
    404: lazy_gettext("There is no such page; check the address."),
    405: lazy_gettext("This page cannot be used that way; go back and use its form or link."),
    413: lazy_gettext("What was sent is too large."),
    429: lazy_gettext("Too many requests; please wait a moment and try again."),
}
