"""The candidate at the seat: login, instructions, the sitting, the score."""
from __future__ import annotations

import gzip

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from markupsafe import Markup

from centers.bookings import normalise_admission_code
from delivery import prepared, sittings
from delivery.console import format_remaining
from delivery.models import CLOSED_SITTING, SittingStatus
from delivery.sittings import Paused, SeatMoved
from delivery.throttle import LoginThrottled
from delivery.web import errors
from delivery.web.auth import (
    candidate_credentials,
    renew_candidate_token,
    sign_in_candidate,
    sign_out,
    throttled_sign_in,
)
from delivery.web.context import answers, db, now, program
from delivery.web.errors import too_many_attempts
from delivery.web.i18n import local_time, user_message
from delivery.web.observability import metrics
from delivery.web.seats import seat_token
from persistence import typed_input
from persistence.errors import Conflict, DomainError, InvalidInput, NotFound, NotSignedIn
from persistence.unit_of_work import unit_of_work
from scoring import certificates
from scoring.results import result_for_sitting, score_lines

blueprint = Blueprint("candidate", __name__)

ADMISSION_CODE_LENGTH = 32

# What the seat's sign-in keeps beside the sitting and its token (the Flask session): the
# booking's language, so that the seat's pages read in it without a query, and the seat
# the sign-in was made at, so that a PC the sitting was moved away from can say where it went.
BOOKING_LANGUAGE, SIGNED_IN_SEAT = "booking_language", "seat_id"


@blueprint.before_app_request
def _seat_language():
    """The seat's pages speak the booking's language (delivery.web.i18n.select_language)
    unless the user chose another with the switch."""
    if session.get("role") == "candidate":
        g.booking_language = session.get(BOOKING_LANGUAGE)


def _signed_out(error: NotSignedIn, sitting_id: int):
    """``error``, or why this PC no longer holds the sitting when the proctor moved it to another seat."""
    seat = sittings.moved_away(db(), sitting_id, session.get(SIGNED_IN_SEAT))
    return SeatMoved(seat) if seat is not None else error


def _current_sitting():
    """The signed-in candidate's sitting (finished first if its time ran out)."""
    sitting_id, token = candidate_credentials()
    try:
        sitting, token = sittings.current(db(), program(), sitting_id, token, now())
    except NotSignedIn as error:
        raise _signed_out(error, sitting_id) from None
    renew_candidate_token(token)
    return sitting


@blueprint.errorhandler(SeatMoved)
def _seat_moved(error: SeatMoved):
    """The old PC after a seat move: the sitting page's script shows the message and stops;
    a page load shows the login page with it."""
    message = user_message(error)
    if errors.wants_json():
        return jsonify(error=message, status=401, moved_to_seat=error.seat), 401
    return render_template("candidate/login.html", notice=message), 401


# The display size the page opens at: larger text is an accommodation on the booking.
DEFAULT_SIZE, LARGE_TEXT_SIZE = 1, 3


def _display(sitting, booking) -> dict:
    return {"owner": sitting.id, "size": LARGE_TEXT_SIZE if booking.large_text else DEFAULT_SIZE}


def _page_for(sitting) -> str:
    if sitting.status in CLOSED_SITTING:
        return url_for("candidate.result")
    if sitting.status == SittingStatus.WAITING:
        return url_for("candidate.instructions")
    return url_for("candidate.sitting_page")


@blueprint.get("/")
def login_form():
    return render_template("candidate/login.html")


