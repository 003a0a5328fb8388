"""Access control for every route of the app, for every kind of caller, with real requests.

:data:`ACCESS` states who each route is for. The suite enumerates the app's url_map,
so a route added later without a decision here fails it. For each route it sends one
request aimed at someone's objects (candidate A's sitting and booking at centre X,
applicant A's booking, the first psychometrician's draft item and campaign) as each
kind of caller, and checks the outcome: the audience gets through (with the four-eyes
exceptions), everyone else is refused and nothing changes. Every state-changing
request without a CSRF token (or with another session's) is refused.
"""
from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass, field

import numpy as np
import pytest
from sqlalchemy import func, select

from centers import seats as seat_pcs
from centers.accounts import Actor, create_staff
from centers.bookings import book
from centers.candidates import register
from centers.models import Booking, Incident, Slot, StaffAccount
from delivery import rescoring
from delivery.models import Sitting, SittingItem
from itembank import calibration, exchange
from itembank.content import ItemContent
from itembank.models import CalibrationRun, EnemySet, Item
from persistence.audit import AuditEvent, verify_chain
from scoring import campaigns
from scoring.models import RescoringCampaign
from tests.helpers import api, booked_candidate, csrf_token, login_candidate, login_staff, start_sitting

# The psychometrician's area: its parts are blueprints nested in the psychometrician's.
PSYCHOMETRICIAN_PARTS = {
    "bank": "item item_version new_item edit_item move_item enemy_list save_enemies delete_enemies statistics",
    "exchange": "exchange_page import_qti import_native export_native export_qti export_responses export_anchors",
    "calibration": "calibration_runs start_run calibration_run drift_plot review_item icc_plot decide",
    "forms": "forms_list assemble_forms form_review publish_form retire_form",
    "studies": "studies_list run_study study study_plot",
    "scores": "rescoring_list propose_rescoring rescoring_campaign apply_rescoring discard_rescoring",
    "operations": "operations operations_chart operations_csv",
}

# Who each route is for. "public": anyone; "seat": a candidate signed in at the seat (the
# sitting is the session's, never named by the request); "applicant": a registered
# candidate signed in to the booking pages; "proctor" and "psychometrician": staff roles.
ACCESS = {
    "static": "public",
    "public.verify": "public",
    "language.choose_language": "public",
    "openapi.openapi_document": "public",
    # For the balancer and the monitoring (docs/deployment.md: nginx keeps /metrics from outside).
    "operations.healthz": "public",
    "operations.readyz": "public",
    "operations.metrics_text": "public",
    "candidate.login_form": "public",
    "candidate.login": "public",
    "candidate.logout": "public",
    "staff.login_form": "public",
    "staff.login": "public",
    "staff.logout": "public",
    "staff.password": "staff",
    "candidate.booking_register": "public",
    "candidate.booking_sign_in": "public",
    "candidate.booking_sign_out": "public",
    "candidate.instructions": "seat",
    "candidate.start": "seat",
    "candidate.sitting_page": "seat",
    "candidate.result": "seat",
    "candidate.report": "seat",
    "candidate.state": "seat",
    "candidate.save_answer": "seat",
    "candidate.save_mark": "seat",
    "candidate.save_position": "seat",
    "candidate.clock": "seat",
    "candidate.questions": "seat",
    "candidate.finish": "seat",
    "candidate.booking_home": "applicant",
    "candidate.booking_find": "applicant",
    "candidate.booking_book": "applicant",
    "candidate.booking_slip": "applicant",
    "candidate.booking_move": "applicant",
    "candidate.booking_cancel": "applicant",
    "candidate.booking_password": "applicant",
    **{f"proctor.{name}": "proctor" for name in (
        "board", "board_live", "booking_panel", "booking_live", "check_in", "no_show", "start", "pause", "resume",
        "add_time", "move_seat", "end", "log_incident", "report")},
    # A proctor enrols the PC they stand at; a one-time enrolment link works for whoever opens it.
    "seats.enrol_form": "proctor",
    "seats.enrol": "proctor",
    "seats.link": "public",
    "seats.claim": "public",
    "psychometrician.bank_list": "psychometrician",
    **{f"psychometrician.{part}.{name}": "psychometrician" for part, names in PSYCHOMETRICIAN_PARTS.items()
       for name in names.split()},
}

