"""The item bank from the command line: ``cbt items ...`` and ``cbt calibration ...``.

Every action of the psychometrician's web area has a twin here for scripting.
Commands act as a named staff member (``--as USERNAME``, default
``$CBT_ACTOR``); each parses its arguments, calls the one service the web view
calls (which checks the rule, writes the audit record and commits) and prints the
outcome, so what they change is audited exactly like the web actions. A refusal
of the service is printed by the ``cbt`` group (exit status 1).
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sys
from pathlib import Path

import click

from delivery.cli.progress import em_progress
from persistence import create_database_engine, session_factory
from persistence.errors import InvalidInput
from persistence.settings import load_settings


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _open():
    """A session on the configured database, after the schema and content-key checks of the web app."""
    from itembank.content import ContentKeyError
    from itembank.encryption import check_content_keys
    from itembank.keyring import KeyringError
    from persistence.migrate import SchemaError, check_schema

    engine = create_database_engine()
    try:
        check_schema(engine)
        session = session_factory(engine)()
        check_content_keys(session)
    except (SchemaError, ContentKeyError, KeyringError) as error:
        raise click.ClickException(str(error)) from None
    return session


def _program():
    from itembank.program import load_program

    return load_program()


def _actor(username: str | None, role: str = "psychometrician") -> dict:
    """The staff account the command acts as: it must exist, be active and have ``role``."""
    from sqlalchemy import select

    from centers.models import StaffAccount

    username = username or load_settings().actor
    if not username:
        raise click.UsageError("say who acts: --as USERNAME (or set CBT_ACTOR)")
    with session_factory(create_database_engine())() as session:
        account = session.scalar(select(StaffAccount).where(StaffAccount.username == username))
    if account is None or not account.active:
        raise click.ClickException(f"no active staff account {username!r}")
    if account.role != role:
        raise click.ClickException(f"{username} is a {account.role}; this needs a {role}")
    return {"actor": account.username, "actor_role": account.role}


def _content(handle):
    """Item content from a JSON file (stem, options, key, rationale, table, figure); a malformed
    file is refused with the path of the field at fault."""
    from itembank.exchange import parse_content

    try:
        raw = json.load(handle)
    except ValueError as error:
        raise InvalidInput(f"{handle.name}: not JSON ({error})") from None
    return parse_content(raw, handle.name)


as_option = click.option("--as", "username", metavar="USERNAME", help="The psychometrician acting (default $CBT_ACTOR).")
# Operator actions (no staff account: whoever runs the command on the server says who they are).
by_option = click.option("--by", "operator", default="operations", show_default=True,
                         help="Who does it, for the audit trail.")


@click.group("items")
def items_group() -> None:
    """The item bank: list, show, lifecycle, enemy sets, import and export, keys."""


@items_group.command("list")
@click.option("--field")
@click.option("--category", type=int)
@click.option("--status")
@click.option("--text", help="Search code, stem, options and rationale.")
def items_list(field, category, status, text):
    """List items with their newest version's parameters (tab-separated)."""
    from itembank import bank

    with _open() as session:
        entries = bank.browse(session, field=field, category=category, status=status, text=text)
        click.echo("code\tfield\tcategory\tstatus\tversion\ta\tb\tc\tstem")
        for e in entries:
            v = e.version
            params = "\t".join(f"{x:.3f}" if x is not None else "" for x in (v.a, v.b, v.c))
            click.echo(f"{e.item.code}\t{e.item.field}\t{e.item.category}\t{e.item.status}\t{v.version}\t{params}\t"
                       f"{e.content.stem.splitlines()[0][:80]}")
    click.echo(f"{len(entries)} items", err=True)


@items_group.command("show")
@click.argument("code")
@click.option("--version", "number", type=int, help="An older version (default: the newest).")
def items_show(code, number):
    """Show an item: syllabus place, content, parameters with provenance, versions and lifecycle."""
    from itembank import bank
    from itembank.content import to_dict

    program = _program()
    with _open() as session:
        found = bank.version_entry(session, code, number) if number else bank.entry(session, code)
        if found is None:
            raise click.ClickException(f"no item {code}" + (f" version {number}" if number else ""))
        item, v = found.item, found.version
        click.echo(json.dumps({
            "code": item.code, "field": item.field, "major": program.major_of_category(item.category)[1],
            "category": f"{item.category}. {program.category(item.category).name}", "status": item.status,
            "author": item.author, "version": v.version, "note": v.note,
            "parameters": {"a": v.a, "b": v.b, "c": v.c, "se": [v.se_a, v.se_b, v.se_c],
                           "source": v.parameter_source, "calibration_run": v.calibration_run_id,
                           "responses": v.n_responses},
            "content": to_dict(found.content),
            "versions": [f"{x.version}: {x.note} ({x.created_by}, {x.created_at:%Y-%m-%d})" for x in item.versions],
            "lifecycle": [f"{h.at:%Y-%m-%d %H:%M} {h.from_status or '-'} -> {h.to_status} by {h.actor}: {h.reason}"
                          for h in item.history],
        }, ensure_ascii=False, indent=2))


