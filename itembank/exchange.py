"""Moving the bank in and out: the native JSON format, and what every import shares.

The native format round-trips the bank losslessly: every item with its syllabus
place, status, author, every version (content in clear, parameters with their
provenance, who and when) and its lifecycle history, the enemy sets and the
calibration runs behind the parameters. It is an export of the most sensitive
asset: the file holds the content in clear, so exports are audited and belong on
encrypted media.

A file comes back in one of two ways:

* **import** (:func:`import_bank`, a psychometrician at ``/bank/exchange`` or
  ``cbt items import``): the items are *new drafts written by the importer*. Status,
  parameters, authors, versions' writers and lifecycle history in the file are not
  taken: an item reaches pretest and operational only through review (four eyes) and
  calibration here, whatever another system said. Each item's newest content becomes
  its version 1.
* **restore** (:func:`restore_bank`, the operator's ``cbt items restore``): the whole
  bank as it was, into an empty bank, everything kept, audited as a restore.

An import is one transaction. Every item that cannot be taken is listed with
the reason (for a malformed file, the path of the field at fault); then either the
good items land (``mode="valid"``) or, when anything was refused, nothing does
(``mode="all"``, the default).
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, selectinload

from itembank.bank import Parameters, _version, add_item, check_code, check_content_for_program
from itembank.content import ContentError, ItemContent, LanguageVersion, to_dict, unpack
from itembank.enemies import enemy_sets, save_enemy_set
from itembank.models import (
    ITEM_STATUSES,
    PARAMETER_SOURCES,
    CalibrationItem,
    CalibrationRun,
    EnemySet,
    Item,
    ItemStatusChange,
)
from itembank.program import ExamProgram
from persistence import audit
from persistence.errors import Conflict, DomainError, InvalidInput
from persistence.unit_of_work import unit_of_work

FORMAT = "cbt-item-bank"
FORMAT_VERSION = 1
IMPORT_MODES = ("all", "valid")
# The largest file any import takes (native JSON or a QTI package), in bytes: the web's
# upload limit for the import routes is this too (delivery.web.psychometrician.UPLOAD_LIMITS).
IMPORT_MAX_BYTES = 50 * 1024 * 1024


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
        raise InvalidInput("unknown import mode {mode!r}: 'all' (all or nothing) or 'valid' (the good items land)",
                           field="mode", mode=mode)
    return mode


def size_refusal(data: bytes | str, name: str) -> Rejected | None:
    """Why a file is too large for any import (None if it is not)."""
    if len(data) > IMPORT_MAX_BYTES:
        return Rejected(name, f"the file is {len(data) / 2**20:.1f} MiB; an import takes at most "
                              f"{IMPORT_MAX_BYTES // 2**20} MiB")
    return None


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="microseconds") if moment else None


# The document, as pydantic validates it ---------------------------------------------------------

Number = Annotated[float, Field(allow_inf_nan=False)]
# Who did something (an account name, as the bank stores it) and free text of a record.
Name = Annotated[str, Field(max_length=64)]
Note = Annotated[str, Field(max_length=500)]
Status = Literal[ITEM_STATUSES]  # type: ignore[valid-type]


class _Part(BaseModel):
    # Fields a later format version may add are ignored; the ones read here are checked.
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class TableDocument(_Part):
    header: list[str | int | float]
    rows: list[list[str | int | float]]


class FigureDocument(_Part):
    model_config = ConfigDict(extra="forbid")
    media_type: str
    data: str
    alt: str


class StimulusDocument(_Part):
    model_config = ConfigDict(extra="forbid")
    identifier: str
    title: str
    text: str


class LanguageStimulusDocument(_Part):
    model_config = ConfigDict(extra="forbid")
    title: str
    text: str


class LanguageVersionDocument(_Part):
    """The item's text in another language (the key and the figure's image are the item's)."""

    language: str
    stem: str
    options: list[str] = Field(min_length=2)
    rationale: str | None = ""
    table: TableDocument | None = None
    figure_alt: str = ""
    stimulus: LanguageStimulusDocument | None = None
    instructions: str = ""
    title: str = ""

    def version(self) -> LanguageVersion:
        return LanguageVersion(language=self.language, stem=self.stem, options=tuple(self.options),
                               rationale=self.rationale or "", table=self.table.model_dump() if self.table else None,
                               figure_alt=self.figure_alt,
                               stimulus=self.stimulus.model_dump() if self.stimulus else None,
                               instructions=self.instructions, title=self.title)


