"""Staff sign-in, shared by proctors and psychometricians."""
from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for

from centers.accounts import authenticate
from delivery.web.auth import sign_in_staff, sign_out
from delivery.web.context import db

blueprint = Blueprint("staff", __name__, url_prefix="/staff")

HOME = {"proctor": "proctor.board", "psychometrician": "psychometrician.bank_list"}


@blueprint.get("/login")
def login_form():
    return render_template("staff/login.html", next=request.args.get("next", ""))


@blueprint.post("/login")
def login():
    username = request.form.get("username", "").strip()
    account = authenticate(db(), username, request.form.get("password", ""))
    if account is None:
        return render_template("staff/login.html", error="Unknown username or wrong password.",
                               username=username), 401
    sign_in_staff(account)
    target = request.form.get("next", "")
    # Only a local path: never send a signed-in user to another site.
    if not (target.startswith("/") and not target.startswith("//")):
        target = url_for(HOME[account.role])
    return redirect(target)


@blueprint.post("/logout")
def logout():
    sign_out()
    return redirect(url_for("staff.login_form"))