# Routes that reach one object of another person: the wrong owner of the same audience gets 404
# (applicants: "you have no such booking") or 403 (a proctor of another centre: refused and recorded).
REFUSED_ACTION = {"proctor.board": "view_board", "proctor.booking_panel": "view_booking",
                  "proctor.booking_live": "view_booking",
                  **{f"proctor.{n}": n for n in ("check_in", "no_show", "start", "pause", "resume", "add_time",
                                                  "move_seat", "end")}}
OWNED = {"candidate.booking_slip", "candidate.booking_move", "candidate.booking_cancel", *REFUSED_ACTION}

SEAT = ("candidate_a", "candidate_b", "waiting", "finished")
CALLERS = ("anonymous", *SEAT, "applicant_a", "applicant_b", "proctor_x", "proctor_y", "psy1", "psy2")
AUDIENCE = {"public": set(CALLERS), "seat": set(SEAT), "applicant": {"applicant_a", "applicant_b"},
            "proctor": {"proctor_x", "proctor_y"}, "psychometrician": {"psy1", "psy2"},
            "staff": {"proctor_x", "proctor_y", "psy1", "psy2"}}
STAFF = {"proctor_x", "proctor_y", "psy1", "psy2"}

# The first psychometrician wrote the draft and proposed the campaign: the second must decide.
FOUR_EYES = {("psychometrician.bank.move_item", "psy1"): (409, "another person must review it"),
             ("psychometrician.scores.apply_rescoring", "psy1"): (403, "another psychometrician"),
             # The first psychometrician deleted it a moment before.
             ("psychometrician.bank.delete_enemies", "psy2"): (404, "no enemy set"),
             # A link that was never issued enrols nothing, whoever opens it.
             **{("seats.claim", caller): (404, "unknown, used or expired") for caller in CALLERS}}


@dataclass
class World:
    clients: dict
    ids: dict = field(default_factory=dict)


def _client(app):
    """A browser of its own address, so that the callers' failed sign-ins count apart."""
    client = app.test_client()
    n = uuid.uuid4().int
    client.environ_base["REMOTE_ADDR"] = f"198.51.100.{n % 250 + 1}" if n % 2 else f"2001:db8:{n % 65535:x}::7"
    return client


def _seat(app, booked):
    client = _client(app)
    assert login_candidate(client, booked).status_code == 302
    return client


