"""A walk of every page of every user in a real headless chromium, in Japanese and in English,
at 1280x800 and 800x600 (issues 16 and 17).

Each page is one test: it is reached as its user reaches it (signed in, the steps before it
taken in the browser), then checked: no console error and no page error (the browser
fixture), ``<html lang>`` is the language chosen, axe-core finds no serious or critical
violation, and the candidate's pages do not scroll sideways. A screenshot of each is written
to ``var/screenshots/<language>-<size>/<page>.png`` for review (``make screenshots`` makes the
whole set).

The data is made once for the module, with the services, in a database of its own (a copy of
the suite's template, as every test's): the demo centre with a busy slot (candidates not yet
checked in, waiting, sitting, paused, finished, ended; an incident), a registered applicant
with a booking, a pretest calibration run, forms, a design study, scored sittings for the
statistics, a rescoring campaign, a draft item.
"""
from __future__ import annotations

import datetime as dt
import itertools
import re
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from delivery.answers import AnswerStore
from tests.browser.conftest import serious_accessibility_violations, start_live_server

pytestmark = pytest.mark.browser

LANGUAGES = ("ja", "en")
SIZES = {"1280x800": (1280, 800), "800x600": (800, 600)}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
# A screenshot shows the page down to this many screens: enough to review a long table's layout.
SCREENS_SHOWN = 3
PSYCHOMETRICIAN = ("psychometrician", "psychometrician-demo-pass")
APPLICANT_PASSWORD = "walk-applicant-pass"


@dataclass
class World:
    """What the walk reaches: the server's address, the ids of the data made for it, and the
    signed-in browser state of each staff user and of the applicant."""

    address: str
    sessions: object
    program: object
    ids: dict = field(default_factory=dict)
    signed_in: dict = field(default_factory=dict)

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc)

    def seat_candidate(self, *, checked_in: bool = True):
        """A new candidate booked (and checked in) for a slot starting now, at a centre of their own."""
        from tests.helpers import booked_candidate

        with self.sessions() as session:
            return booked_candidate(session, self.program, self.now().replace(microsecond=0), checked_in=checked_in)


# ---- the data -----------------------------------------------------------------------

def _walk_database(template_url, tmp_path_factory) -> str:
    url, _keys = template_url
    if not url.startswith("sqlite"):
        pytest.skip("the walk checks pages, not SQL: it runs on the SQLite copy of the template")
    copy = tmp_path_factory.mktemp("walk") / "cbt.sqlite3"
    shutil.copyfile(make_url(url).database, copy)
    return f"sqlite:///{copy}"


def _console_states(session, program, centre, slot, now) -> dict:
    """The demo centre's slot as a busy room: each state of a booking and of a sitting, and an incident."""
    from centers.accounts import Actor
    from centers.bookings import book
    from centers.incidents import log_incident
    from centers.models import Booking, Candidate, StaffAccount
    from delivery import sittings
    from tests.helpers import enrolled_pc

    proctor = Actor.staff(session.scalar(select(StaffAccount).where(StaffAccount.username == "proctor")))
    seats = [s.id for s in centre.seats]
    taken = set(session.scalars(select(Booking.seat_id).where(Booking.slot_id == slot.id)))
    free = [s for s in seats if s not in taken]
    names = [("山田 花子", "ヤマダ ハナコ"), ("佐藤 太郎", "サトウ タロウ"), ("鈴木 一郎", "スズキ イチロウ"),
             ("高橋 美咲", "タカハシ ミサキ"), ("田中 健", "タナカ ケン"), ("伊藤 さくら", "イトウ サクラ"),
             ("渡辺 翔", "ワタナベ ショウ"), ("Emma Clark", "エマ クラーク")]
    bookings = {}
    for n, ((name, kana), state) in enumerate(zip(names, ("booked", "checked_in", "waiting", "in_progress",
                                                           "answering", "paused", "finished", "ended"))):
        candidate = Candidate(name=name, name_kana=kana, date_of_birth=dt.date(1995, 1, 1 + n))
        booking = book(session, candidate, slot, seat_id=free[n])
        if state != "booked":
            booking.status, booking.checked_in_at = "checked_in", now
        bookings[state] = booking
    session.commit()
    for state, booking in bookings.items():
        if state in ("booked", "checked_in"):
            continue
        sitting, token = sittings.candidate_login(session, program, booking.admission_code,
                                                  booking.candidate.date_of_birth, now,
                                                  seat_token=enrolled_pc(session, booking.seat_id, now))
        if state == "waiting":
            continue
        sittings.proctor_start(session, program, booking.id, now, actor=proctor)
        if state == "answering":
            store = AnswerStore(session.get_bind())
            for position in range(1, 31):
                store.save_answer(sitting.id, sittings.token_hash(token), position, position % 4, now)
        if state == "paused":
            sittings.pause(session, program, booking.id, now, actor=proctor, reason="A fire drill")
        if state == "finished":
            sittings.candidate_finish(session, program, sitting.id, token, now)
        if state == "ended":
            sittings.end(session, program, booking.id, now, actor=proctor, reason="Used a phone")
    log_incident(session, now, actor=proctor, kind="equipment", description="Seat A-03: the screen flickered.",
                 booking_id=bookings["in_progress"].id)
    session.commit()
    return {f"booking_{state}": booking.id for state, booking in bookings.items()}


