"""Moving the bank in and out: the native JSON format, and what every import shares.

The native format round-trips the bank losslessly: every item with its syllabus
place, status, author, every version (content in clear, parameters with their
provenance, who and when) and its lifecycle history, and the enemy sets. It is
an export of the most sensitive asset: the file holds the content in clear, so
exports are audited and belong on encrypted media.

An import is one transaction. Every item that cannot be taken is listed with
the reason; then either the good items land (``mode="valid"``) or, when
anything was refused, nothing does (``mode="all"``, the default).
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

from sqlalchemy import select, text
from sqlalchemy.orm import Session, selectinload

from itembank.bank import Parameters, _version, add_item, check_content_for_program
from itembank.content import ContentError, from_dict, to_dict, unpack
from itembank.enemies import enemy_sets, save_enemy_set
from itembank.models import ITEM_STATUSES, CalibrationItem, CalibrationRun, Item, ItemStatusChange
from itembank.program import ExamProgram
from persistence import audit
from persistence.errors import DomainError, InvalidInput

FORMAT = "cbt-item-bank"
FORMAT_VERSION = 1
IMPORT_MODES = ("all", "valid")


@dataclass(frozen=True)
class Rejected:
    where: str  # the item code or file
    reason: str


@dataclass(frozen=True)
class ItemOutcome:
    """What an import made of one item it could take: its code, what it kept and what it changed."""

    where: str  # the item's file in the package
    code: str
    kept: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()


@dataclass
class ImportReport:
    mode: str
    accepted: list[str] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    landed: bool = False
    notes: list[str] = field(default_factory=list)
    items: list[ItemOutcome] = field(default_factory=list)  # every item that could be taken (QTI)

    @property
    def summary(self) -> str:
        if self.landed:
            text = f"{len(self.accepted)} item(s) imported"
            return text + (f", {len(self.rejected)} refused" if self.rejected else "")
        if not self.rejected:
            return "nothing to import"
        if self.mode == "all" and self.items:
            return (f"nothing imported: {len(self.rejected)} item(s) refused and the import was all-or-nothing "
                    f"({len(self.items)} item(s) could have been taken)")
        return f"nothing imported: {len(self.rejected)} item(s) refused"


def check_mode(mode: str) -> str:
    if mode not in IMPORT_MODES:
        raise InvalidInput(f"unknown import mode {mode!r}: 'all' (all or nothing) or 'valid' (the good items land)")
    return mode


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="microseconds") if moment else None


def _time(text: str | None, where: str) -> dt.datetime | None:
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise InvalidInput(f"{where}: {text!r} is not an ISO date-time") from None
    if moment.tzinfo is None:
        raise InvalidInput(f"{where}: {text!r} has no time zone")
    return moment


def export_bank(session: Session, program: ExamProgram, *, actor: str, actor_role: str, now: dt.datetime,
                codes: list[str] | None = None) -> dict:
    """The bank (or the items ``codes``) as a native JSON document; the export is audited."""
    query = select(Item).options(selectinload(Item.versions), selectinload(Item.history)).order_by(Item.code)
    if codes:
        query = query.where(Item.code.in_(codes))
    items = []
    for item in session.scalars(query):
        items.append({
            "code": item.code,
            "category": item.category,
            "field": item.field,
            "status": item.status,
            "author": item.author,
            "created_at": _iso(item.created_at),
            "versions": [{
                "version": v.version,
                "created_at": _iso(v.created_at),
                "created_by": v.created_by,
                "note": v.note,
                "content": to_dict(unpack(v.content)),
                "parameters": None if not v.has_parameters else {
                    "a": v.a, "b": v.b, "c": v.c, "se_a": v.se_a, "se_b": v.se_b, "se_c": v.se_c,
                    "source": v.parameter_source, "n_responses": v.n_responses,
                    "calibration_run": v.calibration_run_id,
                },
            } for v in item.versions],
            "history": [{
                "from": h.from_status, "to": h.to_status, "actor": h.actor, "actor_role": h.actor_role,
                "at": _iso(h.at), "reason": h.reason, "calibration_run": h.calibration_run_id,
            } for h in item.history],
        })
    exported = {i["code"] for i in items}
    sets = [{
        "name": s.name, "note": s.note, "created_by": s.created_by, "created_at": _iso(s.created_at),
        "items": [m.item.code for m in s.members],
    } for s in enemy_sets(session) if not codes or all(m.item.code in exported for m in s.members)]
    audit.record(session, actor=actor, actor_role=actor_role, action="bank.export", subject="bank",
                 details={"format": "native", "items": len(items)}, at=now)
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "program": program.code,
            "items": items, "enemy_sets": sets, "calibration_runs": _export_runs(session, exported)}


RUN_FIELDS = ("kind", "model", "created_by", "n_sittings", "n_anchors", "converged", "iterations", "log_likelihood",
              "latent_mean", "latent_sd", "settings", "summary")
RUN_ITEM_FIELDS = ("n_responses", "a", "b", "c", "se_a", "se_b", "se_c", "previous_a", "previous_b", "previous_c",
                   "converged", "message", "flagged", "flags", "statistics", "decision", "decided_by",
                   "decision_note")


def _export_runs(session: Session, codes: set[str]) -> list[dict]:
    """The calibration runs behind the exported parameters: provenance travels with the bank."""
    out = []
    for run in session.scalars(select(CalibrationRun).options(selectinload(CalibrationRun.items).selectinload(
            CalibrationItem.item).selectinload(Item.versions)).order_by(CalibrationRun.id)):
        entries = [e for e in run.items if e.item.code in codes]
        if not entries:
            continue
        number = {v.id: v.version for v in (v for e in entries for v in e.item.versions)}
        out.append({
            "id": run.id, **{name: getattr(run, name) for name in RUN_FIELDS},
            "created_at": _iso(run.created_at), "window_from": _iso(run.window_from), "window_to": _iso(run.window_to),
            "items": [{"code": e.item.code, "version": number[e.item_version_id],
                       "new_version": number.get(e.new_version_id), "decided_at": _iso(e.decided_at),
                       **{name: getattr(e, name) for name in RUN_ITEM_FIELDS}} for e in entries],
        })
    return out


def _import_runs(session: Session, raw_runs: list, items: dict[str, Item]) -> dict[int, int]:
    """Recreate exported runs (keeping their ids where free); returns old id -> new id."""
    taken = set(session.scalars(select(CalibrationRun.id)))
    mapping = {}
    for raw in raw_runs:
        run = CalibrationRun(**{name: raw[name] for name in RUN_FIELDS},
                             created_at=_time(raw["created_at"], "run"), window_from=_time(raw["window_from"], "run"),
                             window_to=_time(raw["window_to"], "run"))
        if raw["id"] not in taken:
            run.id = raw["id"]
        session.add(run)
        session.flush()
        taken.add(run.id)
        mapping[raw["id"]] = run.id
        for e in raw["items"]:
            item = items.get(e["code"])
            if item is None:
                continue
            versions = {v.version: v.id for v in item.versions}
            run.items.append(CalibrationItem(
                item_id=item.id, item_version_id=versions[e["version"]], new_version_id=versions.get(e["new_version"]),
                decided_at=_time(e["decided_at"], "run item"), **{name: e[name] for name in RUN_ITEM_FIELDS}))
    if mapping and session.get_bind().dialect.name == "postgresql":
        # Ids written explicitly do not advance PostgreSQL's sequence; move it past them.
        session.execute(text("SELECT setval(pg_get_serial_sequence('calibration_runs', 'id'), "
                             "(SELECT MAX(id) FROM calibration_runs))"))
    return mapping


def _parse_item(raw: dict, program: ExamProgram, runs: set[int]) -> Item:
    """One exported item as an unsaved Item; DomainError/ContentError say what is wrong."""
    code = raw.get("code")
    if not isinstance(code, str) or not code.strip() or len(code) > 32:
        raise InvalidInput("an item code needs 1 to 32 characters")
    try:
        field_code = program.field_of_category(int(raw["category"]))
    except (KeyError, TypeError, ValueError):
        raise InvalidInput(f"category {raw.get('category')!r} is not in the syllabus of {program.code}") from None
    if raw.get("status") not in ITEM_STATUSES:
        raise InvalidInput(f"unknown status {raw.get('status')!r}")
    versions = raw.get("versions")
    if not isinstance(versions, list) or not versions:
        raise InvalidInput("an item needs at least one version")
    item = Item(code=code, category=int(raw["category"]), field=field_code, status=raw["status"],
                author=str(raw.get("author") or "system"), created_at=_time(raw.get("created_at"), "created_at"))
    numbers = []
    for index, v in enumerate(versions, start=1):
        where = f"version {v.get('version', index)}"
        content = from_dict(v.get("content") or {})
        check_content_for_program(program, code, content)
        p = v.get("parameters")
        parameters = None
        if p is not None:
            try:
                parameters = Parameters(float(p["a"]), float(p["b"]), float(p["c"]), str(p.get("source", "import")),
                                        p.get("se_a"), p.get("se_b"), p.get("se_c"),
                                        p.get("calibration_run") if p.get("calibration_run") in runs else None,
                                        p.get("n_responses"))
            except (KeyError, TypeError, ValueError):
                raise InvalidInput(f"{where}: parameters need numbers a, b and c") from None
        version = _version(int(v.get("version", index)), content, parameters, str(v.get("created_by") or "system"),
                           _time(v.get("created_at"), f"{where} created_at") or dt.datetime.now(dt.timezone.utc),
                           str(v.get("note") or ""))
        item.versions.append(version)
        numbers.append(version.version)
    if numbers != sorted(set(numbers)):
        raise InvalidInput("version numbers must be distinct and in order")
    if item.status == "operational" and not item.versions[-1].has_parameters:
        raise InvalidInput("an operational item needs IRT parameters")
    for h in raw.get("history") or []:
        item.history.append(ItemStatusChange(
            from_status=h.get("from"), to_status=h["to"], actor=str(h.get("actor") or "system"),
            actor_role=str(h.get("actor_role") or "system"), at=_time(h.get("at"), "history"),
            reason=str(h.get("reason") or ""), calibration_run_id=h.get("calibration_run") if h.get(
                "calibration_run") in runs else None))
    return item


def import_bank(session: Session, program: ExamProgram, document: dict | str | bytes, *, actor: str,
                actor_role: str, now: dt.datetime, mode: str = "all") -> ImportReport:
    """Import a native export into the bank (in the caller's transaction; the caller commits)."""
    check_mode(mode)
    report = ImportReport(mode)
    if isinstance(document, (str, bytes)):
        try:
            document = json.loads(document)
        except ValueError as error:
            report.rejected.append(Rejected("file", f"not JSON: {error}"))
            return report
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        report.rejected.append(Rejected("file", f"not a {FORMAT} export"))
        return report
    if document.get("format_version") != FORMAT_VERSION:
        report.rejected.append(Rejected("file", f"format version {document.get('format_version')!r} is not "
                                                f"{FORMAT_VERSION}"))
        return report
    if document.get("program") != program.code:
        report.notes.append(f"exported from program {document.get('program')!r}, imported into {program.code!r}")
    existing = set(session.scalars(select(Item.code)))
    raw_runs = [r for r in document.get("calibration_runs") or [] if isinstance(r, dict) and "id" in r]
    runs = {r["id"] for r in raw_runs}  # run references are resolved after the runs are recreated
    parsed: list[Item] = []
    seen: set[str] = set()
    for index, raw in enumerate(document.get("items") or [], start=1):
        where = str(raw.get("code") or f"item #{index}") if isinstance(raw, dict) else f"item #{index}"
        try:
            if not isinstance(raw, dict):
                raise InvalidInput("not an object")
            if raw.get("code") in existing:
                raise InvalidInput("already in the bank")
            if raw.get("code") in seen:
                raise InvalidInput("appears twice in the file")
            item = _parse_item(raw, program, runs)
        except (DomainError, ContentError) as error:
            report.rejected.append(Rejected(where, str(error)))
            continue
        seen.add(item.code)
        parsed.append(item)
    if report.rejected and mode == "all":
        return report
    run_refs = [(v, v.calibration_run_id) for item in parsed for v in item.versions] + [
        (h, h.calibration_run_id) for item in parsed for h in item.history]
    for holder, _ in run_refs:
        holder.calibration_run_id = None
    for item in parsed:
        session.add(item)
        report.accepted.append(item.code)
    session.flush()
    mapping = _import_runs(session, raw_runs, {item.code: item for item in parsed})
    for holder, old in run_refs:
        holder.calibration_run_id = mapping.get(old)
    session.flush()
    for raw in document.get("enemy_sets") or []:
        members = [c for c in raw.get("items", []) if c in seen or c in existing]
        if len(members) >= 2:
            kept = save_enemy_set(session, raw["name"], members, actor=actor, actor_role=actor_role, now=now,
                                  note=raw.get("note", ""))
            kept.created_by = str(raw.get("created_by") or actor)
            kept.created_at = _time(raw.get("created_at"), "enemy set") or now
    report.landed = bool(parsed)
    audit.record(session, actor=actor, actor_role=actor_role, action="bank.import", subject="bank",
                 details={"format": "native", "accepted": report.accepted, "rejected": len(report.rejected)},
                 at=now)
    return report


def create_draft(session: Session, program: ExamProgram, *, code: str, category: int, content,
                 actor: str, actor_role: str, now: dt.datetime, note: str, audited: bool = True) -> Item:
    """A new draft item written by ``actor`` (the web form, the CLI, QTI import).

    An import records one audit event for all its items (``audited=False`` here).
    """
    item = add_item(session, program, code=code, category=category, status="draft", content=content,
                    author=actor, at=now, note=note)
    session.flush()
    if audited:
        audit.record(session, actor=actor, actor_role=actor_role, action="item.create", subject=f"item:{item.code}",
                     details={"category": category}, at=now)
    return item