@pytest.fixture
def world(app, session, program, clock):
    a = booked_candidate(session, program, clock.now)
    b = booked_candidate(session, program, clock.now)
    waiting = booked_candidate(session, program, clock.now, centre_id=a.centre_id)
    finished = booked_candidate(session, program, clock.now, centre_id=a.centre_id)
    clients = {"anonymous": _client(app)}
    clients["candidate_a"], clients["candidate_b"] = _seat(app, a), _seat(app, b)
    clients["waiting"], clients["finished"] = _seat(app, waiting), _seat(app, finished)
    for name in ("candidate_a", "candidate_b", "finished"):
        start_sitting(clients[name])
    api(clients["candidate_a"], "PUT", "/api/sitting/answers/1", {"option": 2})
    api(clients["finished"], "POST", "/api/sitting/finish", {})

    # Two registered candidates, each with a booking (A's at centre X, B's at centre Y).
    applicants = {}
    for name, centre_id in (("applicant_a", a.centre_id), ("applicant_b", b.centre_id)):
        email = f"{uuid.uuid4().hex[:10]}@example.com"
        candidate = register(session, name=f"Applicant {name}", date_of_birth=dt.date(1990, 2, 2), email=email,
                             password="applicant-password", occupation="student", company_type=None,
                             today=dt.date(2026, 1, 1))
        slot = session.scalar(select(Slot).where(Slot.centre_id == centre_id, Slot.starts_at == clock.now))
        applicants[name] = book(session, candidate, slot).id
        session.commit()
        client = _client(app)
        token = csrf_token(client, "/booking/sign-in")
        assert client.post("/booking/sign-in", data={"csrf_token": token, "email": email,
                                                     "password": "applicant-password"}).status_code == 302
        clients[name] = client

    clients["proctor_x"], clients["proctor_y"] = _client(app), _client(app)
    assert login_staff(clients["proctor_x"], a.proctor, a.password).status_code == 302
    assert login_staff(clients["proctor_y"], b.proctor, b.password).status_code == 302
    second = f"psy-{uuid.uuid4().hex[:6]}"
    create_staff(session, username=second, display_name="Second Psychometrician", password="second-psy-password",
                 role="psychometrician")
    session.commit()
    clients["psy1"], clients["psy2"] = _client(app), _client(app)
    assert login_staff(clients["psy1"], "psychometrician", "psychometrician-demo-pass").status_code == 302
    assert login_staff(clients["psy2"], second, "second-psy-password").status_code == 302

    # The first psychometrician's draft, enemy set and rescoring campaigns; a drift run.
    psy = {"actor": "psychometrician", "actor_role": "psychometrician", "now": clock.now}
    # Created in code order: the native export lists an enemy set's members in creation order,
    # and tests/test_exchange.py's round trip compares them with the codes' order after import.
    codes = sorted(f"S01-{uuid.uuid4().int % 900000 + 100000}" for _ in range(2))
    for code in codes:
        exchange.create_draft(session, program, code=code, category=1, note="created", content=ItemContent(
            stem="Which is a draft?", options=("This", "That", "Other", "None"), key=0), **psy)
    from itembank.enemies import save_enemy_set
    enemy_set = f"set-{uuid.uuid4().hex[:6]}"
    save_enemy_set(session, enemy_set, codes, note="", **psy)
    operational = session.scalar(select(Item.code).where(Item.status == "operational").order_by(Item.code))
    # On a draft item, which no sitting ever draws: applying it must not change later tests' scores.
    campaign_ids = [rescoring.propose_campaign(session, [campaigns.Amendment(codes[1], 1, "withdrawn")],
                                               reason="access test", actor="psychometrician", now=clock.now).id
                    for _ in range(2)]
    session.commit()
    import engine as irt
    from itembank.bank import entry
    from tests.test_calibration_workflow import simulated_set
    anchor_codes = session.scalars(select(Item.code).where(Item.status == "operational").order_by(Item.code)).all()[:20]
    versions = [entry(session, c).version for c in anchor_codes]
    truth = irt.ItemParameters(np.array([v.a for v in versions]), np.array([v.b for v in versions]),
                               np.array([v.c for v in versions]))
    run = calibration.run_drift_watch(session, program, simulated_set(session, anchor_codes, truth, n=600,
                                      per_examinee=15, rng=np.random.default_rng(5)), **psy)
    session.commit()

    from delivery.design_studies import run_study
    from itembank.forms import assemble_batch, forms
    # Forms are made once per database: later sittings and tests live with what is in use.
    existing = forms(session, program)
    form = existing[0].code if existing else assemble_batch(session, program, 3, seed=3, **psy)[0].code
    study = run_study(session, program, candidates=50, designs=("loft",), **psy).id
    session.commit()

    booking_a = a.booking_id
    proctor_x = session.scalar(select(StaffAccount).where(StaffAccount.username == a.proctor))
    seat_link, _seat_of_link = seat_pcs.issue_enrolment_link(session, session.get(Booking, booking_a).seat_id,
                                                             actor=Actor.staff(proctor_x), reason="access test",
                                                             now=clock.now)
    ids = {"seat_link": seat_link, "form": form, "study": study, "booking": booking_a, "applicant_booking": applicants["applicant_a"], "item": codes[0],
           "enemy_set": enemy_set, "campaign": campaign_ids[0], "discard_campaign": campaign_ids[1],
           "run": run.id, "run_item": anchor_codes[0], "slot": session.get(Booking, booking_a).slot_id,
           "centre_x": a.centre_id, "operational": operational, "nobody": f"nobody-{uuid.uuid4().hex[:8]}"}
    return World(clients, ids)