class ContentDocument(_Part):
    stem: str
    options: list[str] = Field(min_length=2)
    key: int
    rationale: str | None = ""
    table: TableDocument | None = None
    figure: FigureDocument | None = None
    # What QTI brings (itembank.qti): kept through the native format too.
    stimulus: StimulusDocument | None = None
    instructions: str = ""
    title: str = ""
    language: str = ""
    choice_ids: list[str] = []
    shuffle: bool = True
    fixed: list[int] = []
    # The text in other languages than ``language``.
    translations: list[LanguageVersionDocument] = []

    def content(self) -> ItemContent:
        """The item content (ContentError says what the content itself gets wrong)."""
        return ItemContent(stem=self.stem, options=tuple(self.options), key=self.key,
                           rationale=self.rationale or "", table=self.table.model_dump() if self.table else None,
                           figure=self.figure.model_dump() if self.figure else None,
                           stimulus=self.stimulus.model_dump() if self.stimulus else None,
                           instructions=self.instructions, title=self.title, language=self.language,
                           choice_ids=tuple(self.choice_ids), shuffle=self.shuffle, fixed=tuple(self.fixed),
                           translations=tuple(t.version() for t in self.translations))


class ParametersDocument(_Part):
    a: Number
    b: Number
    c: Number
    se_a: Number | None = None
    se_b: Number | None = None
    se_c: Number | None = None
    source: Literal[PARAMETER_SOURCES] = "import"  # type: ignore[valid-type]
    n_responses: int | None = None
    calibration_run: int | None = None


class VersionDocument(_Part):
    version: int | None = None
    created_at: AwareDatetime | None = None
    created_by: Name | None = None
    note: str | None = ""  # cut to the stored length
    content: ContentDocument
    parameters: ParametersDocument | None = None


class HistoryDocument(_Part):
    from_status: Status | None = Field(default=None, alias="from")
    to_status: Status = Field(alias="to")
    actor: Name | None = None
    actor_role: Annotated[str, Field(max_length=32)] | None = None
    at: AwareDatetime
    reason: Note | None = ""
    calibration_run: int | None = None


class ItemDocument(_Part):
    code: str
    category: int
    status: str = "draft"  # an import does not take it; a restore checks it
    author: Name | None = None
    created_at: AwareDatetime | None = None
    versions: list[VersionDocument] = Field(min_length=1)
    history: list[HistoryDocument] = []


class EnemySetDocument(_Part):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    note: Note | None = ""
    created_by: Name | None = None
    created_at: AwareDatetime | None = None
    items: list[str]


class RunItemDocument(_Part):
    code: str
    version: int
    new_version: int | None = None
    decided_at: AwareDatetime | None = None
    n_responses: int
    a: Number | None = None
    b: Number | None = None
    c: Number | None = None
    se_a: Number | None = None
    se_b: Number | None = None
    se_c: Number | None = None
    previous_a: Number | None = None
    previous_b: Number | None = None
    previous_c: Number | None = None
    converged: bool
    message: Note = ""
    flagged: bool = False
    flags: list[str] = []
    statistics: dict[str, Any] = {}
    decision: Literal["pending", "approved", "rejected", "acknowledged"] = "pending"
    decided_by: Name | None = None
    decision_note: Note = ""


class RunDocument(_Part):
    id: int
    kind: Literal["pretest", "drift"]
    model: Annotated[str, Field(max_length=8)]
    created_by: Name
    created_at: AwareDatetime
    window_from: AwareDatetime | None = None
    window_to: AwareDatetime | None = None
    n_sittings: int
    n_anchors: int
    converged: bool
    iterations: int
    log_likelihood: Number
    latent_mean: Number
    latent_sd: Number
    settings: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    items: list[RunItemDocument] = []


