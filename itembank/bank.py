"""The item bank: adding and editing items, browsing them, and what scoring and assembly read.

Content goes in and out through :mod:`itembank.content` (encrypted at rest);
every privileged change is also written to the audit trail.
"""
from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from itembank.content import ItemContent, pack, unpack
from itembank.models import ITEM_STATUSES, Item, ItemStatusChange, ItemVersion
from itembank.program import ExamProgram
from persistence import audit
from persistence.errors import Conflict, InvalidInput, NotFound
from persistence.unit_of_work import unit_of_work


@dataclass(frozen=True)
class Parameters:
    """IRT parameters with their provenance, as a new version records them."""

    a: float
    b: float
    c: float
    source: str = "manual"
    se_a: float | None = None
    se_b: float | None = None
    se_c: float | None = None
    calibration_run_id: int | None = None
    n_responses: int | None = None

    def __post_init__(self) -> None:
        if not (self.a > 0 and -10 < self.b < 10 and 0 <= self.c < 1):
            raise InvalidInput("implausible parameters a={a}, b={b}, c={c}: need a > 0, |b| < 10, 0 <= c < 1",
                               a=self.a, b=self.b, c=self.c)


CODE_MAX_LENGTH = 32
# A code starting like a spreadsheet formula would run as one in a CSV export.
CODE_FORBIDDEN_START = ("=", "+", "-", "@")


def check_code(code: object) -> str:
    """The item code ``code`` stripped, or InvalidInput saying what is wrong with it.

    A code names the item in URLs (``/bank/items/CODE``: no ``/``, which no route
    matches even when encoded), in CSV exports (no leading ``=``, ``+``, ``-``, ``@``,
    which a spreadsheet runs as a formula) and in the database (at most 32 characters).
    """
    if not isinstance(code, str) or not code.strip():
        raise InvalidInput("an item code is needed (1 to 32 characters)", field="code")
    code = code.strip()
    if len(code) > CODE_MAX_LENGTH:
        raise InvalidInput("item code '{code}' is {length} characters long; at most {most}", field="code",
                           code=code[:40], length=len(code), most=CODE_MAX_LENGTH)
    if "/" in code:
        raise InvalidInput("item code '{code}' contains '/': a code names the item's page, use letters, "
                           "digits and '-' or '.'", field="code", code=code)
    if code.startswith(CODE_FORBIDDEN_START):
        raise InvalidInput("item code '{code}' starts with '{first}': a spreadsheet would take it for a "
                           "formula; start it with a letter or digit", field="code", code=code, first=code[0])
    if any(not character.isprintable() or character.isspace() for character in code):
        raise InvalidInput("item code '{code}' contains a space or a control character", field="code", code=code)
    return code


def check_options_for_program(program: ExamProgram, code: str, content: ItemContent) -> None:
    if len(content.options) != len(program.option_labels):
        raise InvalidInput("item {code}: the program needs {needed} options, found {found}", field="options",
                           code=code, needed=len(program.option_labels), found=len(content.options))


def check_content_for_program(program: ExamProgram, code: str, content: ItemContent) -> None:
    """A new item's code and content as the program takes them (every import checks its items here)."""
    check_code(code)
    check_options_for_program(program, code, content)


def add_item(
    session: Session,
    program: ExamProgram,
    *,
    code: str,
    category: int,
    status: str,
    content: ItemContent,
    parameters: tuple[float, float, float] | Parameters | None = None,
    parameter_source: str = "none",
    author: str = "system",
    at: dt.datetime | None = None,
    note: str = "created",
) -> Item:
    """Add an item with its first version (in the caller's transaction: a building block of
    :func:`itembank.exchange.create_draft`, the restore and the sample bank). The field follows
    from the category."""
    if status not in ITEM_STATUSES:
        raise InvalidInput("unknown status '{status}'; one of {statuses}", status=status, statuses=", ".join(ITEM_STATUSES))
    code = check_code(code)
    try:
        field = program.field_of_category(category)
    except KeyError:
        raise InvalidInput("item {code}: category {category} is not in the syllabus", code=code,
                           category=category) from None
    check_content_for_program(program, code, content)
    if parameters is not None and not isinstance(parameters, Parameters):
        parameters = Parameters(*parameters, source=parameter_source)
    if status in ("operational",) and parameters is None:
        raise InvalidInput("item {code}: an operational item needs IRT parameters", code=code)
    if session.scalar(select(Item.id).where(Item.code == code)) is not None:
        raise Conflict("item {code} is already in the bank", code=code)
    at = at or dt.datetime.now(dt.timezone.utc)
    item = Item(code=code, field=field, category=category, status=status, author=author, created_at=at)
    item.versions.append(_version(1, content, parameters, author, at, note))
    item.history.append(ItemStatusChange(from_status=None, to_status=status, actor=author, actor_role="author",
                                         at=at, reason=note))
    session.add(item)
    return item


