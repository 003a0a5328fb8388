"""The OpenAPI 3.1 document of the JSON API, kept in the repository beside this module
(``openapi.json``) and served at ``/api/openapi.json``.

The document is written by hand and checked by the tests against the app's routes
and against the API's real answers (tests/test_openapi_fuzz.py).
"""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from flask import Blueprint, jsonify

DOCUMENT = Path(__file__).with_name("openapi.json")

blueprint = Blueprint("openapi", __name__)


@cache
def document() -> dict:
    return json.loads(DOCUMENT.read_text())


@blueprint.get("/api/openapi.json")
def openapi_document():
    return jsonify(document())