class BankDocument(_Part):
    """The document around the items (each item is validated on its own, so that one bad
    item is refused with its reason and the others may still land)."""

    format: str
    format_version: int
    program: str | None = None
    items: list[Any] = []
    enemy_sets: list[EnemySetDocument] = []
    calibration_runs: list[RunDocument] = []


def _path(location: tuple, prefix: str = "") -> str:
    """A pydantic error location as a path in the document: ``items[3].versions[0].content.key``."""
    out = prefix
    for part in location:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _first_error(error: ValidationError, prefix: str = "") -> str:
    """The first problem pydantic found, as 'path: message' (and how many more there are)."""
    problems = error.errors(include_url=False)
    first = problems[0]
    where = _path(tuple(first["loc"]), prefix) or prefix or "file"
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    return f"{where}: {first['msg']}{more}"


def _read_document(document: dict | str | bytes, report: ImportReport, name: str) -> BankDocument | None:
    """The validated document, or None with the refusal in ``report``."""
    if isinstance(document, (str, bytes)):
        too_large = size_refusal(document, name)
        if too_large:
            report.rejected.append(too_large)
            return None
        try:
            document = json.loads(document)
        except ValueError as error:  # json.JSONDecodeError and UnicodeDecodeError
            report.rejected.append(Rejected(name, f"not JSON: {error}"))
            return None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        report.rejected.append(Rejected(name, f"not a {FORMAT} export"))
        return None
    if document.get("format_version") != FORMAT_VERSION:
        report.rejected.append(Rejected(name, f"format version {document.get('format_version')!r} is not "
                                              f"{FORMAT_VERSION}"))
        return None
    try:
        return BankDocument.model_validate(document)
    except ValidationError as error:
        report.rejected.append(Rejected(name, _first_error(error)))
        return None


def _where(raw: Any, index: int) -> str:
    """How a report names an item of the file: its code, else its place."""
    code = raw.get("code") if isinstance(raw, dict) else None
    return str(code) if isinstance(code, (str, int)) and str(code).strip() else f"item #{index + 1}"


def _item_document(raw: Any, index: int) -> ItemDocument:
    """The validated item, or InvalidInput naming the field at fault."""
    try:
        return ItemDocument.model_validate(raw)
    except ValidationError as error:
        raise InvalidInput(_first_error(error, f"items[{index}]")) from None


def parse_content(raw: Any, where: str = "content") -> ItemContent:
    """Item content from a JSON value (stem, options, key, rationale, table, figure), or InvalidInput
    naming the field at fault (after ``where``, e.g. the file's name)."""
    try:
        document = ContentDocument.model_validate(raw)
    except ValidationError as error:
        raise InvalidInput("{where}: {first_error}", where=where, first_error=_first_error(error)) from None
    try:
        return document.content()
    except ContentError as error:
        raise ContentError("{where}: {error}", where=where, error=error) from None


def _content(version: VersionDocument, where: str) -> ItemContent:
    try:
        return version.content.content()
    except ContentError as error:
        raise ContentError("{where}.content: {error}", where=where, error=error) from None


# Export ---------------------------------------------------------------------------------------

def export_bank(session: Session, program: ExamProgram, *, actor: str, actor_role: str, now: dt.datetime,
                codes: list[str] | None = None) -> dict:
    """The bank (or the items ``codes``) as a native JSON document. The export is audited; commits."""
    with unit_of_work(session):
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
        document = {"format": FORMAT, "format_version": FORMAT_VERSION, "program": program.code,
                    "items": items, "enemy_sets": sets, "calibration_runs": _export_runs(session, exported)}
    return document


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


# Import: new drafts by the importer -----------------------------------------------------------

