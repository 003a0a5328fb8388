"""The OpenAPI 3.1 document of the JSON API, kept in the repository beside this module
(``openapi.json``) and served at ``/api/openapi.json``.

The document is written by hand for the shipped program (100 items of 4 options);
served, it states the running program's numbers of items and options. The tests
check it against the app's routes and against the API's real answers
(tests/test_openapi_fuzz.py).
"""
from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path

from flask import Blueprint, jsonify

from delivery.web.context import program

DOCUMENT = Path(__file__).with_name("openapi.json")

blueprint = Blueprint("openapi", __name__)


@cache
def document() -> dict:
    return json.loads(DOCUMENT.read_text())


def for_program(items_per_sitting: int, options_per_item: int) -> dict:
    """The document with the program's bounds on positions and options."""
    served = copy.deepcopy(document())
    components = served["components"]
    components["parameters"]["Position"]["schema"]["maximum"] = items_per_sitting
    components["schemas"]["PositionChange"]["properties"]["position"]["maximum"] = items_per_sitting
    components["schemas"]["AnswerChange"]["properties"]["option"]["maximum"] = options_per_item - 1
    return served


@blueprint.get("/api/openapi.json")
def openapi_document():
    return jsonify(for_program(program().items_per_sitting, len(program().option_labels)))