def _scored_sittings(session, program, now, count: int) -> None:
    """Finished, scored sittings at centres of their own, for the statistics and the rescoring:
    candidates from weak to strong (each answers right with their own chance), so some pass."""
    from delivery import sittings
    from delivery.models import SittingItem
    from itembank.bank import contents_by_version
    from tests.helpers import booked_candidate

    rng = np.random.default_rng(11)
    store = AnswerStore(session.get_bind())
    centre_id = None
    for n, chance in enumerate(np.linspace(0.35, 0.95, count)):
        # Four seats a centre (tests.helpers): three centres for twelve sittings.
        booked = booked_candidate(session, program, now, centre_id=centre_id if n % 4 else None)
        centre_id = booked.centre_id
        sitting, token = sittings.candidate_login(session, program, booked.admission_code, booked.date_of_birth, now,
                                                  seat_token=booked.seat_token)
        sittings.candidate_start(session, program, sitting.id, token, now)
        entries = session.execute(select(SittingItem.position, SittingItem.item_version_id)
                                  .where(SittingItem.sitting_id == sitting.id)).all()
        contents = contents_by_version(session, {e.item_version_id for e in entries})
        for position, version_id in entries:
            key, options = contents[version_id].key, len(contents[version_id].options)
            option = key if rng.random() < chance else (key + int(rng.integers(1, options))) % options
            store.save_answer(sitting.id, sittings.token_hash(token), position, option, now)
        sittings.candidate_finish(session, program, sitting.id, token, now)


def _bank_states(session, program, now) -> dict:
    """A draft item, an enemy set, a pretest calibration run, forms, a design study, a rescoring campaign."""
    import engine as irt
    from delivery import rescoring
    from delivery.design_studies import run_study
    from delivery.models import SittingItem
    from itembank import calibration, exchange
    from itembank.bank import entry
    from itembank.content import ItemContent
    from itembank.enemies import save_enemy_set
    from itembank.forms import assemble_batch, forms
    from itembank.models import Item, ItemVersion
    from scoring import campaigns
    from tests.test_calibration_workflow import simulated_set

    psy = {"actor": PSYCHOMETRICIAN[0], "actor_role": "psychometrician", "now": now}
    drafts = [f"S01-9{n:05d}" for n in (1, 2)]
    for code in drafts:
        exchange.create_draft(session, program, code=code, category=1, note="written for the walk", content=ItemContent(
            stem="ある会社が新しい販売管理システムを導入する。最初に行うべきことはどれか。",
            options=("要件定義", "プログラミング", "結合テスト", "運用開始"), key=0), **psy)
    save_enemy_set(session, "walk-pair", drafts, note="the same situation", **psy)

    operational = session.scalars(select(Item.code).where(Item.status == "operational").order_by(Item.code)).all()
    pretest = session.scalars(select(Item.code).where(Item.status == "pretest").order_by(Item.code)).all()[:2]
    codes = list(operational[:40])
    versions = [entry(session, c).version for c in codes + pretest]
    truth = irt.ItemParameters([v.a for v in versions], [v.b for v in versions], [v.c for v in versions])
    data = simulated_set(session, codes + pretest, truth, n=400, per_examinee=20, rng=np.random.default_rng(5),
                         pretest=pretest)
    run = calibration.run_pretest_calibration(session, program, data, **psy)
    session.commit()

    existing = forms(session, program)
    form = existing[0].code if existing else assemble_batch(session, program, 3, seed=3, **psy)[0].code
    study = run_study(session, program, candidates=50, designs=("loft",), **psy).id
    drawn = session.execute(select(Item.code, ItemVersion.version).join(ItemVersion, ItemVersion.item_id == Item.id)
                            .join(SittingItem, SittingItem.item_version_id == ItemVersion.id)
                            .where(SittingItem.is_pretest.is_(False)).order_by(SittingItem.sitting_id, SittingItem.position).limit(1)).one()
    campaign = rescoring.propose_campaign(session, [campaigns.Amendment(drawn[0], drawn[1], "withdrawn")],
                                          reason="A second key is defensible", actor=PSYCHOMETRICIAN[0], now=now).id
    session.commit()
    return {"draft": drafts[0], "operational": operational[0], "pretest": pretest[0], "run": run.id,
            "form": form, "study": study, "campaign": campaign}


