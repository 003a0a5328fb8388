"""Staff sign-in, shared by proctors and psychometricians."""
from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from centers import accounts
from centers.passwords import MAX_LENGTH, MIN_LENGTH, WrongPassword
from delivery.throttle import LoginThrottled
from delivery.web.auth import (
    client_address,
    current_staff,
    local_path,
    sign_in_staff,
    sign_in_token,
    sign_out,
    staff_required,
    throttled_sign_in,
)
from delivery.web.context import db, now
from delivery.web.errors import too_many_attempts
from delivery.web.i18n import user_message
from persistence import typed_input
from persistence.errors import InvalidInput, NotSignedIn

blueprint = Blueprint("staff", __name__, url_prefix="/staff")

HOME = {"proctor": "proctor.board", "psychometrician": "psychometrician.bank_list"}
USERNAME_LENGTH = 64


@blueprint.get("/login")
def login_form():
    return render_template("staff/login.html", next=request.args.get("next", ""))


@blueprint.post("/login")
def login():
    username = typed_input.plain(request.form.get("username"))[:USERNAME_LENGTH]  # ｐｒｏｃｔｏｒ is proctor
    password = request.form.get("password", "")
    try:
        account, token = throttled_sign_in("staff", username, lambda: accounts.sign_in(
            db(), username, password, client=client_address(), now=now()))
    except LoginThrottled as refused:
        return too_many_attempts(render_template("staff/login.html", error=user_message(refused), username=username),
                                 refused)
    except NotSignedIn as refused:
        return render_template("staff/login.html", error=user_message(refused), username=username), 401
    sign_in_staff(account, token)
    return redirect(local_path(request.form.get("next", ""), url_for(HOME[account.role])))


@blueprint.post("/logout")
def logout():
    accounts.sign_out(db(), current_staff(), sign_in_token(), client=client_address(), now=now())
    sign_out()
    return redirect(url_for("staff.login_form"))


@blueprint.route("/password", methods=["GET", "POST"])
@staff_required("proctor", "psychometrician")
def password():
    """A staff member's own new password; every other sign-in of the account ends."""
    page = {"min_length": MIN_LENGTH, "max_length": MAX_LENGTH}
    if request.method == "GET":
        return render_template("staff/password.html", **page)
    current, new = request.form.get("current_password", ""), request.form.get("password", "")
    try:
        token = throttled_sign_in("staff", g.staff.username, lambda: accounts.change_own_password(
            db(), g.staff.id, current, new, client=client_address(), now=now()), wrong=(WrongPassword,))
    except LoginThrottled as refused:
        return too_many_attempts(render_template("staff/password.html", error=user_message(refused), **page), refused)
    except InvalidInput as error:
        return render_template("staff/password.html", error=user_message(error), **page), 422
    sign_in_staff(g.staff, token)
    flash(_("Your password is changed; every other sign-in of your account has ended."))
    return redirect(url_for(HOME[g.staff.role]))
