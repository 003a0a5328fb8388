"""What operators watch: Prometheus metrics, JSON log lines, and the request id that ties
nginx's log, the app's log and the page a user sees together.

- **Metrics** (prometheus_client): one :class:`Metrics` per app, on a registry of its own.
  Under gunicorn every worker process writes its values to files in
  ``PROMETHEUS_MULTIPROC_DIR`` (``delivery.web.gunicorn_config`` makes the folder) and
  ``/metrics`` adds up the files of every live worker of the instance, so one scrape of
  an instance counts all its workers. Counted from outside the views, so that the views
  stay as they are: requests by endpoint and status (``after_request``), the answers saved
  and the saves refused (the answer endpoint's status), throttled sign-ins (a 429 from a
  sign-in endpoint), sittings started and finished (a change of ``Sitting.status``
  committed by the request's session) and the database pool's connections in use (the
  pool's checkout and checkin events).
- **Request id**: nginx sends ``X-Request-ID`` (its ``$request_id``); the app takes it only
  from a trusted proxy (see :class:`delivery.web.TrustedProxies`), else makes its own. It is
  in every log line written while the request runs, in the response's ``X-Request-ID``
  header, and on the error page, so that what a user reads out can be found in the logs.
- **JSON logs**: :class:`JsonFormatter`, one object a line, installed by the gunicorn config
  (and by ``cbt serve``) with :func:`logging_config`.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import time
import traceback
from typing import Any

from flask import Flask, Response, g, has_request_context, request
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, sessionmaker

REQUEST_ID_HEADER = "X-Request-ID"
# What a request id from the proxy may look like (nginx's $request_id is 32 hex digits): anything
# else is replaced, so that a header cannot write into the log lines.
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
# The WSGI environ key set by delivery.web.TrustedProxies when the peer is a proxy we trust.
TRUSTED_PEER = "cbt.trusted_proxy"

# Seconds. The hot path's requests take milliseconds; the start and a finish up to a second or two
# under a synchronised start; anything past 10 s is a problem whatever it was.
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)

SIGN_IN_ENDPOINTS = {"candidate.login": "seat", "staff.login": "staff", "candidate.booking_sign_in": "applicant"}
ANSWER_ENDPOINT = "candidate.save_answer"

requests_log = logging.getLogger("delivery.web.requests")


class Metrics:
    """The app's metrics, registered on ``registry`` (a new one by default); their values in
    files under ``multiprocess_dir`` when given (its name must be in PROMETHEUS_MULTIPROC_DIR,
    where prometheus_client looks for it)."""

    def __init__(self, registry: CollectorRegistry | None = None, multiprocess_dir=None):
        if multiprocess_dir is not None and not getattr(values.ValueClass, "_multiprocess", False):
            # prometheus_client picks file-backed values when it is first imported with
            # PROMETHEUS_MULTIPROC_DIR set; gunicorn's master imports this package (for the config
            # module) before the config can set it, so pick them here, before any metric exists.
            values.ValueClass = values.MultiProcessValue()
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.request_seconds = Histogram(
            "cbt_http_request_duration_seconds", "Time the app took for a request, by endpoint and method",
            ["endpoint", "method"], buckets=LATENCY_BUCKETS, registry=r)
        self.responses = Counter("cbt_http_responses", "Responses by endpoint, method and status",
                                 ["endpoint", "method", "status"], registry=r)
        self.answers_saved = Counter("cbt_answers_saved", "Answer saves acknowledged to the candidate", registry=r)
        self.saves_failed = Counter("cbt_answer_saves_failed",
                                    "Answer saves not acknowledged, by HTTP status (the page retries 423, 429 and 5xx)",
                                    ["status"], registry=r)
        self.sittings_started = Counter("cbt_sittings_started", "Sittings whose clock was started", registry=r)
        self.sittings_finished = Counter("cbt_sittings_finished",
                                         "Sittings closed: finished (by the candidate or the clock) or ended (by a proctor)",
                                         ["status"], registry=r)
        self.sign_ins_throttled = Counter("cbt_sign_ins_throttled",
                                          "Sign-ins refused by the login throttle (429), by kind of sign-in",
                                          ["kind"], registry=r)
        self.pool_in_use = Gauge("cbt_database_connections_in_use", "Database connections checked out of the pool",
                                 registry=r, multiprocess_mode="livesum")
        self.pool_limit = Gauge("cbt_database_connections_limit",
                                "Connections the pool may open (pool size plus overflow)",
                                registry=r, multiprocess_mode="livesum")

    def exposition(self, multiprocess_dir) -> bytes:
        """The text a scrape gets: every live worker's values when ``multiprocess_dir`` is set."""
        if multiprocess_dir is not None:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=str(multiprocess_dir))
            return generate_latest(registry)
        return generate_latest(self.registry)


def metrics() -> Metrics:
    from flask import current_app

    return current_app.extensions["cbt.metrics"]


def request_id() -> str | None:
    """The current request's id (None outside a request)."""
    if not has_request_context():
        return None
    return g.get("request_id")


def _begin() -> None:
    given = request.headers.get(REQUEST_ID_HEADER, "") if request.environ.get(TRUSTED_PEER) else ""
    g.request_id = given if REQUEST_ID.match(given) else os.urandom(16).hex()
    g.request_started = time.perf_counter()