def _version(number: int, content: ItemContent | str, parameters: Parameters | None, author: str,
             at: dt.datetime, note: str) -> ItemVersion:
    stored = content if isinstance(content, str) else pack(content)
    p = parameters
    return ItemVersion(
        version=number, content=stored,
        a=p.a if p else None, b=p.b if p else None, c=p.c if p else None,
        se_a=p.se_a if p else None, se_b=p.se_b if p else None, se_c=p.se_c if p else None,
        parameter_source=p.source if p else "none",
        calibration_run_id=p.calibration_run_id if p else None,
        n_responses=p.n_responses if p else None,
        created_by=author, created_at=at, note=note[:500],
    )


# Content may change only before an item is shown to candidates: a pretest or
# operational item's responses must all belong to the content that was calibrated.
EDITABLE = ("draft", "reviewed")


def edit_refusal(item: Item) -> Conflict | None:
    """Why ``item``'s content cannot be edited (the error :func:`edit_content` raises), or None if it can."""
    if item.status in EDITABLE:
        return None
    if item.status == "pretest":
        return Conflict("Item {code} is in pretest: its text stays as the candidates see it until a calibration run "
                        "has estimated it. Only draft and reviewed items can be edited.", code=item.code)
    if item.status == "operational":
        return Conflict("Item {code} is operational: its parameters and the results scored with it belong to this "
                        "text, so it cannot be edited. Write a new draft item instead, or correct a key by "
                        "rescoring.", code=item.code)
    return Conflict("Item {code} is retired: it stays as it was shown to candidates and cannot be edited.",
                    code=item.code)


def edit_content(session: Session, program: ExamProgram, code: str, content: ItemContent, *, actor: str,
                 actor_role: str, now: dt.datetime, reason: str = "") -> ItemVersion:
    """A new version with new content (the parameters are dropped: they belonged to the old text).

    Only draft and reviewed items can be edited; editing a reviewed item sends it
    back to draft, since the new text has not been reviewed. Commits (audited).
    """
    with unit_of_work(session):
        item = item_by_code(session, code, lock=True)
        refused = edit_refusal(item)
        if refused is not None:
            raise refused
        check_options_for_program(program, code, content)
        current = item.current_version
        if unpack(current.content) == content:
            raise Conflict("item {code}: nothing changed", code=code)
        version = _version(current.version + 1, content, None, actor, now, reason or "content edit")
        item.versions.append(version)
        if item.status == "reviewed":
            item.history.append(ItemStatusChange(from_status="reviewed", to_status="draft", actor=actor,
                                                 actor_role=actor_role, at=now,
                                                 reason="content edited after review"))
            item.status = "draft"
        session.flush()
        audit.record(session, actor=actor, actor_role=actor_role, action="item.edit", subject=f"item:{code}",
                     reason=reason, details={"version": version.version}, at=now)
    return version


def new_parameter_version(session: Session, item: Item, parameters: Parameters, *, actor: str,
                          now: dt.datetime, note: str) -> ItemVersion:
    """A new version with the current content (the same ciphertext) and new parameters."""
    current = item.current_version
    version = _version(current.version + 1, current.content, parameters, actor, now, note)
    item.versions.append(version)
    session.flush()
    return version


def item_by_code(session: Session, code: str, *, lock: bool = False) -> Item:
    query = select(Item).where(Item.code == code)
    if lock:
        query = query.with_for_update()
    item = session.scalar(query)
    if item is None:
        raise NotFound("no item {code}", code=code)
    return item