def _applicant(session, program, centre, now) -> dict:
    """A registered applicant with a booking a fortnight ahead at the demo centre, whose calendar is open."""
    from centers.bookings import book
    from centers.calendar import extend_calendar
    from centers.candidates import register
    from centers.models import Slot

    today = now.date()
    extend_calendar(session, program, today, 40, centre_ids=[centre.id])
    email = f"walk-{uuid.uuid4().hex[:8]}@example.com"
    candidate = register(session, name="山田 花子", name_kana="ヤマダ ハナコ", date_of_birth=dt.date(2001, 2, 3), email=email,
                         password=APPLICANT_PASSWORD, occupation="student", company_type=None, today=today)
    slot = session.scalar(select(Slot).where(Slot.centre_id == centre.id, Slot.date >= today + dt.timedelta(days=14))
                          .order_by(Slot.starts_at))
    booking = book(session, candidate, slot)
    session.commit()
    return {"applicant": email, "applicant_booking": booking.id, "centre": centre.id}


def _sign_in(browser, address: str, path: str, fields: dict[str, str]) -> dict:
    """Sign in through the page's form; the browser state (cookies) to open signed-in contexts with."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(address + path)
    for name, value in fields.items():
        page.locator(f"#{name}").fill(value)
    with page.expect_navigation():
        page.locator(f"form:has(#{next(iter(fields))}) [type=submit]").click()
    state = context.storage_state()
    context.close()
    return state


@pytest.fixture(scope="module")
def world(template_url, tmp_path_factory, program, chromium):
    from centers.demo import DEMO_CENTRE, DEMO_PROCTOR, ensure_demo_candidates
    from centers.models import Booking, Centre
    from delivery.web import create_app
    from itembank import qti
    from persistence import create_database_engine, session_factory
    from tests.browser.conftest import WatchedBrowser
    from tests.helpers import booked_candidate

    url = _walk_database(template_url, tmp_path_factory)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CBT_KEY_DIR", str(template_url[1]))
        engine = create_database_engine(url)
        sessions = session_factory(engine)
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        ids: dict = {}
        with sessions() as session:
            logins = ensure_demo_candidates(session, program.timezone, now, sitting_started=set())
            centre = session.scalar(select(Centre).where(Centre.code == DEMO_CENTRE))
            slot = session.scalar(select(Booking).where(Booking.admission_code == logins[0].admission_code)).slot
            ids.update(_console_states(session, program, centre, slot, now), slot=slot.id)
            _scored_sittings(session, program, now, 12)
            ids.update(_bank_states(session, program, now))
            ids.update(_applicant(session, program, centre, now))
            ids["other_booking"] = booked_candidate(session, program, now).booking_id
            ids["files"] = tmp_path_factory.mktemp("walk-files")
            ids["imported_package"] = _fresh_qti_package(ids["files"])
            qti.import_package(session, program, ids["imported_package"].read_bytes(), actor=PSYCHOMETRICIAN[0],
                               actor_role="psychometrician", now=now)
            session.commit()
        # The seat polls its clock every 2 s, so that a pause shows at once.
        app = create_app({"ENGINE": engine, "SECRET_KEY": WALK_SECRET, "CLOCK_POLL_SECONDS": 2})
        address, server = start_live_server(app)
        w = World(address, sessions, program, ids)
        watched = WatchedBrowser(chromium)
        w.signed_in["proctor"] = _sign_in(watched, address, "/staff/login",
                                          {"username": DEMO_PROCTOR[0], "password": DEMO_PROCTOR[1]})
        w.signed_in["psychometrician"] = _sign_in(watched, address, "/staff/login",
                                                  {"username": PSYCHOMETRICIAN[0], "password": PSYCHOMETRICIAN[1]})
        w.signed_in["applicant"] = _sign_in(watched, address, "/booking/sign-in",
                                            {"email": ids["applicant"], "password": APPLICANT_PASSWORD})
        errors = watched.take_errors()
        assert errors == [], errors
        yield w
        server.shutdown()
        engine.dispose()


# ---- how each page is reached --------------------------------------------------------

WALK_SECRET = "browser-walk-secret"


def _at_seat_pc(page, w: World, booked) -> None:
    """This browser is the PC of the booking's seat (enrolled by tests.helpers): its seat cookie."""
    from delivery.web.seats import SEAT_COOKIE, seat_cookie_value

    page.context.add_cookies([{"name": SEAT_COOKIE, "value": seat_cookie_value(WALK_SECRET, booked.seat_token),
                               "url": w.address}])


