"""Who is signed in: candidates by sitting and login token, staff and applicants by a sign-in
held on the server; and the guard every sign-in passes (login throttling, :mod:`delivery.throttle`).

The session cookie only names a sign-in; the server decides whether it still holds:

- staff and registered candidates: the cookie carries the token of a
  :class:`~centers.models.SignIn` row, looked up on every request (one primary-key read
  joined to the account). Signing out, a password change and a closed account delete
  rows, so every copy of the cookie ends at once;
- a candidate at the seat: the cookie carries the sitting's login token, which the
  answer saves check in their own statement (no extra lookup on the hot path). A new
  login at another seat, signing out and the end of the sitting replace it.

Staff and applicant sign-ins end after the idle timeout (``CBT_SESSION_IDLE_MINUTES``) and
the absolute one (``CBT_SESSION_HOURS``), on the server. The seat's sign-in lasts as long as
its sitting (whose page polls the clock, never idle) and no longer than the absolute timeout,
counted in the signed cookie.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from functools import wraps
from typing import Callable, TypeVar

from flask import abort, after_this_request, current_app, g, redirect, request, session, url_for
from flask_babel import lazy_gettext
from itsdangerous import BadSignature, URLSafeTimedSerializer

from centers import passwords, sign_ins
from centers.models import Candidate, StaffAccount
from centers.sign_ins import Timeouts
from delivery import throttle
from delivery.web.context import db, now
from persistence.errors import NotSignedIn
from persistence.settings import load_settings

T = TypeVar("T")


def timeouts() -> Timeouts:
    """The sign-ins' idle and absolute timeouts: the settings, or the app's SESSION_IDLE_MINUTES
    and SESSION_HOURS when given (tests)."""
    app = current_app
    if "cbt.timeouts" not in app.extensions:
        deployment = load_settings()
        app.extensions["cbt.timeouts"] = Timeouts(
            dt.timedelta(minutes=app.config.get("SESSION_IDLE_MINUTES", deployment.session_idle_minutes)),
            dt.timedelta(hours=app.config.get("SESSION_HOURS", deployment.session_hours)))
    return app.extensions["cbt.timeouts"]


# ---- the candidate at the seat --------------------------------------------------------------

def sign_in_candidate(sitting_id: int, token: str) -> None:
    session.clear()
    session.update(role="candidate", sitting_id=sitting_id, token=token, at=int(now().timestamp()))


def candidate_credentials() -> tuple[int, str]:
    """The signed-in candidate's sitting id and login token; 401 if none, or if the seat's
    sign-in is older than the absolute timeout."""
    if session.get("role") != "candidate":
        raise NotSignedIn("Please log in with your admission code.")
    at = session.get("at")
    if not isinstance(at, int) or now().timestamp() - at >= timeouts().absolute.total_seconds():
        session.clear()
        raise NotSignedIn("Your session has ended; please log in again.")
    return int(session["sitting_id"]), str(session["token"])


def renew_candidate_token(token: str | None) -> None:
    """The sitting gave this request a new token (it ended the sitting): the cookie carries it."""
    if token and session.get("role") == "candidate" and session.get("token") != token:
        session["token"] = token


# ---- staff and applicants ----------------------------------------------------------------------

def sign_in_staff(account: StaffAccount, token: str) -> None:
    session.clear()
    session.update(role=account.role, sign_in=token)


def sign_in_applicant(token: str) -> None:
    """A registered candidate, signed in to their bookings (not to a sitting)."""
    session.clear()
    session.update(role="applicant", sign_in=token)


def sign_in_token() -> str | None:
    token = session.get("sign_in")
    return token if isinstance(token, str) else None


def sign_out() -> None:
    session.clear()


def current_staff() -> StaffAccount | None:
    """The signed-in staff account of this request, if its sign-in still holds."""
    if session.get("role") not in ("proctor", "psychometrician"):
        return None
    return sign_ins.staff_signed_in(db(), sign_in_token(), now(), timeouts())


def current_applicant() -> Candidate | None:
    """The signed-in registered candidate of this request, if their sign-in still holds."""
    if session.get("role") != "applicant":
        return None
    candidate = sign_ins.applicant_signed_in(db(), sign_in_token(), now(), timeouts())
    if candidate is None:
        session.clear()
    return candidate


def local_path(target: str, fallback: str) -> str:
    """``target`` if it is a path on this site, else ``fallback``: after sign-in, never send
    anyone to another site. "//host", "/\\host", "https://host" leave it, and so does "/<tab>/host":
    browsers drop tabs and newlines from a URL and read a backslash as a slash."""
    if target.startswith("/") and not any(ch <= " " or ch == "\\" for ch in target) and not target.startswith("//"):
        return target
    return fallback


# Whom a staff page is for, as its refusal says it (by the sorted roles staff_required names).
_PAGE_FOR = {
    ("proctor",): lazy_gettext("This page is for proctors."),
    ("psychometrician",): lazy_gettext("This page is for psychometricians."),
    ("proctor", "psychometrician"): lazy_gettext("This page is for proctors and psychometricians."),
    (): lazy_gettext("This page is for other staff."),
}


def staff_required(*roles: str):
    """Only an active staff account of one of ``roles``, signed in now; others are sent to log in or refused."""

    def decorate(view):
        @wraps(view)
        def guarded(*args, **kwargs):
            account = current_staff()
            if account is None:
                if session.get("role") in ("proctor", "psychometrician"):
                    session.clear()
                return redirect(url_for("staff.login_form", next=request.path))
            if account.role not in roles:
                abort(403, description=str(_PAGE_FOR.get(tuple(sorted(roles)), _PAGE_FOR[()])))
            g.staff = account
            return view(*args, **kwargs)

        return guarded

    return decorate


# ---- the sign-in guard --------------------------------------------------------------

KNOWN_DEVICE_COOKIE = "cbt_known_device"
KNOWN_DEVICE_DAYS = 90
KNOWN_DEVICE_ACCOUNTS = 8  # the most accounts one browser is remembered for


def client_address() -> str:
    """The client's address as the throttle counts it (:func:`delivery.throttle.client_of`).
    Behind a reverse proxy, set ``TRUSTED_PROXIES`` so that this is the client's address,
    not the proxy's."""
    return throttle.client_of(request.remote_addr)