@items_group.command("move")
@click.argument("code")
@click.argument("status")
@click.option("--reason", default="", help="Why (kept in the item's lifecycle and the audit trail).")
@as_option
def items_move(code, status, reason, username):
    """Take a lifecycle step: draft, reviewed, pretest, operational, retired."""
    from itembank import lifecycle

    who = _actor(username)
    with _open() as session:
        lifecycle.move(session, _program(), code, status, now=_now(), reason=reason, **who)
    click.echo(f"{code} is now {status}")


@items_group.command("new")
@click.argument("code")
@click.argument("category", type=int)
@click.argument("content_json", type=click.File("r", encoding="utf-8"))
@click.option("--note", default="created", show_default=True, help="The first version's note.")
@as_option
def items_new(code, category, content_json, note, username):
    """Write a new draft item CODE in syllabus CATEGORY (content JSON: stem, options, key, rationale, table, figure)."""
    from itembank import exchange

    who = _actor(username)
    content = _content(content_json)
    with _open() as session:
        item = exchange.create_draft(session, _program(), code=code, category=category, content=content,
                                     now=_now(), note=note, **who)
        click.echo(f"draft {item.code} created")


@items_group.command("edit")
@click.argument("code")
@click.argument("content_json", type=click.File("r", encoding="utf-8"))
@click.option("--reason", default="")
@as_option
def items_edit(code, content_json, reason, username):
    """Save new content (JSON: stem, options, key, rationale, table, figure) as a new version."""
    from itembank import bank

    who = _actor(username)
    content = _content(content_json)
    with _open() as session:
        version = bank.edit_content(session, _program(), code, content, now=_now(), reason=reason, **who)
        click.echo(f"{code}: version {version.version} saved")


@items_group.command("enemies")
@click.argument("name")
@click.argument("codes", nargs=-1)
@click.option("--note", default="")
@click.option("--delete", is_flag=True, help="Delete the set instead.")
@as_option
def items_enemies(name, codes, note, delete, username):
    """Create or replace the enemy set NAME with CODES (or --delete it); no codes lists the sets."""
    from itembank import enemies

    with _open() as session:
        if delete:
            who = _actor(username)
            enemies.delete_enemy_set(session, name, now=_now(), **who)
            click.echo(f"enemy set {name} deleted")
        elif codes:
            who = _actor(username)
            enemies.save_enemy_set(session, name, list(codes), now=_now(), note=note, **who)
            click.echo(f"enemy set {name}: {' '.join(sorted(codes))}")
        else:
            for s in enemies.enemy_sets(session):
                click.echo(f"{s.name}\t{' '.join(m.item.code for m in s.members)}\t{s.note}")


@items_group.command("export")
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
@click.option("--format", "kind", type=click.Choice(["native", "qti2.1", "qti2.2", "qti3.0"]), default="native",
              show_default=True)
@click.option("--status", help="Only items in this status (QTI).")
@as_option
def items_export(path, kind, status, username):
    """Export the bank: native JSON (lossless) or a QTI content package (zip)."""
    from itembank import exchange

    who = _actor(username)
    with _open() as session:
        if kind == "native":
            document = exchange.export_bank(session, _program(), now=_now(), **who)
            Path(path).write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
            count = len(document["items"])
        else:
            data = exchange.export_qti(session, _program(), version=kind[3:], status=status, now=_now(), **who)
            Path(path).write_bytes(data)
            from itembank import qti

            # One document per item and language, each naming its item's code in the manifest.
            count = len({r.code or r.href for r in qti.manifest_resources(qti.Package(data, str(path)), _program()).items})
    click.echo(f"wrote {count} items to {path}")


@items_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--mode", type=click.Choice(["all", "valid"]), default="all", show_default=True,
              help="all: nothing lands if any item is refused; valid: the good items land.")
@click.option("--category", type=int, help="QTI: category of items whose manifest gives none.")
@as_option
def items_import(path, mode, category, username):
    """Import a QTI package (.zip) or a native export (.json) as drafts written by you; refused items are
    listed with the reason. (A whole bank comes back with `cbt items restore`.)"""
    from itembank import exchange

    who = _actor(username)
    data = Path(path).read_bytes()
    with _open() as session:
        if path.lower().endswith(".json"):
            report = exchange.import_bank(session, _program(), data, mode=mode, name=Path(path).name, now=_now(),
                                          **who)
        else:
            report = exchange.import_qti(session, _program(), data, mode=mode, category=category,
                                         name=Path(path).name, now=_now(), **who)
    _print_report(report)