def _log_in_at_seat(page, w: World, booked) -> None:
    _at_seat_pc(page, w, booked)
    page.goto(w.address + "/")
    page.locator("#admission_code").fill(booked.admission_code)
    page.locator("#date_of_birth").fill(booked.date_of_birth.isoformat())
    with page.expect_navigation():
        page.locator("form:has(#admission_code) [type=submit]").click()


def _start(page, w: World):
    booked = w.seat_candidate()
    _log_in_at_seat(page, w, booked)
    page.locator("input[name=agree]").check()
    with page.expect_navigation():
        page.locator("form:has(input[name=agree]) [type=submit]").click()
    page.locator("#question-title").wait_for()
    page.locator("#question-options input").first.wait_for()
    return booked


def _answered(page, w: World):
    booked = _start(page, w)
    page.locator("#question-options input").nth(1).check()
    page.locator("#save-status").filter(has_text=re.compile(r".+")).wait_for()
    return booked


def candidate_login(page, w):
    _at_seat_pc(page, w, w.seat_candidate())
    page.goto(w.address + "/")


def candidate_login_refused(page, w):
    _at_seat_pc(page, w, w.seat_candidate())
    page.goto(w.address + "/")
    page.locator("#admission_code").fill("ZZZZ-ZZZZ-ZZZZ")
    page.locator("#date_of_birth").fill("2000-04-01")
    with page.expect_navigation():
        page.locator("form:has(#admission_code) [type=submit]").click()


def candidate_instructions(page, w):
    _log_in_at_seat(page, w, w.seat_candidate())
    page.locator("input[name=agree]").wait_for()


def candidate_sitting(page, w):
    _answered(page, w)


def candidate_sitting_marked(page, w):
    _answered(page, w)
    page.keyboard.press("m")
    page.keyboard.press("n")
    page.locator("#question-options input").first.wait_for()


def candidate_paused(page, w):
    from centers.accounts import Actor
    from delivery import sittings

    booked = _start(page, w)
    with w.sessions() as session:
        from centers.models import StaffAccount

        proctor = session.scalar(select(StaffAccount).where(StaffAccount.username == booked.proctor))
        sittings.pause(session, w.program, booked.booking_id, w.now(), actor=Actor.staff(proctor), reason="A fire drill")
    page.locator("#paused").wait_for(timeout=15000)


def candidate_review(page, w):
    _answered(page, w)
    page.locator("#review-button").click()
    page.locator("#review").wait_for()


def candidate_finish_dialog(page, w):
    _answered(page, w)
    page.locator("#finish-button").click()
    page.locator("#finish-dialog").wait_for()


def candidate_result(page, w):
    _answered(page, w)
    page.locator("#finish-button").click()
    with page.expect_navigation():
        page.locator("#finish-confirm").click()
    page.locator("#total-score").wait_for()


def candidate_report(page, w):
    candidate_result(page, w)
    page.goto(w.address + "/result/report")
    page.locator("#certificate-code").wait_for()


def public_verify(page, w):
    page.goto(w.address + "/verify")


def public_verify_genuine(page, w):
    candidate_report(page, w)
    code = page.locator("#certificate-code").inner_text().strip()
    page.goto(w.address + "/verify?code=" + code)
    page.locator("#certificate-number").wait_for()


def applicant_register(page, w):
    page.goto(w.address + "/booking/register")


def applicant_sign_in(page, w):
    page.goto(w.address + "/booking/sign-in")