def _response_hook(m: Metrics):
    """The after-request hook counting into ``m``; label children cached (a lookup costs more than the count)."""
    children: dict[tuple[str, str, int], tuple] = {}

    def end(response: Response) -> Response:
        seconds = time.perf_counter() - g.get("request_started", time.perf_counter())
        endpoint = request.endpoint or "unmatched"
        method, status = request.method, response.status_code
        key = (endpoint, method, status)
        counted = children.get(key)
        if counted is None:
            counted = children[key] = (m.request_seconds.labels(endpoint, method),
                                       m.responses.labels(endpoint, method, str(status)))
        counted[0].observe(seconds)
        counted[1].inc()
        if endpoint == ANSWER_ENDPOINT:
            if status == 200:
                m.answers_saved.inc()
            else:
                m.saves_failed.labels(str(status)).inc()
        elif status == 429 and endpoint in SIGN_IN_ENDPOINTS:
            m.sign_ins_throttled.labels(SIGN_IN_ENDPOINTS[endpoint]).inc()
        if "request_id" in g:
            response.headers[REQUEST_ID_HEADER] = g.request_id
        if requests_log.isEnabledFor(logging.INFO):
            requests_log.info("%s %s %d", method, request.path, status, extra={
                "method": method, "path": request.path, "endpoint": endpoint, "status": status,
                "ms": round(seconds * 1e3, 2), "client": request.remote_addr})
        return response

    return end


def _count_sitting_changes(sessions: sessionmaker[Session], m: Metrics) -> None:
    """Count the sittings a session started and closed, once its transaction commits."""
    from delivery.models import Sitting

    key = "cbt.sitting_changes"

    def after_flush(session: Session, _context) -> None:
        for instance in session.dirty:
            if isinstance(instance, Sitting):
                history = inspect(instance).attrs.status.history
                if history.added and history.deleted:
                    session.info.setdefault(key, []).append((history.deleted[0], history.added[0]))

    def after_commit(session: Session) -> None:
        for old, new in session.info.pop(key, ()):
            if old == "waiting" and new == "in_progress":
                m.sittings_started.inc()
            elif new in ("finished", "ended") and old not in ("finished", "ended"):
                m.sittings_finished.labels(new).inc()

    def after_rollback(session: Session) -> None:
        session.info.pop(key, None)

    event.listen(sessions, "after_flush", after_flush)
    event.listen(sessions, "after_commit", after_commit)
    event.listen(sessions, "after_soft_rollback", lambda session, _previous: after_rollback(session))


def _count_pool(engine, m: Metrics) -> None:
    pool = engine.pool
    size, overflow = getattr(pool, "size", None), getattr(pool, "_max_overflow", 0)
    if callable(size):
        m.pool_limit.set(size() + max(overflow, 0))
    event.listen(engine, "checkout", lambda *_: m.pool_in_use.inc())
    event.listen(engine, "checkin", lambda *_: m.pool_in_use.dec())


def install(app: Flask, engine, sessions: sessionmaker[Session]) -> Metrics:
    """Give ``app`` its metrics and request ids (the first hook before any other, the last after)."""
    m = Metrics(multiprocess_dir=app.config.get("METRICS_DIR"))
    app.extensions["cbt.metrics"] = m
    app.before_request_funcs.setdefault(None, []).insert(0, _begin)
    app.after_request(_response_hook(m))  # after_request hooks run last-registered first: this one runs last
    _count_sitting_changes(sessions, m)
    _count_pool(engine, m)

    @app.context_processor
    def _request_id() -> dict[str, Any]:
        return {"request_id": request_id()}

    return m


# ---- logs ---------------------------------------------------------------------------------------

# The attributes every LogRecord has: the rest were given with ``extra=`` and go into the object.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "request_id"}


class RequestIdFilter(logging.Filter):
    """Put the current request's id (if any) on every record, for both formatters."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC), level, logger, message, request_id, any ``extra``
    fields, and the exception's trace as one string."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid:
            entry["request_id"] = rid
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                entry[name] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        if record.exc_info:
            entry["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def logging_config(level: str = "warning", form: str = "json") -> dict:
    """A ``logging.config.dictConfig`` dictionary: every logger to stderr, in ``form``; gunicorn's
    loggers too (its access log, when on, goes to the same stream as the app's lines)."""
    formatter = ({"()": "delivery.web.observability.JsonFormatter"} if form == "json"
                 else {"format": TEXT_FORMAT})
    handler = {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "main",
               "filters": ["request_id"]}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "delivery.web.observability.RequestIdFilter"}},
        "formatters": {"main": formatter},
        "handlers": {"main": handler},
        "root": {"level": level.upper(), "handlers": ["main"]},
        "loggers": {
            "gunicorn.error": {"level": level.upper(), "handlers": ["main"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["main"], "propagate": False},
        },
    }


def gunicorn_logging_config(level: str, form: str, access_log: str | None) -> dict:
    """:func:`logging_config` for gunicorn: its access log (off unless ``CBT_ACCESS_LOG`` names a
    file, or ``-`` for stderr) in the same form; nginx's access log already has every request."""
    config = logging_config(level, form)
    if access_log and access_log != "-":
        config["handlers"]["access"] = {"class": "logging.FileHandler", "filename": access_log,
                                        "formatter": "main", "filters": ["request_id"]}
        config["loggers"]["gunicorn.access"]["handlers"] = ["access"]
    return config


def _gunicorn_logger_class():
    from gunicorn.glogging import Logger

    class GunicornLogger(Logger):
        """gunicorn's logger, which builds an access line for every request whenever a logging
        dictionary is configured: here only when an access log was asked for."""

        def _compute_access_log_enabled(self):
            return bool(self.cfg.accesslog)

    return GunicornLogger


def __getattr__(name: str):
    # gunicorn's logger_class names this; gunicorn is imported only when gunicorn runs us.
    if name == "GunicornLogger":
        return _gunicorn_logger_class()
    raise AttributeError(name)
