"""The item bank: adding items, browsing them, and what scoring and assembly read."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from itembank.content import ItemContent, pack, unpack
from itembank.models import ITEM_STATUSES, Item, ItemVersion
from itembank.program import ExamProgram


class BankError(ValueError):
    """A request the bank cannot carry out as given."""


@dataclass(frozen=True)
class ItemParametersRow:
    version_id: int
    a: float
    b: float
    c: float


def add_item(
    session: Session,
    program: ExamProgram,
    *,
    code: str,
    category: int,
    status: str,
    content: ItemContent,
    parameters: tuple[float, float, float] | None = None,
    parameter_source: str = "none",
    author: str = "system",
) -> Item:
    """Add an item with its first version. The field follows from the category."""
    if status not in ITEM_STATUSES:
        raise BankError(f"unknown status {status!r}; one of {', '.join(ITEM_STATUSES)}")
    try:
        field = program.field_of_category(category)
    except KeyError:
        raise BankError(f"item {code}: category {category} is not in the syllabus") from None
    if status in ("pretest", "operational") and len(content.options) != len(program.option_labels):
        raise BankError(f"item {code}: the program needs {len(program.option_labels)} options")
    a, b, c = parameters if parameters is not None else (None, None, None)
    item = Item(code=code, field=field, category=category, status=status)
    item.versions.append(
        ItemVersion(
            version=1, content=pack(content), a=a, b=b, c=c,
            parameter_source=parameter_source, created_by=author,
        )
    )
    session.add(item)
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
) -> list[BankEntry]:
    """Items with their newest version, filtered, in code order."""
    query = _with_latest_version().order_by(Item.code)
    if field:
        query = query.where(Item.field == field)
    if category:
        query = query.where(Item.category == category)
    if status:
        query = query.where(Item.status == status)
    entries = [BankEntry(item, version, unpack(version.content)) for item, version in session.execute(query)]
    if text:
        needle = text.casefold()
        entries = [
            e for e in entries
            if needle in e.item.code.casefold()
            or needle in e.content.stem.casefold()
            or any(needle in o.casefold() for o in e.content.options)
        ]
    return entries


def entry(session: Session, code: str) -> BankEntry | None:
    """One item with its newest version, by code."""
    row = session.execute(_with_latest_version().where(Item.code == code)).first()
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