def create_draft(session: Session, program: ExamProgram, *, code: str, category: int, content,
                 actor: str, actor_role: str, now: dt.datetime, note: str, audited: bool = True) -> Item:
    """A new draft item written by ``actor`` (the web form, the CLI, QTI import). Commits.

    An import records one audit event for all its items (``audited=False`` here) and
    runs it inside its own unit of work, which this joins.
    """
    with unit_of_work(session):
        item = add_item(session, program, code=code, category=category, status="draft", content=content,
                        author=actor, at=now, note=note)
        session.flush()
        if audited:
            audit.record(session, actor=actor, actor_role=actor_role, action="item.create",
                         subject=f"item:{item.code}", details={"category": category}, at=now)
    return item


# What an import does not take from the file, with the reason shown to the importer.
NOT_TAKEN = ("the file's status, parameters, authors and lifecycle history are not taken: each item lands as a "
             "draft written by you (review, pretest and calibration give it the rest); a whole bank comes back "
             "with the operator's `cbt items restore`")


def import_bank(session: Session, program: ExamProgram, document: dict | str | bytes, *, actor: str,
                actor_role: str, now: dt.datetime, mode: str = "all", name: str = "file") -> ImportReport:
    """Import the items of a native export as new drafts written by ``actor``. One transaction; commits.

    Each item's newest version becomes the content of its version 1. What the file says of
    status, parameters, authors, versions' writers, lifecycle history and calibration runs is
    not taken (see :data:`NOT_TAKEN`); enemy sets are, as the importer's, unless a set of
    that name is already in the bank.
    """
    check_mode(mode)
    report = ImportReport(mode)
    parsed = _read_document(document, report, name)
    if parsed is None:
        return report
    if parsed.program != program.code:
        report.notes.append(f"exported from program {parsed.program!r}, imported into {program.code!r}")
    with unit_of_work(session):
        existing = set(session.scalars(select(Item.code)))
        good: list[tuple[ItemDocument, ItemContent]] = []
        seen: set[str] = set()
        changed = 0
        for index, raw in enumerate(parsed.items):
            where = _where(raw, index)
            try:
                item = _item_document(raw, index)
                code = check_code(item.code)
                if code in existing:
                    raise InvalidInput("already in the bank")
                if code in seen:
                    raise InvalidInput("appears twice in the file")
                try:
                    program.field_of_category(item.category)
                except KeyError:
                    raise InvalidInput("items[{index}].category: {category} is not in the syllabus of {code}",
                                       index=index, category=item.category, code=program.code) from None
                newest = len(item.versions) - 1
                content = _content(item.versions[newest], f"items[{index}].versions[{newest}]")
                check_content_for_program(program, code, content)
            except DomainError as error:
                report.rejected.append(Rejected(where, str(error)))
                continue
            seen.add(code)
            good.append((item, content))
            changed += (item.status != "draft" or len(item.versions) > 1 or item.versions[-1].parameters is not None
                        or bool(item.author and item.author != actor) or len(item.history) > 1)
        if report.rejected and mode == "all":
            return report
        for item, content in good:
            number = item.versions[-1].version or len(item.versions)
            create_draft(session, program, code=item.code, category=item.category, content=content, actor=actor,
                         actor_role=actor_role, now=now, audited=False,
                         note=f"imported from {name} (version {number} there)")
            report.accepted.append(item.code.strip())
        if changed:
            report.notes.append(f"{changed} item(s) were more than drafts in the file: {NOT_TAKEN}")
        if parsed.calibration_runs:
            report.notes.append(f"{len(parsed.calibration_runs)} calibration run(s) in the file are not imported: "
                                "they belong to the parameters an import does not take")
        _import_enemy_sets(session, parsed.enemy_sets, seen | existing, report, actor=actor, actor_role=actor_role,
                           now=now)
        report.landed = bool(good)
        if report.landed:
            audit.record(session, actor=actor, actor_role=actor_role, action="bank.import", subject="bank",
                         details={"format": "native", "accepted": report.accepted,
                                  "rejected": len(report.rejected)}, at=now)
    return report


def _import_enemy_sets(session: Session, sets: list[EnemySetDocument], codes: set[str], report: ImportReport, *,
                       actor: str, actor_role: str, now: dt.datetime) -> None:
    taken = set(session.scalars(select(EnemySet.name)))
    for raw in sets:
        if raw.name.strip() in taken:
            report.notes.append(f"enemy set {raw.name!r} is already in the bank: kept as it is, not replaced")
            continue
        members = [c for c in raw.items if c in codes]
        if len(members) >= 2:
            save_enemy_set(session, raw.name, members, actor=actor, actor_role=actor_role, now=now,
                           note=raw.note or "")