def latest_versions():
    """A subquery of each item's newest version id, as (item_id, version_id)."""
    return (
        select(ItemVersion.item_id, func.max(ItemVersion.id).label("version_id"))
        .group_by(ItemVersion.item_id)
        .subquery()
    )


@dataclass(frozen=True)
class BankEntry:
    item: Item
    version: ItemVersion
    content: ItemContent


def browse(
    session: Session,
    *,
    field: str | None = None,
    category: int | None = None,
    status: str | None = None,
    text: str | None = None,
    author: str | None = None,
) -> list[BankEntry]:
    """Items with their newest version, filtered, in code order.

    The text filter searches code, stem, options and rationale: content is
    encrypted, so it is decrypted here rather than searched in SQL.
    """
    query = _with_latest_version().order_by(Item.code)
    if field:
        query = query.where(Item.field == field)
    if category:
        query = query.where(Item.category == category)
    if status:
        query = query.where(Item.status == status)
    if author:
        query = query.where(Item.author == author)
    entries = [BankEntry(item, version, unpack(version.content)) for item, version in session.execute(query)]
    if text:
        needle = text.casefold()
        entries = [e for e in entries
                   if needle in e.item.code.casefold() or any(needle in t.casefold() for t in _searched_text(e.content))]
    return entries


def _searched_text(content: ItemContent):
    """The stem, options and rationale of every language version of the item."""
    for language in content.languages:
        shown = content.in_language(language) if language else content
        if shown is not None:
            yield shown.stem
            yield shown.rationale
            yield from shown.options


# The bank list's sort keys: columns sorted in SQL, and "shown" (the caller's exposure counts).
SORT_KEYS = ("code", "field", "category", "status", "version", "a", "b", "c", "shown")
_SORT_COLUMNS = {"code": Item.code, "field": Item.field, "category": Item.category, "status": Item.status,
                 "version": ItemVersion.version, "a": ItemVersion.a, "b": ItemVersion.b, "c": ItemVersion.c}


@dataclass(frozen=True)
class BankPage:
    """One page of the filtered, sorted bank: its entries and how many items match in all."""

    entries: list[BankEntry]
    total: int
    offset: int
    limit: int


def browse_page(
    session: Session,
    *,
    field: str | None = None,
    category: int | None = None,
    status: str | None = None,
    text: str | None = None,
    sort: str = "code",
    descending: bool = False,
    offset: int = 0,
    limit: int = 50,
    shown: dict[int, int] | None = None,
) -> BankPage:
    """A page of :func:`browse`, sorted by one of :data:`SORT_KEYS` (then by code).

    Without a text filter the page is cut in SQL and only its items are decrypted; a text
    filter reads every filtered item's content (it is encrypted, so SQL cannot search it),
    and sorting by exposure orders the item ids by the counts given in ``shown``.
    """
    if sort not in SORT_KEYS:
        raise InvalidInput("Unknown sort {sort}; one of {keys}.", field="sort", sort=sort, keys=", ".join(SORT_KEYS))
    if text or sort == "shown":
        entries = browse(session, field=field, category=category, status=status, text=text)
        counts = shown or {}
        key = {"shown": lambda e: counts.get(e.item.id, 0)}.get(sort) or (
            lambda e: _sort_value(e, sort))
        entries.sort(key=lambda e: e.item.code)
        present = [e for e in entries if key(e) is not None]
        present.sort(key=key, reverse=descending)
        ordered = present + [e for e in entries if key(e) is None]
        return BankPage(ordered[offset:offset + limit], len(ordered), offset, limit)
    query = _with_latest_version()
    filters = []
    if field:
        filters.append(Item.field == field)
    if category:
        filters.append(Item.category == category)
    if status:
        filters.append(Item.status == status)
    query = query.where(*filters)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    column = _SORT_COLUMNS[sort]
    order = [column.is_(None), column.desc() if descending else column.asc(), Item.code]
    rows = session.execute(query.order_by(*order).offset(offset).limit(limit))
    return BankPage([BankEntry(item, version, unpack(version.content)) for item, version in rows], total, offset, limit)