def applicant_bookings(page, w):
    page.goto(w.address + "/booking/")


def applicant_find(page, w):
    page.goto(w.address + "/booking/find")


def applicant_find_centre(page, w):
    page.goto(w.address + f"/booking/find?centre={w.ids['centre']}")


def applicant_slip(page, w):
    page.goto(w.address + f"/booking/{w.ids['applicant_booking']}/slip")


def applicant_password(page, w):
    page.goto(w.address + "/booking/password")


def staff_login(page, w):
    page.goto(w.address + "/staff/login")


def staff_password(page, w):
    page.goto(w.address + "/staff/password")


def proctor_board(page, w):
    page.goto(w.address + f"/proctor/?slot={w.ids['slot']}")


def proctor_booking_to_check_in(page, w):
    page.goto(w.address + f"/proctor/bookings/{w.ids['booking_booked']}")


def proctor_booking_in_progress(page, w):
    page.goto(w.address + f"/proctor/bookings/{w.ids['booking_answering']}")


def proctor_booking_paused(page, w):
    page.goto(w.address + f"/proctor/bookings/{w.ids['booking_paused']}")


def proctor_incident_logged(page, w):
    proctor_board(page, w)
    page.locator("#incident-kind").select_option(index=0)
    page.locator("#incident-description").fill("机 B-02 の椅子が壊れていたので交換した。")
    with page.expect_navigation():
        page.locator("form:has(#incident-description) [type=submit]").click()


def proctor_report(page, w):
    page.goto(w.address + f"/proctor/report?slot={w.ids['slot']}")


def proctor_other_centre(page, w):
    """A proctor reaching another centre's console: refused."""
    page.goto(w.address + f"/proctor/bookings/{w.ids['other_booking']}")


def bank_list(page, w):
    page.goto(w.address + "/bank/")


def bank_item(page, w):
    page.goto(w.address + f"/bank/items/{w.ids['operational']}")


def bank_item_draft(page, w):
    page.goto(w.address + f"/bank/items/{w.ids['draft']}")


def bank_item_version(page, w):
    page.goto(w.address + f"/bank/items/{w.ids['operational']}/versions/1")


def bank_new_item(page, w):
    page.goto(w.address + "/bank/items/new")


def bank_edit(page, w):
    page.goto(w.address + f"/bank/items/{w.ids['draft']}/edit")


def bank_exchange(page, w):
    page.goto(w.address + "/bank/exchange")


_PACKAGES = itertools.count(101)


def _fresh_qti_package(folder: Path) -> Path:
    """The test corpus's QTI 3.0 package with item codes not in the bank yet (each import adds them)."""
    from tests.bank_helpers import DATA
    from tests.qti_helpers import zip_members

    n = next(_PACKAGES)
    source = DATA / "qti" / "qti30"
    members = {}
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        text = path.read_text(encoding="utf-8").replace("Q3-DB-001", f"Q3-DB-{n}").replace("Q3-PM-002", f"Q3-PM-{n}")
        members[path.relative_to(source).as_posix().replace("Q3-DB-001", f"Q3-DB-{n}")
                .replace("Q3-PM-002", f"Q3-PM-{n}")] = text
    package = folder / f"qti30-{n}.zip"
    package.write_bytes(zip_members(members))
    return package


def _import(page, w, package: Path) -> None:
    bank_exchange(page, w)
    page.locator("#qti-package").set_input_files(str(package))
    with page.expect_navigation():
        page.locator("form:has(#qti-package) [type=submit]").click()


def bank_import_report(page, w):
    """The report of a QTI package's import: its items added as drafts."""
    _import(page, w, _fresh_qti_package(w.ids["files"]))


def bank_import_refused(page, w):
    """The report of a package whose items are all in the bank already: nothing imported."""
    _import(page, w, w.ids["imported_package"])


def bank_enemies(page, w):
    page.goto(w.address + "/bank/enemies")


def bank_statistics(page, w):
    page.goto(w.address + "/bank/statistics")


def calibration_runs(page, w):
    page.goto(w.address + "/bank/calibration")


def calibration_run(page, w):
    page.goto(w.address + f"/bank/calibration/{w.ids['run']}")


def calibration_review(page, w):
    page.goto(w.address + f"/bank/calibration/{w.ids['run']}/items/{w.ids['pretest']}")
    page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")


def forms_list(page, w):
    page.goto(w.address + "/bank/forms")


