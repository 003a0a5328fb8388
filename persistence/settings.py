"""The deployment's settings: the one place that reads the environment.

:func:`load_settings` builds a frozen :class:`Settings` from ``os.environ`` (or a
mapping given for a test) and the defaults below; everything else takes a
``Settings`` or calls :func:`load_settings`, never ``os.environ``. Each variable:

===========================  ===============================  =====================================
variable                     default                          meaning
===========================  ===============================  =====================================
``CBT_DATABASE_URL``         SQLite file ``<var>/cbt.sqlite3``  the database (PostgreSQL in production)
``CBT_VAR_DIR``              ``var``                          local state: the SQLite file, dev keys
``CBT_KEY_DIR``              ``<var>/keys``                   audit seal and certificate signing keys
``CBT_PROGRAM``              ``it-passport``                  the exam program (bundled code or .toml)
``CBT_SECRET_KEY``           file ``<var>/secret_key``        signs session cookies
``CBT_CONTENT_KEYS``         (none)                           item content keys, ``kid:base64,...``
``CBT_CONTENT_KEY_FILE``     ``<var>/content-keys.json``      item content keys, as a file
``CBT_AUDIT_KEY``            file ``<keys>/audit-seal.key``   seals the audit trail (64 hex digits)
``CBT_SECURE_COOKIES``       off (``1`` behind HTTPS)         Secure cookies and HSTS
``CBT_TRUSTED_PROXIES``      0                                reverse proxies setting X-Forwarded-*
``CBT_PROXY_ADDRESSES``      ``127.0.0.1,::1``                the proxies' own addresses (or networks):
                                                              X-Forwarded-* and X-Request-ID are taken
                                                              only from a peer among them
``CBT_CLOCK_POLL_SECONDS``   15                               the candidate page's clock poll
``CBT_BOARD_POLL_SECONDS``   5                                the proctor board's refresh
``CBT_ACTOR``                (none)                           the staff account a CLI command acts as
``CBT_BIND``                 ``127.0.0.1:8000``               gunicorn's address
``CBT_WORKERS``              the core count                   gunicorn worker processes
``CBT_THREADS``              8                                threads per worker
``CBT_ACCESS_LOG``           (none)                           gunicorn's access log file
``CBT_LOG_LEVEL``            ``warning``                      the log level (gunicorn's and the app's;
                                                              ``info`` adds one line per request)
``CBT_LOG_FORMAT``           ``json``                         ``json`` (one object a line) or ``text``
``PROMETHEUS_MULTIPROC_DIR`` (none; gunicorn makes one)       where the processes of one server keep
                                                              their metrics (prometheus_client's own name)
``CBT_SESSION_IDLE_MINUTES`` 60                               a sign-in unused this long ends
``CBT_SESSION_HOURS``        12                               a sign-in ends this long after it began
``CBT_PASSWORD_HASH_SLOTS``  2                                password hashes computed at once per process
``CBT_PUBLIC_URL``           ``http://<CBT_BIND>``            the site's public address, for the links and
                                                              QR codes of score reports (never the Host header)
``CBT_PERSONAL_DATA_KEY``    file ``<keys>/personal-data.key``  encrypts candidates' personal data at rest
                                                              (64 hex digits)
===========================  ===============================  =====================================
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from persistence.errors import InvalidInput

DEFAULT_PROGRAM = "it-passport"


@dataclass(frozen=True)
class Settings:
    var_dir: Path
    key_dir: Path
    database_url: str
    program: str
    secret_key: str | None
    content_keys: str | None
    content_key_file: Path | None
    audit_key: str | None
    secure_cookies: bool
    trusted_proxies: int
    clock_poll_seconds: int
    board_poll_seconds: int
    actor: str | None
    bind: str
    workers: int
    threads: int
    access_log: str | None
    log_level: str
    log_format: str
    # What child processes (pg_dump, pg_restore) are given: this process's environment as read here.
    child_environment: Mapping[str, str]
    proxy_addresses: tuple[str, ...]
    metrics_dir: Path | None
    session_idle_minutes: int = 60
    session_hours: int = 12
    password_hash_slots: int = 2
    public_url: str = "http://127.0.0.1:8000"
    personal_data_key: str | None = None

    @property
    def development_key_file(self) -> Path:
        """Where content keys are made and kept when no key is configured (development)."""
        return self.var_dir / "content-keys.json"

    @property
    def secret_key_file(self) -> Path:
        return self.var_dir / "secret_key"


def _whole(environ: Mapping[str, str], name: str, default: int, low: int = 0) -> int:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise InvalidInput(f"{name}={text!r}: give a whole number", field=name) from None
    if value < low:
        raise InvalidInput(f"{name}={value}: at least {low}", field=name)
    return value


def _choice(environ: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """One of ``choices`` (the first is the default)."""
    value = environ.get(name, "").strip().lower() or choices[0]
    if value not in choices:
        raise InvalidInput(f"{name}={value!r}: give one of {', '.join(choices)}", field=name)
    return value


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings ``environ`` (default: the process environment) gives, with the defaults."""
    environ = os.environ if environ is None else environ

    def text(name: str) -> str | None:
        return environ.get(name) or None

    var_dir = Path(text("CBT_VAR_DIR") or "var")
    key_file = text("CBT_CONTENT_KEY_FILE")
    return Settings(
        var_dir=var_dir,
        key_dir=Path(text("CBT_KEY_DIR") or var_dir / "keys"),
        database_url=text("CBT_DATABASE_URL") or f"sqlite:///{var_dir / 'cbt.sqlite3'}",
        program=text("CBT_PROGRAM") or DEFAULT_PROGRAM,
        secret_key=text("CBT_SECRET_KEY"),
        content_keys=text("CBT_CONTENT_KEYS"),
        content_key_file=Path(key_file) if key_file else None,
        audit_key=text("CBT_AUDIT_KEY"),
        secure_cookies=environ.get("CBT_SECURE_COOKIES") == "1",
        trusted_proxies=_whole(environ, "CBT_TRUSTED_PROXIES", 0),
        clock_poll_seconds=_whole(environ, "CBT_CLOCK_POLL_SECONDS", 15, low=1),
        board_poll_seconds=_whole(environ, "CBT_BOARD_POLL_SECONDS", 5, low=1),
        actor=text("CBT_ACTOR"),
        bind=text("CBT_BIND") or "127.0.0.1:8000",
        workers=_whole(environ, "CBT_WORKERS", os.cpu_count() or 2, low=1),
        threads=_whole(environ, "CBT_THREADS", 8, low=1),
        access_log=text("CBT_ACCESS_LOG"),
        log_level=text("CBT_LOG_LEVEL") or "warning",
        child_environment=dict(environ),
        log_format=_choice(environ, "CBT_LOG_FORMAT", ("json", "text")),
        proxy_addresses=tuple(part.strip() for part in (text("CBT_PROXY_ADDRESSES") or "127.0.0.1,::1").split(",")
                              if part.strip()),
        metrics_dir=Path(metrics) if (metrics := text("PROMETHEUS_MULTIPROC_DIR")) else None,
        session_idle_minutes=_whole(environ, "CBT_SESSION_IDLE_MINUTES", 60, low=1),
        session_hours=_whole(environ, "CBT_SESSION_HOURS", 12, low=1),
        password_hash_slots=_whole(environ, "CBT_PASSWORD_HASH_SLOTS", 2, low=1),
        public_url=_public_url(text("CBT_PUBLIC_URL") or f"http://{text('CBT_BIND') or '127.0.0.1:8000'}"),
        personal_data_key=text("CBT_PERSONAL_DATA_KEY"),
    )


