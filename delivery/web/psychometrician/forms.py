"""Pre-assembled forms: assembly in batches, review, publication, retirement."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _

from delivery.web.context import db, now, program
from delivery.web.errors import http_status
from delivery.web.i18n import user_message
from delivery.web.psychometrician.common import actor
from delivery.web.psychometrician.inputs import AssembleForm, ReasonForm, RequiredReasonForm
from itembank import forms as form_service
from itembank.assembly import AssemblyError
from persistence.errors import DomainError

blueprint = Blueprint("forms", __name__, url_prefix="/forms")


def _forms_page(form: AssembleForm | None = None, status: int = 200):
    return render_template("psychometrician/forms.html", forms=form_service.forms(db(), program()),
                           settings=program().assembly,
                           form=form or AssembleForm(formdata=None, data={"count": 5, "note": ""})), status


@blueprint.get("")
def forms_list():
    return _forms_page()


@blueprint.post("")
def assemble_forms():
    form = AssembleForm()
    if not form.validate():
        return _forms_page(form, 422)
    try:
        made = form_service.assemble_batch(db(), program(), form.count.data, note=form.note.data, now=now(),
                                           **actor())
    except AssemblyError as error:
        form.form_errors.append(_("The forms cannot be assembled: %(why)s", why=user_message(error)))
        return _forms_page(form, 422)
    except DomainError as error:
        form.refuse(error)
        return _forms_page(form, http_status(error))
    flash(_("%(n)s draft forms assembled: %(codes)s. Review each before publishing.", n=len(made),
            codes=", ".join(f.code for f in made)))
    return redirect(url_for(".forms_list"))


def _form_page(code: str, *, publish: ReasonForm | None = None, retire: RequiredReasonForm | None = None,
               status: int = 200):
    form = form_service.form_by_code(db(), code)
    return render_template("psychometrician/form.html", review=form_service.review(db(), program(), form), form=form,
                           publish=publish or ReasonForm(formdata=None),
                           retire=retire or RequiredReasonForm(formdata=None)), status


@blueprint.get("/<code>")
def form_review(code: str):
    return _form_page(code)


@blueprint.post("/<code>/publish")
def publish_form(code: str):
    form = ReasonForm()
    try:
        form.checked()
        form_service.publish(db(), program(), code, reason=(form.reason.data or "").strip(), now=now(), **actor())
    except DomainError as error:
        form.refuse(error)
        return _form_page(code, publish=form, status=http_status(error))
    if program().assembly.method == "forms":
        flash(_("%(code)s is published.", code=code))
    else:
        flash(_("%(code)s is published (the program assembles on the fly today: it is drawn once the method is "
                "\"forms\").", code=code))
    return redirect(url_for(".form_review", code=code))


@blueprint.post("/<code>/retire")
def retire_form(code: str):
    form = RequiredReasonForm()
    try:
        form.checked()
        form_service.retire(db(), code, reason=(form.reason.data or "").strip(), now=now(), **actor())
    except DomainError as error:
        form.refuse(error)
        return _form_page(code, retire=form, status=http_status(error))
    flash(_("%(code)s is retired.", code=code))
    return redirect(url_for(".form_review", code=code))