def form_review(page, w):
    page.goto(w.address + f"/bank/forms/{w.ids['form']}")


def studies_list(page, w):
    page.goto(w.address + "/bank/studies")


def study(page, w):
    page.goto(w.address + f"/bank/studies/{w.ids['study']}")
    page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")


def operations(page, w):
    page.goto(w.address + "/bank/operations/")


def rescoring_list(page, w):
    page.goto(w.address + "/bank/rescoring/")


def rescoring_campaign(page, w):
    page.goto(w.address + f"/bank/rescoring/{w.ids['campaign']}")


def error_not_found(page, w):
    page.goto(w.address + "/no-such-page")


def error_refused(page, w):
    """A psychometrician at the proctor's console."""
    page.goto(w.address + "/proctor/")


@dataclass(frozen=True)
class Page:
    name: str
    reach: object
    user: str | None = None  # whose signed-in browser state: "proctor", "psychometrician", "applicant"
    seat: bool = False  # the candidate's pages: no sideways scrolling at any size
    status: int = 200  # the page's own HTTP status (an error page's)


PAGES = [
    Page("candidate-login", candidate_login, seat=True),
    Page("candidate-login-refused", candidate_login_refused, seat=True, status=401),
    Page("candidate-instructions", candidate_instructions, seat=True),
    Page("candidate-sitting", candidate_sitting, seat=True),
    Page("candidate-sitting-marked", candidate_sitting_marked, seat=True),
    Page("candidate-paused", candidate_paused, seat=True),
    Page("candidate-review", candidate_review, seat=True),
    Page("candidate-finish-dialog", candidate_finish_dialog, seat=True),
    Page("candidate-result", candidate_result, seat=True),
    Page("candidate-report", candidate_report, seat=True),
    Page("public-verify", public_verify),
    Page("public-verify-genuine", public_verify_genuine),
    Page("applicant-register", applicant_register),
    Page("applicant-sign-in", applicant_sign_in),
    Page("applicant-bookings", applicant_bookings, user="applicant"),
    Page("applicant-find", applicant_find, user="applicant"),
    Page("applicant-find-centre", applicant_find_centre, user="applicant"),
    Page("applicant-slip", applicant_slip, user="applicant"),
    Page("applicant-password", applicant_password, user="applicant"),
    Page("staff-login", staff_login),
    Page("staff-password", staff_password, user="proctor"),
    Page("proctor-board", proctor_board, user="proctor"),
    Page("proctor-booking-check-in", proctor_booking_to_check_in, user="proctor"),
    Page("proctor-booking-in-progress", proctor_booking_in_progress, user="proctor"),
    Page("proctor-booking-paused", proctor_booking_paused, user="proctor"),
    Page("proctor-incident-logged", proctor_incident_logged, user="proctor"),
    Page("proctor-report", proctor_report, user="proctor"),
    Page("proctor-other-centre", proctor_other_centre, user="proctor", status=403),
    Page("bank-list", bank_list, user="psychometrician"),
    Page("bank-item", bank_item, user="psychometrician"),
    Page("bank-item-draft", bank_item_draft, user="psychometrician"),
    Page("bank-item-version", bank_item_version, user="psychometrician"),
    Page("bank-new-item", bank_new_item, user="psychometrician"),
    Page("bank-edit", bank_edit, user="psychometrician"),
    Page("bank-exchange", bank_exchange, user="psychometrician"),
    Page("bank-import-report", bank_import_report, user="psychometrician"),
    Page("bank-import-refused", bank_import_refused, user="psychometrician", status=422),
    Page("bank-enemies", bank_enemies, user="psychometrician"),
    Page("bank-statistics", bank_statistics, user="psychometrician"),
    Page("calibration-runs", calibration_runs, user="psychometrician"),
    Page("calibration-run", calibration_run, user="psychometrician"),
    Page("calibration-review", calibration_review, user="psychometrician"),
    Page("forms", forms_list, user="psychometrician"),
    Page("form", form_review, user="psychometrician"),
    Page("studies", studies_list, user="psychometrician"),
    Page("study", study, user="psychometrician"),
    Page("operations", operations, user="psychometrician"),
    Page("rescoring", rescoring_list, user="psychometrician"),
    Page("rescoring-campaign", rescoring_campaign, user="psychometrician"),
    Page("error-not-found", error_not_found, status=404),
    Page("error-refused", error_refused, user="psychometrician", status=403),
]