def request_for(endpoint: str, w: World):
    """The one request sent to ``endpoint`` by every caller: (method, path, form or JSON body)."""
    i = w.ids
    return {
        "static": ("GET", "/static/style.css", None),
        "public.verify": ("GET", "/verify?code=AAAA", None),
        "language.choose_language": ("POST", "/language", {"language": "en", "next": "/"}),
        "openapi.openapi_document": ("GET", "/api/openapi.json", None),
        "operations.healthz": ("GET", "/healthz", None),
        "operations.readyz": ("GET", "/readyz", None),
        "operations.metrics_text": ("GET", "/metrics", None),
        "candidate.login_form": ("GET", "/", None),
        "candidate.login": ("POST", "/login", {"admission_code": i["nobody"], "date_of_birth": "1990-01-01"}),
        "candidate.logout": ("POST", "/logout", {}),
        "staff.login_form": ("GET", "/staff/login", None),
        "staff.login": ("POST", "/staff/login", {"username": i["nobody"], "password": "not-the-password"}),
        "staff.logout": ("POST", "/staff/logout", {}),
        "staff.password": ("POST", "/staff/password", {"current_password": "not-it", "password": "short"}),
        "candidate.booking_register": ("GET", "/booking/register", None),
        "candidate.booking_sign_in": ("GET", "/booking/sign-in", None),
        "candidate.booking_sign_out": ("POST", "/booking/sign-out", {}),
        "candidate.instructions": ("GET", "/instructions", None),
        "candidate.start": ("POST", "/start", {}),  # without agreeing: sent back to the rules
        "candidate.sitting_page": ("GET", "/sitting", None),
        "candidate.result": ("GET", "/result", None),
        "candidate.report": ("GET", "/result/report", None),
        "candidate.state": ("GET", "/api/sitting", None),
        "candidate.save_answer": ("PUT", "/api/sitting/answers/2", {"option": 1}),
        "candidate.save_mark": ("PUT", "/api/sitting/marks/2", {"marked": True}),
        "candidate.save_position": ("PUT", "/api/sitting/position", {"position": 3}),
        "candidate.clock": ("GET", "/api/sitting/clock", None),
        "candidate.questions": ("GET", "/api/sitting/questions", None),
        "candidate.finish": ("POST", "/api/sitting/finish", {}),
        "candidate.booking_home": ("GET", "/booking/", None),
        "candidate.booking_find": ("GET", "/booking/find", None),
        "candidate.booking_book": ("POST", "/booking/book", {}),
        "candidate.booking_slip": ("GET", f"/booking/{i['applicant_booking']}/slip", None),
        "candidate.booking_move": ("POST", f"/booking/{i['applicant_booking']}/move", {}),
        "candidate.booking_cancel": ("POST", f"/booking/{i['applicant_booking']}/cancel", {}),
        "candidate.booking_password": ("POST", "/booking/password", {"current_password": "not-it", "password": "x"}),
        "proctor.board": ("GET", f"/proctor/?slot={i['slot']}", None),
        "proctor.board_live": ("GET", "/proctor/board/live", None),
        "proctor.booking_panel": ("GET", f"/proctor/bookings/{i['booking']}", None),
        "proctor.booking_live": ("GET", f"/proctor/bookings/{i['booking']}/live", None),
        "proctor.check_in": ("POST", f"/proctor/bookings/{i['booking']}/check-in", {}),
        "proctor.no_show": ("POST", f"/proctor/bookings/{i['booking']}/no-show", {}),
        "proctor.start": ("POST", f"/proctor/bookings/{i['booking']}/start", {}),
        "proctor.pause": ("POST", f"/proctor/bookings/{i['booking']}/pause", {}),
        "proctor.resume": ("POST", f"/proctor/bookings/{i['booking']}/resume", {}),
        "proctor.add_time": ("POST", f"/proctor/bookings/{i['booking']}/add-time", {}),
        "proctor.move_seat": ("POST", f"/proctor/bookings/{i['booking']}/move-seat", {}),
        "proctor.end": ("POST", f"/proctor/bookings/{i['booking']}/end", {}),
        "proctor.log_incident": ("POST", "/proctor/incidents", {}),
        "proctor.report": ("GET", "/proctor/report", None),
        "seats.enrol_form": ("GET", "/proctor/seat", None),
        "seats.enrol": ("POST", "/proctor/seat", {}),
        "seats.link": ("GET", f"/seat/enrol/{i['seat_link']}", None),
        "seats.claim": ("POST", f"/seat/enrol/{i['nobody']}", {}),
        "psychometrician.bank_list": ("GET", "/bank/", None),
        "psychometrician.bank.item": ("GET", f"/bank/items/{i['item']}", None),
        "psychometrician.bank.item_version": ("GET", f"/bank/items/{i['item']}/versions/1", None),
        "psychometrician.bank.new_item": ("POST", "/bank/items/new", {}),
        "psychometrician.bank.edit_item": ("POST", f"/bank/items/{i['item']}/edit", {}),
        "psychometrician.bank.move_item": ("POST", f"/bank/items/{i['item']}/status", {"to": "reviewed"}),
        "psychometrician.bank.enemy_list": ("GET", "/bank/enemies", None),
        "psychometrician.bank.save_enemies": ("POST", "/bank/enemies", {}),
        "psychometrician.bank.delete_enemies": ("POST", f"/bank/enemies/{i['enemy_set']}/delete", {}),
        "psychometrician.exchange.exchange_page": ("GET", "/bank/exchange", None),
        "psychometrician.exchange.import_qti": ("POST", "/bank/exchange/import/qti", {}),
        "psychometrician.exchange.import_native": ("POST", "/bank/exchange/import/native", {}),
        "psychometrician.exchange.export_native": ("GET", "/bank/exchange/export.json", None),
        "psychometrician.exchange.export_qti": ("GET", "/bank/exchange/export-qti?status=draft", None),
        "psychometrician.exchange.export_responses": ("GET", "/bank/exchange/responses.csv", None),
        "psychometrician.exchange.export_anchors": ("GET", "/bank/exchange/anchors.csv", None),
        "psychometrician.calibration.calibration_runs": ("GET", "/bank/calibration", None),
        "psychometrician.calibration.start_run": ("POST", "/bank/calibration/runs", {"kind": "neither"}),
        "psychometrician.calibration.calibration_run": ("GET", f"/bank/calibration/{i['run']}", None),
        "psychometrician.calibration.drift_plot": ("GET", f"/bank/calibration/{i['run']}/drift.svg", None),
        "psychometrician.calibration.review_item": ("GET", f"/bank/calibration/{i['run']}/items/{i['run_item']}", None),
        "psychometrician.calibration.icc_plot": ("GET", f"/bank/calibration/{i['run']}/items/{i['run_item']}/icc.svg", None),
        "psychometrician.calibration.decide": ("POST", f"/bank/calibration/{i['run']}/items/{i['run_item']}/decision", {}),
        "psychometrician.bank.statistics": ("GET", "/bank/statistics", None),
        "psychometrician.operations.operations": ("GET", "/bank/operations/", None),
        "psychometrician.operations.operations_chart": ("GET", "/bank/operations/months.svg", None),
        "psychometrician.operations.operations_csv": ("GET", "/bank/operations/statistics.csv", None),
        "psychometrician.scores.rescoring_list": ("GET", "/bank/rescoring/", None),
        "psychometrician.scores.propose_rescoring": ("POST", "/bank/rescoring/", {"code": i["operational"], "version": "1",
                                                                          "kind": "nonsense", "reason": "test"}),
        "psychometrician.scores.rescoring_campaign": ("GET", f"/bank/rescoring/{i['campaign']}", None),
        "psychometrician.scores.apply_rescoring": ("POST", f"/bank/rescoring/{i['campaign']}/apply", {}),
        "psychometrician.scores.discard_rescoring": ("POST", f"/bank/rescoring/{i['discard_campaign']}/discard",
                                              {"reason": "access test"}),
        "psychometrician.forms.forms_list": ("GET", "/bank/forms", None),
        "psychometrician.forms.assemble_forms": ("POST", "/bank/forms", {"count": "0"}),
        "psychometrician.forms.form_review": ("GET", f"/bank/forms/{i['form']}", None),
        "psychometrician.forms.publish_form": ("POST", f"/bank/forms/{i['form']}/publish", {}),
        "psychometrician.forms.retire_form": ("POST", f"/bank/forms/{i['form']}/retire", {}),
        "psychometrician.studies.studies_list": ("GET", "/bank/studies", None),
        "psychometrician.studies.run_study": ("POST", "/bank/studies", {"candidates": "1"}),
        "psychometrician.studies.study": ("GET", f"/bank/studies/{i['study']}", None),
        "psychometrician.studies.study_plot": ("GET", f"/bank/studies/{i['study']}/exposure.svg", None),
    }[endpoint]