# Restore: the whole bank as it was ------------------------------------------------------------

def _restored_item(item: ItemDocument, index: int, program: ExamProgram, runs: set[int]) -> Item:
    """One exported item as an unsaved Item with everything the file says; DomainError says what is wrong."""
    code = check_code(item.code)
    try:
        field_code = program.field_of_category(item.category)
    except KeyError:
        raise InvalidInput("items[{index}].category: {category} is not in the syllabus of {code}", index=index,
                           category=item.category, code=program.code) from None
    if item.status not in ITEM_STATUSES:
        raise InvalidInput("items[{index}].status: unknown status {status!r}", index=index, status=item.status)
    restored = Item(code=code, category=item.category, field=field_code, status=item.status,
                    author=item.author or "system", created_at=item.created_at)
    numbers = []
    for number, v in enumerate(item.versions, start=1):
        where = f"items[{index}].versions[{number - 1}]"
        content = _content(v, where)
        check_content_for_program(program, code, content)
        parameters = None
        if v.parameters is not None:
            p = v.parameters
            try:
                parameters = Parameters(p.a, p.b, p.c, p.source, p.se_a, p.se_b, p.se_c,
                                        p.calibration_run if p.calibration_run in runs else None, p.n_responses)
            except InvalidInput as error:
                raise InvalidInput("{where}.parameters: {error}", where=where, error=error) from None
        version = _version(v.version or number, content, parameters, v.created_by or "system",
                           v.created_at or dt.datetime.now(dt.timezone.utc), v.note or "")
        restored.versions.append(version)
        numbers.append(version.version)
    if numbers != sorted(set(numbers)):
        raise InvalidInput("items[{index}].versions: version numbers must be distinct and in order", index=index)
    if restored.status == "operational" and not restored.versions[-1].has_parameters:
        raise InvalidInput("items[{index}]: an operational item needs IRT parameters", index=index)
    for h in item.history:
        restored.history.append(ItemStatusChange(
            from_status=h.from_status, to_status=h.to_status, actor=h.actor or "system",
            actor_role=h.actor_role or "system", at=h.at, reason=h.reason or "",
            calibration_run_id=h.calibration_run if h.calibration_run in runs else None))
    return restored


def _restore_runs(session: Session, raw_runs: list[RunDocument], items: dict[str, Item]) -> dict[int, int]:
    """Recreate exported runs (keeping their ids where free); returns old id -> new id."""
    taken = set(session.scalars(select(CalibrationRun.id)))
    mapping = {}
    for index, raw in enumerate(raw_runs):
        run = CalibrationRun(**{name: getattr(raw, name) for name in RUN_FIELDS}, created_at=raw.created_at,
                             window_from=raw.window_from, window_to=raw.window_to)
        if raw.id not in taken:
            run.id = raw.id
        session.add(run)
        session.flush()
        taken.add(run.id)
        mapping[raw.id] = run.id
        for position, e in enumerate(raw.items):
            item = items.get(e.code)
            if item is None:
                continue
            versions = {v.version: v.id for v in item.versions}
            if e.version not in versions:
                raise InvalidInput("calibration_runs[{index}].items[{position}].version: item {code} has no version {version}",
                                   index=index, position=position, code=e.code, version=e.version)
            run.items.append(CalibrationItem(
                item_id=item.id, item_version_id=versions[e.version], new_version_id=versions.get(e.new_version),
                decided_at=e.decided_at, **{name: getattr(e, name) for name in RUN_ITEM_FIELDS}))
    if mapping and session.get_bind().dialect.name == "postgresql":
        # Ids written explicitly do not advance PostgreSQL's sequence; move it past them.
        session.execute(text("SELECT setval(pg_get_serial_sequence('calibration_runs', 'id'), "
                             "(SELECT MAX(id) FROM calibration_runs))"))
    return mapping


