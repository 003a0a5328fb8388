"""Languages: Japanese first, English beside it.

The interface's strings are gettext messages (Flask-Babel; catalogues in
``delivery/web/translations``, compiled at install). Which language a request is
served in:

1. the language the user chose with the switch on every page (a cookie, remembered);
2. else the language recorded with the candidate's booking, for a seat's pages
   (``g.booking_language``, set by the candidate area);
3. else the program's default language (Japanese for the sample program).

Dates and times are formatted for the language: ``2026年12月1日(火)`` and 24-hour
times in Japanese, ``Tue 1 December 2026`` in English, always in the program's
time zone.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from flask import Blueprint, Flask, current_app, g, redirect, request
from flask_babel import Babel, get_locale, gettext

from persistence.errors import DomainError

LANGUAGES = {"ja": "日本語", "en": "English"}
DEFAULT_LANGUAGE = "ja"
COOKIE = "cbt_language"
# A year: the choice is a preference of this browser, not of a session.
COOKIE_AGE = 365 * 24 * 3600

DATE_PATTERNS = {"ja": "y年M月d日(E)", "en": "EEE d MMMM y"}
TIME_PATTERN = "HH:mm"

blueprint = Blueprint("language", __name__)


def program_default_language() -> str:
    program = current_app.extensions["cbt"].program
    language = getattr(program, "default_language", None) or DEFAULT_LANGUAGE
    return language if language in LANGUAGES else DEFAULT_LANGUAGE


def select_language() -> str:
    chosen = request.cookies.get(COOKIE)
    if chosen in LANGUAGES:
        return chosen
    booked = g.get("booking_language")
    if booked in LANGUAGES:
        return booked
    return program_default_language()


def user_message(error: DomainError) -> str:
    """A service's refusal in the reader's language: its template translated, then filled in.

    A template the catalogue lacks reads in English; a translation whose places do not
    match the template's is a catalogue fault, and the English is shown instead."""
    translated = gettext(error.template)
    if not error.params:
        return translated
    # A value that is itself a refusal (a file's error inside "{where}: {error}") reads translated too.
    params = {name: user_message(value) if isinstance(value, DomainError) else value
              for name, value in error.params.items()}
    try:
        return translated.format(**params)
    except (KeyError, IndexError, ValueError):
        return error.message


def current_language() -> str:
    locale = get_locale()
    return locale.language if locale is not None else DEFAULT_LANGUAGE


def _zone() -> ZoneInfo:
    return ZoneInfo(current_app.extensions["cbt"].program.timezone)


def local_date(value: dt.date | dt.datetime | None) -> str:
    """A date as the current language writes it; a datetime is first put in the program's zone."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = value.astimezone(_zone()).date()
    language = current_language()
    return format_date(value, DATE_PATTERNS.get(language, DATE_PATTERNS["en"]), locale=language)


def local_time(value: dt.datetime | None) -> str:
    """A moment's local time, 24-hour, in the program's zone."""
    if value is None:
        return ""
    return format_datetime(value.astimezone(_zone()), TIME_PATTERN, locale=current_language())


def local_date_time(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    return f"{local_date(value)} {local_time(value)}"


@blueprint.post("/language")
def choose_language():
    """Remember the language chosen with the switch, and go back to the page it was chosen on."""
    from delivery.web.auth import local_path

    language = request.form.get("language", "")
    back = local_path(request.form.get("next", ""), "/")
    response = redirect(back, code=303)
    if language in LANGUAGES:
        response.set_cookie(COOKIE, language, max_age=COOKIE_AGE, httponly=True, samesite="Lax",
                            secure=current_app.config["SESSION_COOKIE_SECURE"])
    return response


def init_app(app: Flask) -> None:
    Babel(app, locale_selector=select_language, default_domain="messages",
          default_translation_directories="translations")
    app.register_blueprint(blueprint)
    app.jinja_env.filters["local_date"] = local_date
    app.jinja_env.filters["local_time"] = local_time
    app.jinja_env.filters["local_date_time"] = local_date_time
    app.jinja_env.globals["LANGUAGES"] = LANGUAGES
    app.jinja_env.globals["current_language"] = current_language