def send(client, method: str, path: str, body, *, csrf: str | None | bool = True):
    """A real request; ``csrf`` True sends the caller's own token, a string sends that one, None none."""
    token = csrf_token(client, "/staff/login") if csrf is True else csrf
    if path.startswith("/api/"):
        headers = {"X-CSRFToken": token} if token and method != "GET" else {}
        return client.open(path, method=method, json=body if method != "GET" else None, headers=headers)
    if method == "GET":
        return client.get(path)
    return client.open(path, method=method, data={**(body or {}), **({"csrf_token": token} if token else {})})


def outcome(response) -> str:
    """What the caller got: 'login' (sent to sign in, or 401), 'forbidden', 'not found', 'error' or 'through'."""
    location = response.headers.get("Location", "")
    if response.status_code == 401 or (response.status_code in (301, 302, 303) and (
            location.startswith("/staff/login") or location.startswith("/booking/sign-in"))):
        return "login"
    if response.status_code == 403:
        return "forbidden"
    if response.status_code == 404:
        return "not found"
    if response.status_code >= 500:
        return "error"
    return "through"


def expected(endpoint: str, caller: str) -> str:
    audience = ACCESS[endpoint]
    if caller in AUDIENCE[audience]:
        if endpoint in OWNED and caller in ("applicant_b",):
            return "not found"
        if endpoint in REFUSED_ACTION and caller in ("proctor_y",):
            return "forbidden"
        return "through"
    if audience in ("proctor", "psychometrician") and caller in STAFF:
        return "forbidden"
    return "login"