def _print_report(report) -> None:
    for outcome in getattr(report, "items", ()):  # QTI: what each item kept and what it changed
        click.echo(f"{outcome.where} -> {outcome.code}: kept {', '.join(outcome.kept)}")
        for change in outcome.changed:
            click.echo(f"  changed: {change}")
    for rejected in report.rejected:
        click.echo(f"refused {rejected.where}: {rejected.reason}", err=True)
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(report.summary)
    if report.rejected and not report.landed:
        sys.exit(1)


@items_group.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--reason", required=True, help="Why the bank is restored (kept in the audit trail).")
@by_option
def items_restore(path, reason, operator):
    """Restore a whole bank from a native export (`cbt items export`) into an empty bank.

    Unlike an import, a restore keeps what the file says: statuses, parameters, versions and
    their writers, lifecycle history, enemy sets and calibration runs. All or nothing.
    """
    from itembank import exchange

    data = Path(path).read_bytes()
    with _open() as session:
        report = exchange.restore_bank(session, _program(), data, actor=operator, actor_role="operations",
                                       reason=reason, name=Path(path).name, now=_now())
    _print_report(report)


@items_group.command("new-key")
def items_new_key():
    """Print a fresh content key as kid:base64 (to put first in CBT_CONTENT_KEYS before rotating)."""
    import base64
    import secrets

    from itembank.keyring import KEY_BYTES, new_key_id

    click.echo(f"{new_key_id()}:{base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()}")


@items_group.command("rotate-key")
@as_option
def items_rotate_key(username):
    """Re-encrypt the whole bank under a new key, in one transaction.

    With a key file, a new key is made and the file rewritten; with
    CBT_CONTENT_KEYS, put the new key first (see `cbt items new-key`) and run this.
    """
    from itembank.encryption import rotate_keys

    who = _actor(username)
    with _open() as session:
        def progress(done, total):
            click.echo(f"\rre-encrypting {done}/{total}", nl=done == total, err=True)
        report = rotate_keys(session, progress=progress, now=_now(), **who)
    click.echo(f"bank re-encrypted under key {report.new_key} ({report.reencrypted} versions); "
               f"earlier keys {', '.join(k for k in report.old_keys if k != report.new_key) or 'none'} "
               "are no longer needed")


@items_group.command("encrypt")
@by_option
def items_encrypt(operator):
    """Encrypt item versions stored in plain text (a database from before encryption at rest)."""
    from itembank.encryption import encrypt_plaintext
    from itembank.keyring import current_keyring

    engine = create_database_engine()
    with session_factory(engine)() as session:
        count = encrypt_plaintext(session, actor=operator, actor_role="operations", now=_now())
    click.echo(f"{count} item version(s) encrypted under key {current_keyring().active}")


@click.group("calibration")
def calibration_group() -> None:
    """The pretest loop and the drift watch: runs, review, approval, response data."""


def _window(start: str | None, end: str | None) -> dict:
    def parse(text, name):
        if not text:
            return None
        try:
            return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), dt.timezone.utc)
        except ValueError:
            raise click.BadParameter(f"{text!r} is not a date (YYYY-MM-DD)", param_hint=name) from None
    return {"finished_from": parse(start, "--from"), "finished_to": parse(end, "--to")}


window_options = [click.option("--from", "start", metavar="DATE", help="Sittings finished on or after DATE."),
                  click.option("--to", "end", metavar="DATE", help="Sittings finished before DATE.")]


def _with_window(command):
    for option in reversed(window_options):
        command = option(command)
    return command


@calibration_group.command("run")
@click.option("--kind", type=click.Choice(["pretest", "drift"]), default="pretest", show_default=True)
@_with_window
@click.option("--quiet", is_flag=True, help="No progress lines.")
@as_option
def calibration_run(kind, start, end, quiet, username):
    """Gather finished sittings and run a calibration (pretest items, or the drift watch)."""
    from delivery.pretest import run_calibration

    who = _actor(username)
    window = _window(start, end)
    with _open() as session:
        click.echo("gathering responses from finished sittings ...", err=True)
        run = run_calibration(session, _program(), kind, now=_now(), progress=None if quiet else em_progress,
                              **window, **who)
        _print_run(run)