def restore_bank(session: Session, program: ExamProgram, document: dict | str | bytes, *, actor: str,
                 actor_role: str, now: dt.datetime, reason: str, name: str = "file") -> ImportReport:
    """Restore a whole bank from a native export into an empty bank: statuses, parameters,
    versions, lifecycle history, enemy sets and calibration runs as the file has them.

    The operator's action (``cbt items restore``), not a psychometrician's: it takes what
    the file says of who approved what. All or nothing; audited as ``bank.restore``; commits.
    """
    if not reason.strip():
        raise InvalidInput("say why the bank is restored (kept in the audit trail)", field="reason")
    report = ImportReport("all")
    parsed = _read_document(document, report, name)
    if parsed is None:
        return report
    if parsed.program != program.code:
        report.notes.append(f"exported from program {parsed.program!r}, restored into {program.code!r}")
    with unit_of_work(session):
        held = session.scalar(select(func.count(Item.id))) or 0
        if held:
            raise Conflict("the bank holds {held} item(s): a restore goes into an empty bank only (import the file "
                           "instead to add its items as drafts)", held=held)
        runs = {r.id for r in parsed.calibration_runs}  # references are resolved after the runs are recreated
        restored: list[Item] = []
        seen: set[str] = set()
        for index, raw in enumerate(parsed.items):
            where = _where(raw, index)
            try:
                item = _item_document(raw, index)
                if item.code.strip() in seen:
                    raise InvalidInput("appears twice in the file")
                restored.append(_restored_item(item, index, program, runs))
                seen.add(restored[-1].code)
            except DomainError as error:
                report.rejected.append(Rejected(where, str(error)))
        if report.rejected:
            return report
        run_refs = [(v, v.calibration_run_id) for item in restored for v in item.versions] + [
            (h, h.calibration_run_id) for item in restored for h in item.history]
        for holder, _ in run_refs:
            holder.calibration_run_id = None
        for item in restored:
            session.add(item)
            report.accepted.append(item.code)
        session.flush()
        mapping = _restore_runs(session, parsed.calibration_runs, {item.code: item for item in restored})
        for holder, old in run_refs:
            holder.calibration_run_id = mapping.get(old)
        for raw in parsed.enemy_sets:
            members = [c for c in raw.items if c in seen]
            if len(members) >= 2:
                kept = save_enemy_set(session, raw.name, members, actor=actor, actor_role=actor_role, now=now,
                                      note=raw.note or "")
                kept.created_by = raw.created_by or actor
                kept.created_at = raw.created_at or now
        session.flush()
        report.landed = bool(restored)
        audit.record(session, actor=actor, actor_role=actor_role, action="bank.restore", subject="bank",
                     reason=reason, details={"format": "native", "file": name[:200], "items": len(restored),
                                             "calibration_runs": len(mapping)}, at=now)
    return report


# QTI packages: the same unit of work around itembank.qti --------------------------------------

def import_qti(session: Session, program: ExamProgram, data: bytes, *, actor: str, actor_role: str,
               now: dt.datetime, mode: str = "all", category: int | None = None,
               name: str = "package") -> ImportReport:
    """Import a QTI package's choice items as drafts written by ``actor`` (:func:`itembank.qti.import_package`),
    as one transaction; commits."""
    from itembank import qti  # qti builds on this module's report and drafts

    check_mode(mode)
    too_large = size_refusal(data, name)
    if too_large:
        return ImportReport(mode, rejected=[too_large])
    with unit_of_work(session):
        return qti.import_package(session, program, data, mode=mode, category=category, name=name, now=now,
                                  actor=actor, actor_role=actor_role)


def export_qti(session: Session, program: ExamProgram, *, version: str, status: str | None, actor: str,
               actor_role: str, now: dt.datetime) -> bytes:
    """The bank (or its items in ``status``) as a QTI content package (zip). Audited; commits."""
    from itembank import qti  # qti builds on this module's report and drafts

    with unit_of_work(session):
        return qti.export_package(session, program, version=version, status=status, now=now, actor=actor,
                                  actor_role=actor_role)
