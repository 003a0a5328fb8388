"""Bad input never gives a 500 (issue 13): every route of the app, as every kind of caller,
with hostile values in its URL, its query string, its form and its JSON body.

The routes come from the app's url_map, so a route added later is walked too. A hostile
value is one a user (or an attacker) can type: integers past any database's range, huge
strings, path tricks, control characters, dates that are not dates, JSON nested deeper than
any parser recurses.
"""
from __future__ import annotations

import inspect
import re

import pytest

from tests.helpers import booked_candidate, csrf_token, login_candidate, login_staff, start_sitting

HOSTILE = ["99999999999999999999999", "9223372036854775808", "-9223372036854775809", "2147483648", "-1", "0",
           "1e309", "NaN", "x" * 5000, "../../etc/passwd", "%00", "\x00", "2000-13-45", "ア" * 300, ""]
# The names views read from the query string or a form, and a few that no view reads.
FIELD_VALUES = ["99999999999999999999999", "2147483648", "-1", "1e309", "x" * 5000, "\x00", "2000-13-45", ""]
URL_VALUES = {"int": ["99999999999999999999999", "2147483648", "0"],
              "default": ["x" * 3000, "..%2F..", "NOPE", "%00"]}
DEEP_JSON = b"[" * 100_000 + b"]" * 100_000


def _urls(rule) -> tuple[str, list[str]]:
    """The rule's path with plain arguments, and with each hostile value in every argument."""
    kinds = {name: ("int" if type(converter).__name__ == "IntegerConverter" else "default")
             for name, converter in rule._converters.items()}

    def path(chosen: dict[str, str]) -> str:
        text = rule.rule
        for name, value in chosen.items():
            text = re.sub(r"<(?:[^:<>]+:)?" + name + r">", value, text)
        return text

    plain = path({name: "1" if kind == "int" else "x" for name, kind in kinds.items()})
    hostile = [path({name: value for name in kinds}) for kind in set(kinds.values()) for value in URL_VALUES[kind]]
    return plain, hostile


@pytest.fixture
def callers(app, session, program, clock):
    """A signed-in client of every kind: anyone, a seat with a started sitting, an applicant,
    a proctor of the seat's centre, a psychometrician."""
    booked = booked_candidate(session, program, clock.now)
    seat = app.test_client()
    login_candidate(seat, booked)
    start_sitting(seat)
    proctor = app.test_client()
    login_staff(proctor, booked.proctor, booked.password)
    psychometrician = app.test_client()
    login_staff(psychometrician, "psychometrician", "psychometrician-demo-pass")
    applicant = app.test_client()
    applicant.post("/booking/register", data={
        "csrf_token": csrf_token(applicant, "/booking/register"), "name": "Hanako Yamada",
        "date_of_birth": "2001-02-03", "email": "hostile-walker@example.com", "password": "a-good-long-password",
        "occupation": "student", "company_type": ""})
    return {"anyone": app.test_client(), "seat": seat, "applicant": applicant, "proctor": proctor,
            "psychometrician": psychometrician}


def _fields_read_by(view) -> set[str]:
    """The request fields a view reads by name: every field is then made hostile on its own,
    since the first bad field would hide the others."""
    source = inspect.getsource(view)
    names = set(re.findall(r"""(?:args|form|values|body|files|json)(?:\.get(?:list)?\(|\[)\s*["']([a-z_]+)["']""", source))
    return names | {"slot", "centre", "category", "date"}


def _send(client, method: str, url: str, fields: dict, token: str):
    if method == "GET":
        return client.get(url, query_string=fields)
    if url.startswith("/api/"):
        return client.open(url, method=method, json=fields, headers={"X-CSRFToken": token})
    return client.open(url, method=method, data={**fields, "csrf_token": token})


def _audience(clients: dict, tokens: dict, rule, method: str, url: str):
    """The first caller a plain request to the route lets through (not sent to sign in or refused)."""
    for kind, client in clients.items():
        response = _send(client, method, url, {}, tokens[kind])
        if response.status_code not in (401, 403) and "/login" not in response.headers.get("Location", "") \
                and "/sign-in" not in response.headers.get("Location", ""):
            return kind, client
    return "anyone", clients["anyone"]


def test_every_route_answers_hostile_values_with_a_clear_4xx_never_a_500(app, callers):
    tokens = {kind: csrf_token(client, "/staff/login") for kind, client in callers.items()}
    failures, sent = [], 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        names = sorted(_fields_read_by(app.view_functions[rule.endpoint]))
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if rule.endpoint.endswith(("logout", "sign_out", "finish")) and method == "POST":
                continue  # would end the caller's session for the routes after it
            plain, hostile = _urls(rule)
            kind, client = _audience(callers, tokens, rule, method, plain)
            for url in hostile:
                response = _send(client, method, url, {}, tokens[kind])
                sent += 1
                if response.status_code >= 500:
                    failures.append(f"{kind} {method} {url[:60]}: {response.status_code}")
            for name in names:
                for value in FIELD_VALUES:
                    response = _send(client, method, plain, {name: value}, tokens[kind])
                    sent += 1
                    if response.status_code >= 500:
                        failures.append(f"{kind} {method} {plain} {name}={value[:24]!r}: {response.status_code}")
            if rule.rule.startswith("/api/") and method in ("PUT", "POST"):
                response = client.open(plain, method=method, data=DEEP_JSON, content_type="application/json",
                                       headers={"X-CSRFToken": tokens[kind]})
                if response.status_code >= 500:
                    failures.append(f"{kind} {method} {plain} JSON nested 100,000 deep: {response.status_code}")
    assert sent > 500
    assert failures == [], f"{len(failures)} of {sent} requests got a 5xx:\n" + "\n".join(failures[:60])