@blueprint.post("/login")
def login():
    code = request.form.get("admission_code", "").strip()[:ADMISSION_CODE_LENGTH]
    date_of_birth = typed_input.date(request.form.get("date_of_birth"))  # 2000/4/1, ２０００年４月１日, ...
    if date_of_birth is None:
        return render_template("candidate/login.html", error=_("Enter your date of birth as on the admission slip."),
                               admission_code=code), 422
    try:
        sitting, token = throttled_sign_in("seat", normalise_admission_code(code), lambda: sittings.candidate_login(
            db(), program(), code, date_of_birth, now(), seat_token=seat_token()))
    except LoginThrottled as refused:
        return too_many_attempts(render_template("candidate/login.html", error=user_message(refused),
                                                 admission_code=code), refused)
    except DomainError as error:
        return render_template("candidate/login.html", error=user_message(error), admission_code=code), errors.http_status(error)
    sign_in_candidate(sitting.id, token)
    session[BOOKING_LANGUAGE] = sittings.booking_of(db(), sitting).language
    session[SIGNED_IN_SEAT] = sitting.seat_id
    return redirect(_page_for(sitting))


@blueprint.post("/logout")
def logout():
    try:
        sitting_id, token = candidate_credentials()
    except NotSignedIn:
        pass
    else:
        sittings.candidate_sign_out(db(), sitting_id, token)
    sign_out()
    return redirect(url_for("candidate.login_form"))


@blueprint.get("/instructions")
def instructions():
    sitting = _current_sitting()
    if sitting.status != SittingStatus.WAITING:
        return redirect(_page_for(sitting))
    booking = sittings.booking_of(db(), sitting)
    opens = booking.slot.starts_at
    rule = sittings.time_rule(program(), sitting, opens, now())
    return render_template(
        "candidate/instructions.html",
        booking=booking,
        display=_display(sitting, booking),
        clock_poll_seconds=current_app.config["CLOCK_POLL_SECONDS"],
        seconds_until_open=max(0, int((opens - now()).total_seconds())),
        # The labels the sitting will show: its items are in the booking's language.
        option_labels=program().labels_for(sittings.sitting_language(db(), program(), sitting)),
        time_rule={"deducted": rule.deducted, "minutes": rule.minutes, "slot_starts": local_time(opens),
                   "ends": local_time(rule.ends_at), "seconds_now": int(rule.seconds_if_started_now),
                   "left_now": format_remaining(rule.seconds_if_started_now)},
    )


@blueprint.post("/start")
def start():
    sitting_id, token = candidate_credentials()
    if request.form.get("agree") != "yes":
        _current_sitting()  # signed in at all?
        return redirect(url_for("candidate.instructions", must_agree=1))
    moment = now()
    if answers().start(sitting_id, sittings.token_hash(token), moment,
                       lambda waiting, slot_start: sittings.seconds_at_start(program(), waiting, slot_start, moment)):
        metrics().sittings_started.inc()  # the ORM's count of status changes does not see this statement
    else:
        # Started already, too early, or no time left: the service does what is right or says why.
        sittings.candidate_start(db(), program(), sitting_id, token, moment)
    return redirect(url_for("candidate.sitting_page"))


@blueprint.get("/sitting")
def sitting_page():
    sitting = _current_sitting()
    if sitting.status not in (SittingStatus.IN_PROGRESS, SittingStatus.PAUSED):
        return redirect(_page_for(sitting))
    # The program's names of its fields are data; their translations are in the catalogue.
    field_names = {field.code: _(field.name) for field in program().fields}
    return render_template("candidate/sitting.html", display=_display(sitting, sittings.booking_of(db(), sitting)),
                           clock_poll_seconds=current_app.config["CLOCK_POLL_SECONDS"], field_names=field_names)


@blueprint.get("/result")
def result():
    sitting = _current_sitting()
    if sitting.status not in CLOSED_SITTING:
        return redirect(_page_for(sitting))
    score = result_for_sitting(db(), sitting.id)
    bars = score_lines(program(), score) if score else []
    return render_template("candidate/result.html", sitting=sitting, score=score, bars=bars)


