"""Import and export: native JSON, QTI packages, and the response data of finished sittings."""
from __future__ import annotations

import json

from flask import Blueprint, render_template, request

from delivery import pretest
from delivery.web.context import db, now, program
from delivery.web.psychometrician.common import actor, download, read_filter
from delivery.web.psychometrician.inputs import NativeImportForm, QtiImportForm, Window
from itembank import exchange, qti

blueprint = Blueprint("exchange", __name__, url_prefix="/exchange")


def _exchange_page(qti_form: QtiImportForm | None = None, native_form: NativeImportForm | None = None,
                   status: int = 200):
    return render_template("psychometrician/exchange.html", versions=list(qti.VERSIONS), modes=exchange.IMPORT_MODES,
                           qti_form=qti_form or QtiImportForm(formdata=None),
                           native_form=native_form or NativeImportForm(formdata=None)), status


def _report_page(report: exchange.ImportReport, name: str):
    return render_template("psychometrician/import_report.html", report=report, name=name), (
        200 if report.landed or not report.rejected else 422)


@blueprint.get("")
def exchange_page():
    return _exchange_page()


@blueprint.post("/import/qti")
def import_qti():
    form = QtiImportForm()
    if not form.validate():
        return _exchange_page(qti_form=form, status=422)
    upload = form.package.data
    report = exchange.import_qti(db(), program(), upload.read(), mode=form.mode.data, category=form.category.data,
                                 name=upload.filename, now=now(), **actor())
    return _report_page(report, upload.filename)


@blueprint.post("/import/native")
def import_native():
    form = NativeImportForm()
    if not form.validate():
        return _exchange_page(native_form=form, status=422)
    upload = form.package.data
    report = exchange.import_bank(db(), program(), upload.read(), mode=form.mode.data, name=upload.filename,
                                  now=now(), **actor())
    return _report_page(report, upload.filename)


@blueprint.get("/export.json")
def export_native():
    document = exchange.export_bank(db(), program(), now=now(), **actor())
    return download(json.dumps(document, ensure_ascii=False, indent=1), f"item-bank-{now():%Y%m%d}.json",
                    "application/json")


@blueprint.get("/export-qti")
def export_qti():
    version = request.args.get("version", "2.1")
    status = request.args.get("status") or None
    package = exchange.export_qti(db(), program(), version=version, status=status, now=now(), **actor())
    return download(package, f"item-bank-qti{version.replace('.', '')}-{now():%Y%m%d}.zip", "application/zip")


@blueprint.get("/responses.csv")
def export_responses():
    """Responses of finished sittings in the RESPONSES.csv format of `cbt calibrate`."""
    window = read_filter(Window(request.args))
    body = pretest.export_responses(db(), finished_from=window.start.moment, finished_to=window.end.moment,
                                    now=now(), **actor())
    return download(body, f"responses-{now():%Y%m%d}.csv", "text/csv")


@blueprint.get("/anchors.csv")
def export_anchors():
    """The parameters of the versions answered in scored slots, as PARAMS.csv for `cbt calibrate --fixed`."""
    window = read_filter(Window(request.args))
    body = pretest.export_anchors(db(), finished_from=window.start.moment, finished_to=window.end.moment,
                                  now=now(), **actor())
    return download(body, f"anchors-{now():%Y%m%d}.csv", "text/csv")
