"""The web application: an app factory and one blueprint per user."""
from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import secrets
from pathlib import Path
from typing import Any, Mapping

from flask import Flask, request
from flask.json.provider import DefaultJSONProvider
from flask_wtf.csrf import CSRFProtect
from gunicorn.errors import AppImportError
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from delivery.answers import AnswerStore
from delivery.throttle import ThrottlePolicy
from delivery.web import context, observability
from itembank.content import ContentKeyError
from itembank.encryption import check_content_keys
from itembank.keyring import KeyringError
from itembank.program import load_program
from persistence import create_database_engine, session_factory
from persistence.files import private_directory
from persistence.migrate import SchemaError, check_schema
from persistence.settings import Settings, load_settings

csrf = CSRFProtect()


class StartupError(AppImportError):
    """The application refuses to start: the database is unreachable or not migrated, or the
    content keys cannot read the item bank. The message is one line that says what to fix.

    An AppImportError to gunicorn, which then prints the message alone and stops, where any
    other error from the factory is logged with its traceback by every worker it boots.
    """


def create_app(settings: Mapping[str, Any] | None = None) -> Flask:
    """Build the application.

    Settings (each also read from the environment by default): DATABASE_URL
    (``CBT_DATABASE_URL``), PROGRAM (``CBT_PROGRAM``), SECRET_KEY
    (``CBT_SECRET_KEY`` or the file ``var/secret_key``, created on first use),
    SECURE_COOKIES (``CBT_SECURE_COOKIES=1`` behind HTTPS: Secure cookies and HSTS),
    TRUSTED_PROXIES (``CBT_TRUSTED_PROXIES``, 0: how many reverse proxies in front set
    X-Forwarded-For and X-Forwarded-Proto), PROXY_ADDRESSES (``CBT_PROXY_ADDRESSES``: the
    addresses those headers are taken from), CLOCK_POLL_SECONDS
    (``CBT_CLOCK_POLL_SECONDS``, 15) and BOARD_POLL_SECONDS (``CBT_BOARD_POLL_SECONDS``, 5);
    LOGIN_THROTTLE (a :class:`delivery.throttle.ThrottlePolicy`) only as a setting.
    See docs/security.md and docs/deployment.md.
    """
    app = CBTFlask(__name__)
    app.json = BoundedJSON(app)
    app.url_map.converters["int"] = DatabaseInteger
    deployment = load_settings()
    app.config.from_mapping(
        DATABASE_URL=deployment.database_url,
        PROGRAM=deployment.program,
        SECURE_COOKIES=deployment.secure_cookies,
        TRUSTED_PROXIES=deployment.trusted_proxies,
        PROXY_ADDRESSES=deployment.proxy_addresses,
        METRICS_DIR=deployment.metrics_dir,
        LOGIN_THROTTLE=ThrottlePolicy(),
        # How often the candidate's page reads the server's clock (a pause shows within this),
        # and how often the proctor's board refreshes: see docs/loadtests.md for their cost (a save
        # refused while paused shows a pause at once, whatever the interval).
        CLOCK_POLL_SECONDS=deployment.clock_poll_seconds,
        BOARD_POLL_SECONDS=deployment.board_poll_seconds,
        SESSION_COOKIE_HTTPONLY=True,
        # Lax: the cookie goes with top-level links into the site, never with a
        # cross-site form post or fetch (and CSRF tokens guard those anyway).
        SESSION_COOKIE_SAMESITE="Lax",
        # A session cookie's signature is good no longer than a sign-in may last (CBT_SESSION_HOURS).
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=deployment.session_hours),
        # The address printed in score reports and their QR codes (CBT_PUBLIC_URL), never the Host header.
        PUBLIC_URL=deployment.public_url,
        # A sitting lasts hours; the token is bound to the session instead.
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_HEADERS=["X-CSRFToken"],
        MAX_CONTENT_LENGTH=1 * 1024 * 1024,
        JSON_SORT_KEYS=False,
    )
    if settings:
        app.config.update(settings)
        if "SESSION_HOURS" in settings and "PERMANENT_SESSION_LIFETIME" not in settings:
            app.config["PERMANENT_SESSION_LIFETIME"] = dt.timedelta(hours=settings["SESSION_HOURS"])
    app.config["PUBLIC_URL"] = str(app.config["PUBLIC_URL"]).rstrip("/")
    app.config.setdefault("SECRET_KEY", None)
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = _secret_key(deployment)
    app.config["SESSION_COOKIE_SECURE"] = bool(app.config["SECURE_COOKIES"])
    if app.config["SESSION_COOKIE_SECURE"]:
        # The __Host- prefix: the browser keeps it only if Secure, for this host, on path /.
        app.config["SESSION_COOKIE_NAME"] = "__Host-session"
    if app.config["TRUSTED_PROXIES"]:
        # The client's address (login throttling) and scheme (HSTS) as the proxies saw them.
        app.wsgi_app = TrustedProxies(app.wsgi_app, app.config["TRUSTED_PROXIES"], app.config["PROXY_ADDRESSES"])

    engine = app.config.get("ENGINE") or create_database_engine(app.config["DATABASE_URL"])
    try:
        check_schema(engine)
        # A missing or wrong content key refuses start-up, before any request needs an item.
        with session_factory(engine)() as session:
            check_content_keys(session)
    except (SchemaError, ContentKeyError, KeyringError) as error:
        raise StartupError(str(error)) from error
    program = load_program(app.config["PROGRAM"])
    sessions = session_factory(engine)
    # First of the request hooks and last of the response hooks: the request id and the metrics.
    observability.install(app, engine, sessions)
    app.extensions["cbt"] = context.Resources(
        engine=engine,
        sessions=sessions,
        program=program,
        answers=AnswerStore(engine),
        clock=app.config.get("CLOCK") or context.system_clock,
    )
    # Before CSRF, which reads the form: item bank imports may be larger than other requests.
    app.before_request(_upload_limits)
    csrf.init_app(app)

    from delivery.web import (
        candidate,
        errors,
        i18n,
        openapi,
        operations,
        proctor,
        psychometrician,
        public,
        seats,
        staff,
    )

    i18n.init_app(app)

    app.register_blueprint(operations.blueprint)
    app.register_blueprint(candidate.blueprint)
    app.register_blueprint(openapi.blueprint)
    app.register_blueprint(public.blueprint)
    app.register_blueprint(staff.blueprint)
    app.register_blueprint(proctor.blueprint)
    app.register_blueprint(seats.blueprint)
    app.register_blueprint(psychometrician.blueprint)
    errors.register(app)
    app.teardown_appcontext(context.close_session)
    app.after_request(_security_headers)
    app.url_defaults(_static_version)
    app.jinja_env.globals["program"] = program
    return app