def key_settings(environ: Mapping[str, str] | None = None) -> tuple[str | None, str]:
    """``CBT_PERSONAL_DATA_KEY`` and the key directory alone, as :func:`load_settings` reads them:
    the personal-data columns ask for them at every value, where the whole settings cost too much."""
    environ = os.environ if environ is None else environ
    key_dir = environ.get("CBT_KEY_DIR") or os.path.join(environ.get("CBT_VAR_DIR") or "var", "keys")
    return environ.get("CBT_PERSONAL_DATA_KEY") or None, key_dir


def _public_url(value: str) -> str:
    """The site's public address: an http(s) URL with a host, kept without a trailing slash."""
    value = value.strip().rstrip("/")
    scheme, _, rest = value.partition("://")
    if scheme not in ("http", "https") or not rest or any(ch in rest for ch in " ?#\\"):
        raise InvalidInput("CBT_PUBLIC_URL={value!r}: give the site's address, like https://cbt.example.org",
                           value=value, field="CBT_PUBLIC_URL")
    return value


def export_metrics_dir(path: Path) -> None:
    """Name ``path`` to prometheus_client, which reads ``PROMETHEUS_MULTIPROC_DIR`` itself when first
    imported: the one write to the environment, made by gunicorn's master before the workers fork."""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