def _device_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="known-device")


def _device_tag(kind: str, account: str) -> str:
    return hashlib.sha256(f"{kind}\x1f{account}".encode()).hexdigest()[:20]


def _known_tags() -> list[str]:
    cookie = request.cookies.get(KNOWN_DEVICE_COOKIE)
    if not cookie:
        return []
    try:
        tags = _device_serializer().loads(cookie, max_age=KNOWN_DEVICE_DAYS * 86400)
    except BadSignature:
        return []
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def throttle_policy() -> throttle.ThrottlePolicy:
    return current_app.config["LOGIN_THROTTLE"]


def throttled_sign_in(kind: str, account: str, sign_in: Callable[[], T],
                      wrong: tuple[type[Exception], ...] = (NotSignedIn,)) -> T:
    """Run the sign-in service ``sign_in`` under the throttle (:func:`delivery.throttle.guarded`):
    refused with :class:`~delivery.throttle.LoginThrottled` while blocked, counted whatever
    happens; on success this browser is remembered for the account (not at a seat: the
    PCs of a centre are shared)."""
    known = kind != "seat" and _device_tag(kind, account) in _known_tags()
    attempt = throttle.Attempt(kind, account, client_address(), known_device=known)
    if kind == "seat":  # no password: not gated (a whole slot logs in within minutes)
        result = throttle.guarded(db(), throttle_policy(), attempt, now(), sign_in, wrong)
    else:
        with passwords.sign_in_gate():
            result = throttle.guarded(db(), throttle_policy(), attempt, now(), sign_in, wrong)
    if kind != "seat":
        _remember_device(kind, account)
    return result


def throttled_registration() -> None:
    """Count a registration from this client, or refuse it (:func:`delivery.throttle.admit_registration`)."""
    throttle.admit_registration(db(), throttle_policy(), client_address(), now())


def _remember_device(kind: str, account: str) -> None:
    tags = [t for t in _known_tags() if t != _device_tag(kind, account)]
    tags = [_device_tag(kind, account), *tags][:KNOWN_DEVICE_ACCOUNTS]
    value = _device_serializer().dumps(tags)

    @after_this_request
    def remember(response):
        response.set_cookie(KNOWN_DEVICE_COOKIE, value, max_age=KNOWN_DEVICE_DAYS * 86400, httponly=True,
                            secure=current_app.config["SESSION_COOKIE_SECURE"], samesite="Lax")
        return response
