"""Enemy sets: items that must never appear together in one sitting.

Assembly (:mod:`itembank.assembly`) reads them; psychometricians keep them.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from itembank.models import EnemySet, EnemySetMember, Item
from persistence import audit
from persistence.errors import InvalidInput, NotFound
from persistence.unit_of_work import unit_of_work


def enemy_sets(session: Session) -> list[EnemySet]:
    return list(session.scalars(select(EnemySet).options(selectinload(EnemySet.members).selectinload(
        EnemySetMember.item)).order_by(EnemySet.name)))


def _items(session: Session, codes: list[str]) -> list[Item]:
    codes = sorted({c.strip() for c in codes if c.strip()})
    found = {i.code: i for i in session.scalars(select(Item).where(Item.code.in_(codes)))}
    unknown = [c for c in codes if c not in found]
    if unknown:
        raise NotFound("no such item(s): {codes}", field="items", codes=", ".join(unknown))
    return [found[c] for c in codes]


def save_enemy_set(session: Session, name: str, codes: list[str], *, actor: str, actor_role: str,
                   now: dt.datetime, note: str = "") -> EnemySet:
    """Create the set ``name`` or replace its members; a set needs at least two items. Commits (audited)."""
    name = name.strip()
    if not name or len(name) > 64:
        raise InvalidInput("an enemy set needs a name of 1 to 64 characters", field="name")
    with unit_of_work(session):
        items = _items(session, codes)
        if len(items) < 2:
            raise InvalidInput("an enemy set needs at least two items", field="items")
        enemy_set = session.scalar(select(EnemySet).where(EnemySet.name == name))
        if enemy_set is None:
            enemy_set = EnemySet(name=name, created_by=actor, created_at=now)
            session.add(enemy_set)
        enemy_set.note = note[:500]
        enemy_set.members = [EnemySetMember(item_id=item.id) for item in items]
        session.flush()
        audit.record(session, actor=actor, actor_role=actor_role, action="enemies.save", subject=f"enemies:{name}",
                     reason=note, details={"items": [i.code for i in items]}, at=now)
    return enemy_set


def delete_enemy_set(session: Session, name: str, *, actor: str, actor_role: str, now: dt.datetime,
                     reason: str = "") -> None:
    """Delete the set ``name``. Commits (audited)."""
    with unit_of_work(session):
        enemy_set = session.scalar(select(EnemySet).where(EnemySet.name == name))
        if enemy_set is None:
            raise NotFound("no enemy set {name}", name=name)
        session.delete(enemy_set)
        audit.record(session, actor=actor, actor_role=actor_role, action="enemies.delete",
                     subject=f"enemies:{name}", reason=reason, at=now)


def enemies_by_item(session: Session) -> dict[int, set[int]]:
    """item id -> the ids of every item that shares an enemy set with it."""
    members = defaultdict(set)
    for set_id, item_id in session.execute(select(EnemySetMember.enemy_set_id, EnemySetMember.item_id)):
        members[set_id].add(item_id)
    enemies: dict[int, set[int]] = defaultdict(set)
    for items in members.values():
        for item_id in items:
            enemies[item_id] |= items - {item_id}
    return dict(enemies)
