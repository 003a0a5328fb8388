"""Staff sign-in, shared by proctors and psychometricians."""
from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, session, url_for

from centers.accounts import authenticate
from centers.models import StaffAccount
from delivery.throttle import LoginThrottled
from delivery.web.auth import (local_path, login_attempt, login_failed, login_succeeded, record_staff_sign_in,
                               sign_in_staff, sign_out)
from delivery.web.context import db
from delivery.web.errors import too_many_attempts

blueprint = Blueprint("staff", __name__, url_prefix="/staff")

HOME = {"proctor": "proctor.board", "psychometrician": "psychometrician.bank_list"}


@blueprint.get("/login")
def login_form():
    return render_template("staff/login.html", next=request.args.get("next", ""))


@blueprint.post("/login")
def login():
    username = request.form.get("username", "").strip()
    try:
        attempt = login_attempt("staff", username)
    except LoginThrottled as refused:
        return too_many_attempts(render_template("staff/login.html", error=str(refused), username=username), refused)
    account = authenticate(db(), username, request.form.get("password", ""))
    if account is None:
        login_failed(attempt)
        return render_template("staff/login.html", error="Unknown username or wrong password.",
                               username=username), 401
    login_succeeded(attempt)
    record_staff_sign_in(account, "staff.sign_in")
    db().commit()
    sign_in_staff(account)
    return redirect(local_path(request.form.get("next", ""), url_for(HOME[account.role])))


@blueprint.post("/logout")
def logout():
    staff_id = session.get("staff_id")
    account = db().get(StaffAccount, staff_id) if staff_id else None
    if account is not None:
        record_staff_sign_in(account, "staff.sign_out")
        db().commit()
    sign_out()
    return redirect(url_for("staff.login_form"))