@blueprint.get("/result/report")
def report():
    sitting = _current_sitting()
    score = result_for_sitting(db(), sitting.id)
    if score is None:
        return redirect(_page_for(sitting))
    booking = sittings.booking_of(db(), sitting)
    # scoring.certificates.issue writes in its caller's unit of work: this one.
    with unit_of_work(db()):
        certificate = certificates.issue(
            db(), score, holder_name=booking.candidate.name, sat_on=booking.slot.date,
            directory=certificates.key_directory(), now=now(),
        )
    verify_url = url_for("public.verify", code=certificate.code, _external=True)
    return render_template(
        "candidate/report.html", booking=booking, score=score, bars=score_lines(program(), score),
        certificate=certificate, verify_url=verify_url, qr=Markup(certificates.qr_svg(verify_url)),
    )


# The JSON API behind the sitting page.

def _state(sitting_id: int, status: SittingStatus, remaining: float, position: int, answered) -> dict:
    """What changes during the sitting: its status, the time left, the position, and (while it runs)
    each question's answer and mark (``answered``: (position, option, marked) rows). The
    questions themselves: /api/sitting/questions."""
    return {
        "status": str(status),
        "remaining_seconds": remaining,
        "sitting_key": sitting_id,
        "current_position": position,
        "answers": [{"position": p, "answer": option, "marked": marked} for p, option, marked in answered],
        "result_url": url_for("candidate.result") if status in CLOSED_SITTING else None,
    }


@blueprint.get("/api/sitting")
def state():
    sitting_id, token = candidate_credentials()
    reading = answers().read_clock(sitting_id, sittings.token_hash(token))
    current = now()
    if reading and reading.status == SittingStatus.IN_PROGRESS and reading.deadline_at and reading.deadline_at > current:
        # The common case (every reload while the sitting runs) on the driver connection.
        return jsonify(_state(sitting_id, SittingStatus.IN_PROGRESS, (reading.deadline_at - current).total_seconds(),
                              reading.current_position, answers().read_answers(sitting_id)))
    # Not signed in, paused, waiting, ended, or due to end now: the service decides.
    sitting = _current_sitting()
    running = sitting.status in (SittingStatus.IN_PROGRESS, SittingStatus.PAUSED)
    return jsonify(_state(sitting.id, sitting.status, sittings.remaining_seconds(sitting, current),
                          sitting.current_position, sittings.answers_so_far(db(), sitting) if running else []))


def _json_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, description=_("The request body must be a JSON object."))
    return body


def _refused(position: int):
    """Explain why a hot-path write changed nothing."""
    try:
        sitting = _current_sitting()
    except SeatMoved:
        raise
    except NotSignedIn:
        sitting_id, _token = candidate_credentials()
        if sittings.has_ended(db(), sitting_id):
            raise Conflict("This sitting has ended; answers can no longer be changed.") from None
        raise
    if sitting.status in CLOSED_SITTING:
        raise Conflict("This sitting has ended; answers can no longer be changed.")
    if sitting.status == SittingStatus.PAUSED:
        # 423 Locked: the page keeps the change and sends it again once the proctor resumes.
        raise Paused("The sitting is paused by the proctor.")
    if sitting.status == SittingStatus.WAITING:
        raise Conflict("The sitting has not started.")
    if not 1 <= position <= len(sitting.items):
        raise NotFound("There is no question {position}.", position=position)
    raise Conflict("The answer could not be saved.")


def _json_integer(value) -> int | None:
    """``value`` as an integer if JSON says it is one (3 and 3.0 alike, as JSON Schema
    counts them); None for anything else, true and "3" included."""
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    return None


def _check_position(position: int) -> None:
    """No form is longer than the program's: refuse other positions before they reach the
    database (where a number too large for its integer columns would be an error, not a miss)."""
    if not 1 <= position <= program().items_per_sitting:
        raise NotFound("There is no question {position}.", position=position)


