"""Operational commands: the database, sample data, the demo, serving, the clock sweep."""
from __future__ import annotations

import json
from pathlib import Path

import click
from sqlalchemy import select

from persistence import create_database_engine, session_factory, upgrade_database, utcnow
from persistence.unit_of_work import unit_of_work


def _sessions():
    return session_factory(create_database_engine())


@click.group("db")
def db_group() -> None:
    """The database schema."""


@db_group.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration not yet applied (creates the database if needed)."""
    upgrade_database(create_database_engine())
    click.echo("database schema is up to date")


@click.group("sample")
def sample_group() -> None:
    """Sample data for a first look and for the tests."""


@sample_group.command("load")
def sample_load() -> None:
    """Load the sample item bank and the demo centre and staff (safe to run again)."""
    from centers.demo import ensure_demo_centre
    from itembank.program import load_program
    from itembank.sample import load_sample_bank

    with _sessions()() as session, unit_of_work(session):  # the bank's and the centres' sample data: one unit
        added = load_sample_bank(session, load_program())
        ensure_demo_centre(session)
    click.echo(f"sample bank: {added} items added" if added else "sample bank: already loaded")


@click.command("demo")
def demo() -> None:
    """Make sure there are demo candidates booked for now, and print every demo login (in Japanese, then English)."""
    from centers.demo import (
        DEMO_APPLICANT,
        DEMO_CENTRE,
        DEMO_OTHER_PROCTOR,
        DEMO_PROCTOR,
        DEMO_PSYCHOMETRICIAN,
        demo_applicant_booking,
        demo_seat_link,
        ensure_demo_candidates,
    )
    from delivery.demo_stretch import ensure_demo_stretch, quick_engine
    from delivery.models import Sitting, SittingStatus
    from itembank.program import load_program

    program = load_program()
    engine = quick_engine()
    with session_factory(engine)() as session:
        stretch = ensure_demo_stretch(session, engine, program, utcnow())
    with _sessions()() as session:
        started = set(session.scalars(select(Sitting.booking_id).where(Sitting.status != SittingStatus.WAITING)))
        logins = ensure_demo_candidates(session, program.timezone, utcnow(), sitting_started=started)
        booked = demo_applicant_booking(session, program, utcnow())
        applicant_booking = None if booked is None else (
            booked.slot.date, booked.slot.kind, booked.slot.centre.code, booked.admission_code)
        seat_link = demo_seat_link(session, utcnow()) if program.admission.seat_enrolment_required else None
    if stretch.sittings:
        day = stretch.day
        click.echo(f"デモ用データ：{day.year}年{day.month}月{day.day}日に終了した模擬受験 {stretch.sittings} 件"
                   f"（事前テストの較正用：/bank/calibration）、編集できる下書きの問題 {'、'.join(stretch.drafts)}、"
                   f"レビュー済みの問題 {'、'.join(stretch.reviewed)}")
        click.echo(f"demo data: {stretch.sittings} simulated sittings finished on {stretch.day.isoformat()} "
                   "(for a pretest calibration run: /bank/calibration); draft items "
                   f"{', '.join(stretch.drafts)} and reviewed items {', '.join(stretch.reviewed)} to edit")
    seat = None
    if seat_link:
        from delivery.cli.seats import enrolment_url

        seat = (enrolment_url(seat_link[0]), seat_link[1])
    for line in demo_logins(logins, applicant_booking=applicant_booking, centre=DEMO_CENTRE, proctor=DEMO_PROCTOR,
                            other_proctor=DEMO_OTHER_PROCTOR, applicant=DEMO_APPLICANT,
                            psychometrician=DEMO_PSYCHOMETRICIAN, minutes=program.duration_minutes, seat=seat):
        click.echo(line)


# The slot kinds of the program file, as the Japanese lines name them.
SLOT_KINDS_JA = {"morning": "午前", "afternoon": "午後", "evening": "夕方", "demo": "デモ"}


def demo_logins(logins, *, applicant_booking: tuple | None, centre: str, proctor, other_proctor, applicant,
                psychometrician, minutes: int, seat: tuple[str, str] | None = None) -> list[str]:
    """The demo's logins, said in Japanese and then in English: whoever starts the demo reads one of them.

    ``applicant_booking`` is the demo applicant's booking to come as (date, slot kind, centre code,
    admission code), or None; ``seat`` the seat PC's enrolment link and seat label, where seats enrol."""
    if applicant_booking is None:
        applicant_ja, applicant_en = "登録済み、まだ予約はありません", "registered, no booking yet"
    else:
        day, kind, where, code = applicant_booking
        applicant_ja = (f"予約済み：{day.year}年{day.month}月{day.day}日 {SLOT_KINDS_JA.get(kind, kind)}、"
                        f"会場 {where}、受験番号 {code}")
        applicant_en = f"booked for {day.isoformat()} {kind} at {where}, admission code {code}"
    lines = ["", "デモ用のログイン", "----------------"]
    for login in logins:
        state = "受付済み、すぐに受験できます" if login.checked_in else "予約済み、先に試験監督者が受付をします"
        lines.append(f"  受験者          受験番号 {login.admission_code}、生年月日 {login.date_of_birth.isoformat()}"
                     f"（{login.name}、{state}）")
    lines += [
        f"  試験監督者      ユーザー名 {proctor[0]}、パスワード {proctor[1]}（デモ会場 {centre}）",
        f"  試験監督者      ユーザー名 {other_proctor[0]}、パスワード {other_proctor[1]}（別の会場 {other_proctor[2]}）",
        f"  申込者          メールアドレス {applicant[0]}、パスワード {applicant[1]}（{applicant_ja}：/booking/）",
        f"  心理測定担当者  ユーザー名 {psychometrician[0]}、パスワード {psychometrician[1]}（/bank/）",
    ]
    if seat:
        lines += [f"  座席の端末      受験に使うブラウザで {seat[0]} を一度開くと、デモ会場の座席 {seat[1]} として",
                  "                  登録されます（受験者は自分の会場の登録済みの座席でのみログインできます。"
                  "リンクは 24 時間以内に一度だけ使えます）"]
    lines += [
        f"デモの時間枠はいま始まります。開始が遅れた分は、実際の会場と同じく {minutes} 分から差し引かれます。",
        "",
        "Demo logins",
        "-----------",
    ]
    for login in logins:
        state = "checked in, ready to sit" if login.checked_in else "booked; a proctor checks them in first"
        lines.append(f"  candidate       admission code {login.admission_code}, date of birth "
                     f"{login.date_of_birth.isoformat()}  ({login.name}, {state})")
    lines += [
        f"  proctor         username {proctor[0]}, password {proctor[1]}  (the demo centre, {centre})",
        f"  proctor         username {other_proctor[0]}, password {other_proctor[1]}  "
        f"(another centre: {other_proctor[2]})",
        f"  applicant       e-mail {applicant[0]}, password {applicant[1]}  ({applicant_en}: /booking/)",
        f"  psychometrician username {psychometrician[0]}, password {psychometrician[1]}  (/bank/)",
    ]
    if seat:
        lines += [f"  seat PC         open {seat[0]} once in the browser you sit the demo in: it",
                  f"                  enrols it as seat {seat[1]} of the demo centre (candidates log in only at an",
                  "                  enrolled seat of their centre; the link works once, for 24 hours)"]
    lines += [
        f"The demo slot starts now; a late start is deducted from the {minutes} minutes, as at a real centre.",
        "",
    ]
    return lines


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """Serve the web application with the development server (gunicorn in production)."""
    from werkzeug.serving import run_simple

    from delivery.web import StartupError, create_app

    try:
        app = create_app()
    except StartupError as error:
        raise click.ClickException(f"cannot start: {error}") from None
    click.echo(f"Serving on http://{host}:{port}  (Ctrl-C to stop)")
    run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False)


