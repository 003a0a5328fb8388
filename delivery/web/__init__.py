"""The web application: an app factory and one blueprint per user."""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, Mapping

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from delivery.answers import AnswerStore
from delivery.web import context
from itembank.program import load_program
from persistence import create_database_engine, database_url, session_factory
from itembank.encryption import check_content_keys
from persistence.migrate import check_schema

csrf = CSRFProtect()


def create_app(settings: Mapping[str, Any] | None = None) -> Flask:
    """Build the application.

    Settings (each also read from the environment by default): DATABASE_URL
    (``CBT_DATABASE_URL``), PROGRAM (``CBT_PROGRAM``), SECRET_KEY
    (``CBT_SECRET_KEY`` or the file ``var/secret_key``, created on first use),
    SECURE_COOKIES (``CBT_SECURE_COOKIES=1`` behind HTTPS), CLOCK_POLL_SECONDS
    (``CBT_CLOCK_POLL_SECONDS``, 5) and BOARD_POLL_SECONDS (``CBT_BOARD_POLL_SECONDS``, 3).
    """
    app = Flask(__name__)
    app.config.from_mapping(
        DATABASE_URL=database_url(),
        PROGRAM=os.environ.get("CBT_PROGRAM"),
        SECURE_COOKIES=os.environ.get("CBT_SECURE_COOKIES") == "1",
        # How often the candidate's page reads the server's clock (a pause shows within this),
        # and how often the proctor's board refreshes: see docs/benchmarks.md for their cost.
        CLOCK_POLL_SECONDS=int(os.environ.get("CBT_CLOCK_POLL_SECONDS", "5")),
        BOARD_POLL_SECONDS=int(os.environ.get("CBT_BOARD_POLL_SECONDS", "3")),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # A sitting lasts hours; the token is bound to the session instead.
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_HEADERS=["X-CSRFToken"],
        MAX_CONTENT_LENGTH=1 * 1024 * 1024,
        JSON_SORT_KEYS=False,
    )
    if settings:
        app.config.update(settings)
    app.config.setdefault("SECRET_KEY", None)
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = _secret_key()
    app.config["SESSION_COOKIE_SECURE"] = bool(app.config["SECURE_COOKIES"])

    engine = app.config.get("ENGINE") or create_database_engine(app.config["DATABASE_URL"])
    check_schema(engine)
    # A missing or wrong content key refuses start-up, before any request needs an item.
    with session_factory(engine)() as session:
        check_content_keys(session)
    program = load_program(app.config["PROGRAM"])
    app.extensions["cbt"] = context.Resources(
        engine=engine,
        sessions=session_factory(engine),
        program=program,
        answers=AnswerStore(engine),
        clock=app.config.get("CLOCK") or context.system_clock,
    )
    # Before CSRF, which reads the form: item bank imports may be larger than other requests.
    app.before_request(_upload_limits)
    csrf.init_app(app)

    from delivery.web import candidate, errors, proctor, psychometrician, public, staff

    app.register_blueprint(candidate.blueprint)
    app.register_blueprint(public.blueprint)
    app.register_blueprint(staff.blueprint)
    app.register_blueprint(proctor.blueprint)
    app.register_blueprint(psychometrician.blueprint)
    errors.register(app)
    app.teardown_appcontext(context.close_session)
    app.after_request(_security_headers)
    app.jinja_env.globals["program"] = program
    return app


# Paths that take uploads bigger than MAX_CONTENT_LENGTH, and their limit.
UPLOAD_LIMITS = {"/bank/exchange/import/": 50 * 1024 * 1024, "/bank/items/": 2 * 1024 * 1024}


def _upload_limits() -> None:
    from flask import request

    for prefix, limit in UPLOAD_LIMITS.items():
        if request.path.startswith(prefix):
            request.max_content_length = limit
            return


def _secret_key() -> str:
    key = os.environ.get("CBT_SECRET_KEY")
    if key:
        return key
    path = Path(os.environ.get("CBT_VAR_DIR", "var")) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip()


def _security_headers(response):
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'",
    )
    if response.mimetype == "application/json" or response.mimetype == "text/html":
        response.headers.setdefault("Cache-Control", "no-store")
    return response