# Pages that fail today because their area's work is not merged yet (strict=False: they pass
# once it is, and the mark is then removed).
UNFINISHED: dict[str, str] = {}


def _cases():
    for language in LANGUAGES:
        for size in SIZES:
            for shown in PAGES:
                marks = [pytest.mark.xfail(reason=UNFINISHED[shown.name], strict=False)] \
                    if shown.name in UNFINISHED else []
                yield pytest.param(language, size, shown, id=f"{language}-{size}-{shown.name}", marks=marks)


def _statuses(page) -> list[int]:
    """The HTTP status of every document the page navigated to (the main frame's)."""
    statuses: list[int] = []
    page.on("response", lambda r: statuses.append(r.status)
            if r.request.is_navigation_request() and r.frame == page.main_frame else None)
    return statuses


@pytest.mark.parametrize(("language", "size", "shown"), list(_cases()))
def test_every_page(browser, world, language, size, shown):
    width, height = SIZES[size]
    options = {"viewport": {"width": width, "height": height}}
    if shown.user:
        options["storage_state"] = world.signed_in[shown.user]
    context = browser.new_context(**options)
    context.add_cookies([{"name": "cbt_language", "value": language, "url": world.address}])
    page = context.new_page()
    statuses = _statuses(page)
    shown.reach(page, world)
    page.wait_for_load_state("load")

    problems: list[str] = []
    if statuses and statuses[-1] != shown.status:
        problems.append(f"the page answered {statuses[-1]}, not {shown.status}")
    lang = page.evaluate("() => document.documentElement.lang")
    if lang != language:
        problems.append(f"<html lang={lang!r}> on a page shown in {language!r}")
    if shown.seat:
        scroll = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        if scroll[0] > scroll[1]:
            problems.append(f"scrolls sideways: {scroll[0]}px of content in {scroll[1]}px")
    problems += serious_accessibility_violations(page)

    folder = SCREENSHOTS / f"{language}-{size}"
    folder.mkdir(parents=True, exist_ok=True)
    tall = page.evaluate("() => document.documentElement.scrollHeight")
    page.screenshot(path=str(folder / f"{shown.name}.png"), full_page=True,
                    clip={"x": 0, "y": 0, "width": width, "height": min(tall, SCREENS_SHOWN * height)})

    errors = browser.take_errors()
    problems += errors
    context.close()
    assert not problems, _summary(problems)


def _summary(problems: list[str]) -> str:
    """Each problem once, with how many times it was seen (a blocked style is logged once per element)."""
    counts: dict[str, int] = {}
    for problem in problems:
        problem = re.sub(r"'sha256-[^']*'", "'sha256-...'", problem)  # one blocked style per element
        counts[problem] = counts.get(problem, 0) + 1
    return f"{len(problems)} problem(s):\n" + "\n".join(
        f"  {problem[:300]}" + (f"  (x{n})" if n > 1 else "") for problem, n in counts.items())


def test_the_watched_browser_sees_console_errors_and_page_errors(browser):
    """What fails every browser test (tests/browser/conftest.py): a script's console.error, an
    uncaught exception, a stylesheet that does not load; not a script's request answered 4xx."""
    html = ('<!doctype html><html lang="en"><link rel="stylesheet" href="/missing.css">'
            '<script src="/page.js"></script><p>walk</p></html>')
    script = "console.error('broken on purpose'); fetch('/refused'); null.nothing;"
    answers = {"/": (200, "text/html", html), "/page.js": (200, "text/javascript", script),
               "/missing.css": (404, "text/css", ""), "/refused": (409, "application/json", "{}")}
    context = browser.new_context()
    # Every request is answered here, by the route: nothing leaves the browser.
    context.route("http://walk.invalid/**", lambda route: route.fulfill(
        status=answers[route.request.url.removeprefix("http://walk.invalid")][0],
        content_type=answers[route.request.url.removeprefix("http://walk.invalid")][1],
        body=answers[route.request.url.removeprefix("http://walk.invalid")][2]))
    page = context.new_page()
    with page.expect_response("http://walk.invalid/refused"):
        page.goto("http://walk.invalid/")
    page.wait_for_load_state("load")  # after the stylesheet has failed
    errors = browser.take_errors()
    assert any("broken on purpose" in e for e in errors)
    assert any(e.startswith("page error:") and "null" in e for e in errors)
    assert any("status of 404" in e and "/missing.css" in e for e in errors)
    assert not any("/refused" in e for e in errors)