@blueprint.put("/api/sitting/answers/<int:position>")
def save_answer(position: int):
    sitting_id, token = candidate_credentials()
    body = _json_body()
    _check_position(position)
    n_options = len(program().option_labels)
    # A missing "option" is a malformed request, not a way to clear the answer (that is null).
    if "option" not in body:
        raise InvalidInput("'option' is required: an integer from 0 to {last}, or null.", last=n_options - 1)
    option = body["option"]
    if option is not None:
        option = _json_integer(option)
        if option is None or not 0 <= option < n_options:
            raise InvalidInput("'option' must be an integer from 0 to {last}, or null.", last=n_options - 1)
    if not answers().save_answer(sitting_id, sittings.token_hash(token), position, option, now()):
        _refused(position)
    return jsonify(saved=True, position=position, option=option)


@blueprint.put("/api/sitting/marks/<int:position>")
def save_mark(position: int):
    sitting_id, token = candidate_credentials()
    marked = _json_body().get("marked")
    _check_position(position)
    if type(marked) is not bool:
        raise InvalidInput("'marked' must be true or false.")
    if not answers().save_mark(sitting_id, sittings.token_hash(token), position, marked, now()):
        _refused(position)
    return jsonify(saved=True, position=position, marked=marked)


@blueprint.put("/api/sitting/position")
def save_position():
    sitting_id, token = candidate_credentials()
    position = _json_integer(_json_body().get("position"))
    if position is None:
        raise InvalidInput("'position' must be an integer.")
    _check_position(position)
    if not answers().save_position(sitting_id, sittings.token_hash(token), position, now()):
        _refused(position)
    return jsonify(saved=True, position=position)


@blueprint.get("/api/sitting/clock")
def clock():
    sitting_id, token = candidate_credentials()
    reading = answers().read_clock(sitting_id, sittings.token_hash(token))
    if reading is None:
        raise _signed_out(NotSignedIn(sittings.SIGNED_OUT), sitting_id)
    current = now()
    if reading.status == SittingStatus.IN_PROGRESS and reading.deadline_at is not None and reading.deadline_at > current:
        return jsonify(status=str(SittingStatus.IN_PROGRESS),
                       remaining_seconds=(reading.deadline_at - current).total_seconds())
    sitting = _current_sitting()
    return jsonify(
        status=str(sitting.status),
        remaining_seconds=sittings.remaining_seconds(sitting, current),
        result_url=url_for("candidate.result") if sitting.status in CLOSED_SITTING else None,
    )


@blueprint.get("/api/sitting/questions")
def questions():
    """The running sitting's questions as prepared at login: one row read, sent as stored (gzip);
    304 when the page has them already. The answers, marks and clock come from /api/sitting."""
    sitting_id, token = candidate_credentials()
    found = answers().read_questions(sitting_id, sittings.token_hash(token))
    body = prepared.opened(sitting_id, found[1]) if found else None
    if body is None:
        sitting = _current_sitting()
        if sitting.status not in (SittingStatus.IN_PROGRESS, SittingStatus.PAUSED):
            raise Conflict("The questions are shown once the sitting has started.")
        stored = sittings.prepared_questions(db(), program(), sitting)
        found, body = (stored.etag, stored.body), prepared.opened(sitting_id, stored.body)
    etag = found[0]
    if etag in request.if_none_match:
        response = Response(status=304)
    elif "gzip" in request.accept_encodings:
        response = Response(body, mimetype="application/json")
        response.headers["Content-Encoding"] = "gzip"
    else:
        response = Response(gzip.decompress(body), mimetype="application/json")
    response.set_etag(etag)
    response.headers["Vary"] = "Accept-Encoding"
    # Private to this seat's sign-in; asked again on every load (a new sign-in, a new answer).
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@blueprint.post("/api/sitting/finish")
def finish():
    sitting_id, token = candidate_credentials()
    try:
        finished = sittings.candidate_finish(db(), program(), sitting_id, token, now())
    except SeatMoved:
        raise
    except NotSignedIn as error:
        raise _signed_out(error, sitting_id) from None
    renew_candidate_token(finished.token)
    return jsonify(status=str(finished.status), result_url=url_for("candidate.result"))


# The registration and booking pages live in their own module, on this same blueprint.
from delivery.web import booking as _booking_pages  # noqa: E402,F401