def _print_run(run) -> None:
    click.echo(f"run {run.id} ({run.kind}): {run.n_sittings} sittings, {len(run.items)} items, "
               f"{'converged' if run.converged else 'NOT converged'} in {run.iterations} EM steps")
    if run.kind == "pretest":
        click.echo(f"ability distribution on the operational scale: mean {run.latent_mean:.3f}, sd {run.latent_sd:.3f}")
    for note in run.summary.get("notes", []):
        click.echo(f"note: {note}")
    click.echo("item\tn\ta\tse_a\tb\tse_b\tc\tse_c\tdecision\tflags")
    for e in sorted(run.items, key=lambda e: e.item.code):
        values = "\t".join("" if x is None else f"{x:.3f}" for x in (e.a, e.se_a, e.b, e.se_b, e.c, e.se_c))
        click.echo(f"{e.item.code}\t{e.n_responses}\t{values}\t{e.decision}\t{'; '.join(e.flags)}")


@calibration_group.command("list")
def calibration_list():
    """Every calibration run, newest first."""
    from itembank import calibration

    with _open() as session:
        for run in calibration.runs(session):
            pending = sum(e.decision == "pending" for e in run.items)
            click.echo(f"{run.id}\t{run.kind}\t{run.created_at:%Y-%m-%d %H:%M}\t{run.created_by}\t"
                       f"{run.n_sittings} sittings\t{len(run.items)} items\t{pending} pending")


@calibration_group.command("show")
@click.argument("run_id", type=int)
def calibration_show(run_id):
    """A run's items: estimates, SEs, flags and decisions."""
    from itembank import calibration

    with _open() as session:
        _print_run(calibration.get_run(session, run_id))


def _decide_each(codes, decide, said: str) -> None:
    """One decision per item code, each committed as it is printed (a refusal stops at that code)."""
    with _open() as session:
        for code in codes:
            outcome = decide(session, code)
            click.echo(f"{code}: {said.format(outcome=outcome)}")


@calibration_group.command("approve")
@click.argument("run_id", type=int)
@click.argument("codes", nargs=-1, required=True)
@click.option("--note", default="")
@as_option
def calibration_approve(run_id, codes, note, username):
    """Approve pretest items of a run: each becomes operational with the run's parameters."""
    from itembank import calibration

    who = _actor(username)

    def approve(session, code):
        version = calibration.approve(session, _program(), run_id, code, now=_now(), note=note, **who)
        return f"version {version.version} (a={version.a:.3f} b={version.b:.3f} c={version.c:.3f})"

    _decide_each(codes, approve, "operational, {outcome}")


@calibration_group.command("reject")
@click.argument("run_id", type=int)
@click.argument("codes", nargs=-1, required=True)
@click.option("--note", required=True, help="Why (the author reads it).")
@as_option
def calibration_reject(run_id, codes, note, username):
    """Reject pretest items of a run: each goes back to review."""
    from itembank import calibration

    who = _actor(username)
    _decide_each(codes, lambda session, code: calibration.reject(session, _program(), run_id, code, now=_now(),
                                                                 note=note, **who), "back in review")


@calibration_group.command("acknowledge")
@click.argument("run_id", type=int)
@click.argument("codes", nargs=-1, required=True)
@click.option("--note", default="")
@as_option
def calibration_acknowledge(run_id, codes, note, username):
    """Acknowledge drift flags of a drift run (the items stay as they are)."""
    from itembank import calibration

    who = _actor(username)
    _decide_each(codes, lambda session, code: calibration.acknowledge(session, run_id, code, now=_now(),
                                                                      note=note, **who), "drift acknowledged")


@calibration_group.command("responses")
@click.argument("responses_csv", type=click.Path(dir_okay=False, writable=True))
@click.option("--anchors", "anchors_csv", type=click.Path(dir_okay=False, writable=True),
              help="Also write PARAMS.csv of the operational versions, for `cbt calibrate --fixed`.")
@_with_window
@as_option
def calibration_responses(responses_csv, anchors_csv, start, end, username):
    """Export finished sittings' responses in the CSV format of `cbt calibrate` (R and other tools read it)."""
    from delivery import pretest

    who = _actor(username)
    window = _window(start, end)
    with _open() as session:
        responses = pretest.export_responses(session, now=_now(), **window, **who)
        Path(responses_csv).write_text(responses, encoding="utf-8")
        if anchors_csv:
            Path(anchors_csv).write_text(pretest.export_anchors(session, now=_now(), **window, **who),
                                         encoding="utf-8")
    header, *rows = csv.reader(io.StringIO(responses))
    click.echo(f"wrote {len(rows)} sittings x {len(header) - 1} item versions to {responses_csv}"
               + (f" and the anchors to {anchors_csv}" if anchors_csv else ""))


COMMANDS = [items_group, calibration_group]