def test_every_route_has_an_access_decision(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints - set(ACCESS) == set(), "a route without an access decision: add it to ACCESS"
    assert set(ACCESS) - endpoints == set(), "ACCESS names a route the app no longer has"


def fingerprint(session) -> tuple:
    """What a refused request must not change."""
    session.expire_all()
    return (
        tuple(session.execute(select(Sitting.id, Sitting.status, Sitting.current_position, Sitting.deadline_at,
                                     Sitting.login_token_hash, Sitting.seat_id).order_by(Sitting.id)).all()),
        tuple(session.execute(select(SittingItem.sitting_id, SittingItem.position, SittingItem.chosen_option,
                                     SittingItem.marked).where(SittingItem.answered_at.is_not(None) |
                                                               SittingItem.marked)
                              .order_by(SittingItem.sitting_id, SittingItem.position)).all()),
        tuple(session.execute(select(Booking.id, Booking.status, Booking.seat_id, Booking.slot_id)
                              .order_by(Booking.id)).all()),
        tuple(session.execute(select(Item.code, Item.status, func.count()).group_by(Item.code, Item.status)
                              .order_by(Item.code)).all()),
        session.scalar(select(func.count()).select_from(EnemySet)),
        tuple(session.execute(select(RescoringCampaign.id, RescoringCampaign.status)
                              .order_by(RescoringCampaign.id)).all()),
        session.scalar(select(func.count()).select_from(CalibrationRun)),
        session.scalar(select(func.count()).select_from(Incident)),
    )


def test_every_route_lets_its_audience_through_and_refuses_everyone_else(world, session):
    app_routes = sorted(ACCESS)
    refusals, allowed = [], []
    for endpoint in app_routes:
        for caller in CALLERS:
            (allowed if expected(endpoint, caller) == "through" else refusals).append((endpoint, caller))

    # Refusals first: each changes nothing (a proctor's attempt on another centre is recorded).
    before = fingerprint(session)
    for endpoint, caller in refusals:
        method, path, body = request_for(endpoint, world)
        last_event = session.scalar(select(func.max(AuditEvent.id))) or 0
        response = send(world.clients[caller], method, path, body)
        assert outcome(response) == expected(endpoint, caller), (endpoint, caller, response.status_code,
                                                                 response.headers.get("Location"))
        session.expire_all()
        new_events = session.scalars(select(AuditEvent).where(AuditEvent.id > (last_event or 0))).all()
        if caller == "proctor_y" and endpoint in REFUSED_ACTION:
            assert [e.action for e in new_events] == [f"refused_{REFUSED_ACTION[endpoint]}"]
            assert new_events[0].actor.startswith("proctor-") and new_events[0].centre_id == world.ids["centre_x"]
        else:
            assert new_events == [], (endpoint, caller, [e.action for e in new_events])
    assert fingerprint(session) == before

    # Then the audience: through (state-changing ones last, sign-outs at the very end).
    def order(entry):
        endpoint, caller = entry
        return (endpoint.endswith(("logout", "sign_out")), endpoint == "candidate.finish", CALLERS.index(caller))

    for endpoint, caller in sorted(allowed, key=order):
        method, path, body = request_for(endpoint, world)
        response = send(world.clients[caller], method, path, body)
        special = FOUR_EYES.get((endpoint, caller))
        if special:
            status, words = special
            assert response.status_code == status and words in response.get_data(as_text=True), (endpoint, caller)
            continue
        if ACCESS[endpoint] == "public":
            # Open to all: a sign-in with wrong credentials answers 401 to anyone alike.
            assert response.status_code < 500 and response.status_code != 403, (endpoint, caller)
            continue
        assert outcome(response) == "through", (endpoint, caller, response.status_code,
                                                response.get_data(as_text=True)[:300])
        if method == "GET" and not path.startswith("/api/sitting"):
            assert response.status_code in (200, 302), (endpoint, caller, response.status_code)
    assert verify_chain(session).intact


def test_a_candidate_s_writes_depend_on_their_own_sitting_only(world, session):
    """Before the start and after the end the API refuses and stores nothing; B is never touched."""
    before = fingerprint(session)
    for caller in ("waiting", "finished"):
        for method, path, body in [("PUT", "/api/sitting/answers/2", {"option": 1}),
                                   ("PUT", "/api/sitting/marks/2", {"marked": True}),
                                   ("PUT", "/api/sitting/position", {"position": 3})]:
            assert api(world.clients[caller], method, path, body).status_code == 409, (caller, path)
    assert api(world.clients["waiting"], "POST", "/api/sitting/finish", {}).status_code == 409
    assert fingerprint(session) == before
    a_state = api(world.clients["candidate_a"], "GET", "/api/sitting").get_json()
    b_state = api(world.clients["candidate_b"], "GET", "/api/sitting").get_json()
    assert a_state["sitting_key"] != b_state["sitting_key"]
    assert a_state["items"][0]["answer"] == 2 and b_state["items"][0]["answer"] is None
    # No key, rationale, parameters or pretest flag reaches the candidate's page or API.
    page = world.clients["candidate_a"].get("/sitting").get_data(as_text=True)
    for leak in ("is_pretest", "pretest", "rationale", '"key"'):
        assert leak not in page
        assert all(leak.strip('"') not in item for item in a_state["items"])


def test_every_state_changing_route_refuses_a_request_without_a_csrf_token(world, session, app):
    """Sent by a caller the route is for; a token of another session is refused the same way."""
    first_of = {"public": "anonymous", "seat": "candidate_a", "applicant": "applicant_a", "proctor": "proctor_x",
                "psychometrician": "psy2", "staff": "proctor_x"}
    changing = [(rule.endpoint, method) for rule in app.url_map.iter_rules()
                for method in rule.methods & {"POST", "PUT", "PATCH", "DELETE"}]
    assert len(changing) >= 30  # every POST and PUT route of the app
    foreign_token = csrf_token(world.clients["candidate_b"], "/")
    before = fingerprint(session)
    last_event = session.scalar(select(func.max(AuditEvent.id))) or 0
    for endpoint, method in changing:
        caller = first_of[ACCESS[endpoint]]
        _method, path, body = request_for(endpoint, world)
        for token in (None, foreign_token):
            response = send(world.clients[caller], method, path, body, csrf=token)
            assert response.status_code == 400, (endpoint, token, response.status_code)
            assert re.search(r"did not come from this site", response.get_data(as_text=True)), endpoint
    assert fingerprint(session) == before
    assert session.scalar(select(func.max(AuditEvent.id))) == last_event