@click.group("sittings")
def sittings_group() -> None:
    """Sittings."""


@sittings_group.command("expire")
def sittings_expire() -> None:
    """Finish and score every sitting whose time has run out (run it every minute)."""
    from delivery.sittings import expire_due_sittings
    from itembank.program import load_program

    with _sessions()() as session:
        count = expire_due_sittings(session, load_program(), utcnow())
    click.echo(f"{count} sitting(s) finished on time-out")


@click.group("audit")
def audit_group() -> None:
    """The tamper-evident audit trail."""


@audit_group.command("verify")
def audit_verify() -> None:
    """Check every event of the trail against its hash chain; exit 1 at the first break."""
    from persistence.audit import verify_chain

    with _sessions()() as session:
        report = verify_chain(session)
    if report.intact:
        click.echo(f"audit trail intact: {report.events} events")
    else:
        click.echo(f"audit trail BROKEN after {report.events} good events: {report.problem}", err=True)
        raise SystemExit(1)


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def backup(path: Path) -> None:
    """Back up the database to PATH (pg_dump's custom format, or a SQLite copy made online), with
    PATH.keys.json beside it: the keys kept outside the database that a restore needs."""
    from delivery import backups
    from persistence import backup as database_backup

    engine = create_database_engine()
    with _sessions()() as session:  # before the dump: the keys it needs are at least these
        entry = backups.manifest(session, kind=engine.dialect.name, now=utcnow())
    database_backup.backup(engine, path)
    keys = path.with_name(path.name + ".keys.json")
    keys.write_text(json.dumps(entry, indent=1) + "\n")
    click.echo(f"backed up {engine.url} to {path} ({path.stat().st_size:,} bytes): "
               + ", ".join(f"{n} {what}" for what, n in entry["counts"].items()))
    click.echo(f"A restore also needs these keys, which are not in the backup (listed in {keys}):")
    for line in backups.describe(entry):
        click.echo(f"  - {line}")


@click.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def restore(path: Path) -> None:
    """Restore the backup at PATH into the (empty) database CBT_DATABASE_URL names, then check
    its schema and that this machine's keys read it; exit 1 if a key is missing."""
    from delivery import backups
    from persistence import backup as database_backup
    from persistence.migrate import SchemaError, check_schema

    engine = create_database_engine()
    database_backup.restore(engine, path)
    keys = path.with_name(path.name + ".keys.json")
    entry = json.loads(keys.read_text()) if keys.exists() else None
    with _sessions()() as session:
        counts = backups.counts(session)
        click.echo(f"restored {path} into {engine.url}: " + ", ".join(f"{n} {what}" for what, n in counts.items()))
        try:
            check_schema(engine)
        except SchemaError as error:
            click.echo(f"the schema is older than this code's: {error}")
            return
        problems = backups.missing_keys(session, entry)
    if entry is None:
        click.echo(f"(no {keys.name} beside the backup: the audit key was not compared)")
    if problems:
        for problem in problems:
            click.echo(f"missing key: {problem}", err=True)
        raise SystemExit(1)
    click.echo("the keys here read it; next: cbt audit verify, cbt rescoring check")


COMMANDS = [db_group, sample_group, demo, serve, sittings_group, audit_group, backup, restore]