class CBTFlask(Flask):
    """Flask whose external URLs (``url_for(..., _external=True)``: the links and QR codes of
    score reports) start with the configured public address (``CBT_PUBLIC_URL``), never with the
    Host header of the request, which a client chooses."""

    def url_for(self, endpoint: str, *, _anchor=None, _method=None, _scheme=None, _external=None, **values) -> str:
        if not _external:
            return super().url_for(endpoint, _anchor=_anchor, _method=_method, **values)
        path = super().url_for(endpoint, _anchor=_anchor, _method=_method, _external=False, **values)
        if request:
            # The path after the application's own mount point: the public address names that.
            path = path[len(request.script_root):]
        return self.config["PUBLIC_URL"] + path


class DatabaseInteger(IntegerConverter):
    """``<int:...>`` in a URL: a whole number the database's ids can hold (a larger one is a
    404, like any id that names nothing, rather than a database error)."""

    def __init__(self, url_map, fixed_digits=0, min=None, max=2**31 - 1, signed=False):
        super().__init__(url_map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


class BoundedJSON(DefaultJSONProvider):
    """JSON request bodies: one nested deeper than the parser recurses is a 400, not a 500."""

    def loads(self, s, **kwargs):
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("the JSON is nested too deeply") from None


class TrustedProxies:
    """werkzeug's ProxyFix for requests whose peer is one of our proxies (``addresses``: addresses
    or networks); from any other peer the X-Forwarded-* and X-Request-ID headers are dropped, so
    a client that reaches the app around the proxy cannot claim another address or scheme."""

    DROPPED = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT",
               "HTTP_X_FORWARDED_PREFIX", "HTTP_X_REAL_IP", "HTTP_X_REQUEST_ID", "HTTP_FORWARDED")

    def __init__(self, app, count: int, addresses):
        self.app = app
        self.fixed = ProxyFix(app, x_for=count, x_proto=count)
        self.networks = [ipaddress.ip_network(address, strict=False) for address in addresses]

    def trusted(self, peer: str) -> bool:
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def __call__(self, environ, start_response):
        if self.trusted(environ.get("REMOTE_ADDR", "")):
            environ[observability.TRUSTED_PEER] = True
            return self.fixed(environ, start_response)
        for name in self.DROPPED:
            environ.pop(name, None)
        return self.app(environ, start_response)


_STATIC = Path(__file__).with_name("static")
_static_digests: dict[str, str] = {}


def _static_version(endpoint: str, values: dict) -> None:
    """``/static/x.js?v=<digest of x.js>``: a new file is a new URL, so nginx may let browsers
    keep static files for a year (docs/deployment.md)."""
    if endpoint != "static" or "v" in values or "filename" not in values:
        return
    name = values["filename"]
    if name not in _static_digests:
        try:
            _static_digests[name] = hashlib.sha256((_STATIC / name).read_bytes()).hexdigest()[:12]
        except OSError:
            return
    values["v"] = _static_digests[name]


# Paths that take uploads bigger than MAX_CONTENT_LENGTH, and their limit.
UPLOAD_LIMITS = {"/bank/exchange/import/": 50 * 1024 * 1024, "/bank/items/": 2 * 1024 * 1024}


def _upload_limits() -> None:
    """Paths that take uploads bigger than MAX_CONTENT_LENGTH get their own limit (the area that
    takes them defines it)."""
    from delivery.web.psychometrician import UPLOAD_LIMITS

    for prefix, limit in UPLOAD_LIMITS.items():
        if request.path.startswith(prefix):
            request.max_content_length = limit
            return


def _secret_key(deployment: Settings) -> str:
    if deployment.secret_key:
        return deployment.secret_key
    path = deployment.secret_key_file
    if not path.exists():
        private_directory(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip()


# Browser features no page of ours uses, switched off for every page.
PERMISSIONS_POLICY = ", ".join(f"{feature}=()" for feature in (
    "accelerometer", "camera", "display-capture", "geolocation", "gyroscope", "magnetometer", "microphone",
    "payment", "usb"))

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)

# One year, as HSTS preload lists ask; sent only when the site is served over HTTPS.
HSTS = "max-age=31536000; includeSubDomains"


def _security_headers(response):
    """Headers every response carries; see docs/security.md for each one's reason."""
    from flask import current_app

    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
    if request.is_secure or current_app.config["SESSION_COOKIE_SECURE"]:
        headers.setdefault("Strict-Transport-Security", HSTS)
    if not request.path.startswith("/static/"):
        # Pages, the API and downloads hold a candidate's answers, keys or scores: never cached.
        headers.setdefault("Cache-Control", "no-store")
    return response
