"""Who is signed in: candidates by sitting and login token, staff by account and role."""
from __future__ import annotations

from functools import wraps

from flask import abort, g, redirect, request, session, url_for

from centers.models import StaffAccount
from delivery.sittings import SittingError
from delivery.web.context import db


def sign_in_candidate(sitting_id: int, token: str) -> None:
    session.clear()
    session["role"] = "candidate"
    session["sitting_id"] = sitting_id
    session["token"] = token


def candidate_credentials() -> tuple[int, str]:
    """The signed-in candidate's sitting id and login token; 401 if none."""
    if session.get("role") != "candidate":
        raise SittingError("Please log in with your admission code.", status=401)
    return int(session["sitting_id"]), str(session["token"])


def sign_in_staff(account: StaffAccount) -> None:
    session.clear()
    session["role"] = account.role
    session["staff_id"] = account.id


def sign_out() -> None:
    session.clear()


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
