"""Structured logs and the request id: one JSON object a line, the id from the trusted proxy
(or the app's own) in the log lines, the response header and the error page."""
from __future__ import annotations

import io
import json
import logging
import re

import pytest

from delivery.web import create_app
from delivery.web.observability import JsonFormatter, RequestIdFilter, logging_config

NGINX_ID = "0f8fad5bd9cb469fa16570867728950e"  # what nginx's $request_id looks like


@pytest.fixture
def proxied(engine, clock):
    """The app behind one trusted proxy (nginx on this host)."""
    return create_app({"ENGINE": engine, "SECRET_KEY": "test-secret", "TESTING": True, "CLOCK": clock,
                       "TRUSTED_PROXIES": 1})


@pytest.fixture
def lines():
    """What the app logs, formatted as the servers format it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_the_proxy_s_request_id_is_carried_to_the_response_and_every_log_line(proxied, lines):
    response = proxied.test_client().get("/healthz", headers={"X-Request-ID": NGINX_ID})
    assert response.headers["X-Request-ID"] == NGINX_ID
    request_line = [entry for entry in lines() if entry["logger"] == "delivery.web.requests"]
    assert request_line == [{**request_line[0], "level": "info", "request_id": NGINX_ID, "method": "GET",
                             "path": "/healthz", "endpoint": "operations.healthz", "status": 200}]
    assert isinstance(request_line[0]["ms"], float) and request_line[0]["time"].endswith("+00:00")


def test_a_request_id_from_elsewhere_is_not_taken(proxied, client):
    # From a peer that is not the proxy, and directly with no proxy configured: the app's own id.
    outside = proxied.test_client().get("/healthz", headers={"X-Request-ID": NGINX_ID},
                                        environ_base={"REMOTE_ADDR": "203.0.113.7"})
    direct = client.get("/healthz", headers={"X-Request-ID": NGINX_ID})
    # Through the proxy, but not an id (a header cannot write into the log).
    forged = proxied.test_client().get("/healthz", headers={"X-Request-ID": 'x" injected\\n'})
    for response in (outside, direct, forged):
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])
        assert response.headers["X-Request-ID"] != NGINX_ID


def test_the_error_page_shows_the_request_id_and_the_trace_goes_to_the_log_with_it(engine, clock, lines):
    app = create_app({"ENGINE": engine, "SECRET_KEY": "test-secret", "TESTING": True, "CLOCK": clock,
                      "TRUSTED_PROXIES": 1})

    def broken():
        raise RuntimeError("something inside broke")

    app.add_url_rule("/broken", "broken", broken)
    response = app.test_client().get("/broken", headers={"X-Request-ID": NGINX_ID, "Accept": "text/html"})
    page = response.get_data(as_text=True)
    assert response.status_code == 500 and NGINX_ID in page and "Traceback" not in page
    errors = [entry for entry in lines() if entry["level"] == "error"]
    assert len(errors) == 1 and errors[0]["request_id"] == NGINX_ID
    assert errors[0]["message"] == "unhandled error on GET /broken"
    assert "RuntimeError: something inside broke" in errors[0]["exception"]
    # The not-found page too: what the user reads out finds the line.
    missing = app.test_client().get("/no-such-page", headers={"X-Request-ID": NGINX_ID})
    assert missing.status_code == 404 and NGINX_ID in missing.get_data(as_text=True)


def test_a_log_line_outside_a_request_and_the_text_form():
    record = logging.LogRecord("cbt.test", logging.WARNING, __file__, 1, "disk %s%% full", (93,), None)
    RequestIdFilter().filter(record)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "disk 93% full" and entry["level"] == "warning" and "request_id" not in entry
    config = logging_config("info", "text")
    assert "%(request_id)s" in config["formatters"]["main"]["format"]
    assert logging.Formatter(config["formatters"]["main"]["format"]).format(record).endswith("[None] disk 93% full")
