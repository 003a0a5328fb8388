"""Who is signed in: candidates by sitting and login token, staff by account and role;
and the guard every sign-in passes (login throttling, :mod:`delivery.throttle`)."""
from __future__ import annotations

import hashlib
from functools import wraps

from flask import abort, after_this_request, current_app, g, redirect, request, session, url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer

from centers.models import StaffAccount
from delivery import throttle

from delivery.web.context import db, now
from persistence import audit
from persistence.errors import NotSignedIn


def sign_in_candidate(sitting_id: int, token: str) -> None:
    session.clear()
    session["role"] = "candidate"
    session["sitting_id"] = sitting_id
    session["token"] = token


def candidate_credentials() -> tuple[int, str]:
    """The signed-in candidate's sitting id and login token; 401 if none."""
    if session.get("role") != "candidate":
        raise NotSignedIn("Please log in with your admission code.")
    return int(session["sitting_id"]), str(session["token"])


def sign_in_staff(account: StaffAccount) -> None:
    session.clear()
    session["role"] = account.role
    session["staff_id"] = account.id


def sign_out() -> None:
    session.clear()


def local_path(target: str, fallback: str) -> str:
    """``target`` if it is a path on this site, else ``fallback``: after sign-in, never send
    anyone to another site. "//host", "/\\host", "https://host" leave it, and so does "/<tab>/host":
    browsers drop tabs and newlines from a URL and read a backslash as a slash."""
    if target.startswith("/") and not any(ch <= " " or ch == "\\" for ch in target) and not target.startswith("//"):
        return target
    return fallback


def staff_required(role: str):
    """Only an active staff account of ``role``; others are sent to log in or refused."""

    def decorate(view):
        @wraps(view)
        def guarded(*args, **kwargs):
            staff_id = session.get("staff_id")
            account = db().get(StaffAccount, staff_id) if staff_id else None
            if account is None or not account.active:
                if staff_id:
                    session.clear()
                return redirect(url_for("staff.login_form", next=request.path))
            if account.role != role:
                abort(403, description=f"This page is for {role}s.")
            g.staff = account
            return view(*args, **kwargs)

        return guarded

    return decorate


def sign_in_applicant(candidate_id: int) -> None:
    """A registered candidate, signed in to their bookings (not to a sitting)."""
    session.clear()
    session["role"] = "applicant"
    session["candidate_id"] = candidate_id


def applicant_id() -> int | None:
    return int(session["candidate_id"]) if session.get("role") == "applicant" else None


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


def login_attempt(kind: str, account: str) -> throttle.Attempt:
    """The attempt about to be made; raises :class:`~delivery.throttle.LoginThrottled` if it is blocked.

    Call it before checking the credentials, then :func:`login_failed` or :func:`login_succeeded`.
    """
    known = kind != "seat" and _device_tag(kind, account) in _known_tags()
    attempt = throttle.Attempt(kind, account, client_address(), known_device=known)
    throttle.check(db(), attempt, now())
    return attempt


def throttle_policy() -> throttle.ThrottlePolicy:
    return current_app.config["LOGIN_THROTTLE"]


def login_failed(attempt: throttle.Attempt) -> None:
    """Count the failure (committed whatever the request does next)."""
    db().rollback()
    throttle.failed(db(), throttle_policy(), attempt, now())
    db().commit()


def login_succeeded(attempt: throttle.Attempt) -> None:
    """Clear the attempt's counts and remember this browser for the account (not at a seat:
    the PCs of a centre are shared). The caller commits."""
    throttle.succeeded(db(), attempt)
    if attempt.kind == "seat":
        return
    tags = [t for t in _known_tags() if t != _device_tag(attempt.kind, attempt.account)]
    tags = [_device_tag(attempt.kind, attempt.account), *tags][:KNOWN_DEVICE_ACCOUNTS]
    value = _device_serializer().dumps(tags)

    @after_this_request
    def remember(response):
        response.set_cookie(KNOWN_DEVICE_COOKIE, value, max_age=KNOWN_DEVICE_DAYS * 86400, httponly=True,
                            secure=current_app.config["SESSION_COOKIE_SECURE"], samesite="Lax")
        return response


def record_staff_sign_in(account: StaffAccount, action: str) -> None:
    """Staff sign-in and sign-out go into the audit trail, with the address they came from."""
    # Not in a centre's own trail (its proctors' actions on sittings): a sign-in is the account's.
    audit.record(db(), actor=account.username, actor_role=account.role, action=action,
                 subject=f"staff:{account.username}"[:64], details={"client": client_address()}, at=now())