def _sort_value(entry: BankEntry, sort: str):
    if sort in ("version", "a", "b", "c"):
        return getattr(entry.version, sort)
    return getattr(entry.item, sort)


def entry(session: Session, code: str) -> BankEntry | None:
    """One item with its newest version, by code."""
    row = session.execute(_with_latest_version().where(Item.code == code)).first()
    return BankEntry(row[0], row[1], unpack(row[1].content)) if row else None


def version_entry(session: Session, code: str, number: int) -> BankEntry | None:
    """An older (or the newest) version of an item: old versions stay readable."""
    row = session.execute(select(Item, ItemVersion).join(ItemVersion, ItemVersion.item_id == Item.id)
                          .where(Item.code == code, ItemVersion.version == number)).first()
    return BankEntry(row[0], row[1], unpack(row[1].content)) if row else None


def _with_latest_version():
    latest = latest_versions()
    return (
        select(Item, ItemVersion)
        .join(latest, latest.c.item_id == Item.id)
        .join(ItemVersion, ItemVersion.id == latest.c.version_id)
    )


@dataclass(frozen=True)
class PoolItem:
    """What assembly needs to know of an item: no content, no key."""

    item_id: int
    version_id: int
    code: str
    field: str
    category: int
    a: float
    b: float
    c: float


def pool(session: Session, status: str) -> list[PoolItem]:
    """Every item in ``status`` with its newest version's parameters."""
    latest = latest_versions()
    rows = session.execute(
        select(Item.id, ItemVersion.id, Item.code, Item.field, Item.category, ItemVersion.a, ItemVersion.b, ItemVersion.c)
        .join(latest, latest.c.item_id == Item.id)
        .join(ItemVersion, ItemVersion.id == latest.c.version_id)
        .where(Item.status == status)
        .order_by(Item.id)
    )
    return [PoolItem(*row) for row in rows]


def versions_by_id(session: Session, version_ids) -> dict[int, ItemVersion]:
    versions = session.scalars(select(ItemVersion).where(ItemVersion.id.in_(list(version_ids))))
    return {v.id: v for v in versions}


class ContentCache:
    """Decrypted content by (database, version id), per process: bounded, least recently used
    out first. The database is part of the key because one process may serve several (tests).

    A version's content never changes once written (an edit makes a new version; a key
    rotation re-encrypts the same text), so what one request decrypted serves every later
    sitting: at a synchronised start each worker decrypts each item once, not once per
    candidate. Worker threads share it; one lock guards every read and write, so a
    reader never meets an entry half evicted.
    """

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError("a cache holds at least one entry")
        self.capacity = capacity
        self._entries: OrderedDict[Hashable, ItemContent] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def get_many(self, keys) -> dict[Hashable, ItemContent]:
        """The cached entries of ``keys`` (those not cached are left out)."""
        found = {}
        with self._lock:
            for key in keys:
                content = self._entries.get(key)
                if content is not None:
                    self._entries.move_to_end(key)
                    found[key] = content
        return found

    def put_many(self, entries: dict[Hashable, ItemContent]) -> None:
        with self._lock:
            for key, content in entries.items():
                self._entries[key] = content
                self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


CONTENTS = ContentCache(20_000)


def contents_by_version(session: Session, version_ids) -> dict[int, ItemContent]:
    """The decrypted content of each version id (those that exist)."""
    database = session.get_bind().url.render_as_string(hide_password=True)
    wanted = set(version_ids)
    found = {key[1]: content for key, content in CONTENTS.get_many((database, v) for v in wanted).items()}
    missing = wanted - found.keys()
    if missing:
        rows = session.execute(select(ItemVersion.id, ItemVersion.content).where(ItemVersion.id.in_(sorted(missing))))
        fresh = {version_id: unpack(stored) for version_id, stored in rows}
        CONTENTS.put_many({(database, version_id): content for version_id, content in fresh.items()})
        found.update(fresh)
    return found


def counts_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(select(Item.status, func.count(Item.id)).group_by(Item.status))
    counts = dict.fromkeys(ITEM_STATUSES, 0)
    counts.update({status: count for status, count in rows})
    return counts
