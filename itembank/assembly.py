"""Building a sitting's form from the bank (for now: a random draw per field).

Enemy sets are respected: once an item is drawn, no item sharing an enemy set
with it can be drawn into the same form.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from itembank.bank import PoolItem, pool
from itembank.enemies import enemies_by_item
from itembank.program import ExamProgram


class AssemblyError(RuntimeError):
    """The bank cannot supply a form that meets the blueprint."""


@dataclass(frozen=True)
class FormPosition:
    position: int
    version_id: int
    field: str
    is_pretest: bool


def draw_form(session: Session, program: ExamProgram, rng: np.random.Generator) -> list[FormPosition]:
    """A form to the program's blueprint: fields in program order, each with its
    scored operational items and its pretest items shuffled together."""
    operational = pool(session, "operational")
    pretest = pool(session, "pretest")
    enemies = enemies_by_item(session)
    excluded: set[int] = set()
    form: list[FormPosition] = []
    for field in program.fields:
        scored = _draw(operational, field.code, field.scored, "operational", rng, enemies, excluded)
        trial = _draw(pretest, field.code, field.pretest, "pretest", rng, enemies, excluded)
        chosen = [(item, False) for item in scored] + [(item, True) for item in trial]
        for index in rng.permutation(len(chosen)):
            item, is_pretest = chosen[index]
            form.append(FormPosition(len(form) + 1, item.version_id, field.code, is_pretest))
    return form


def _draw(items: list[PoolItem], field: str, count: int, status: str, rng: np.random.Generator,
          enemies: dict[int, set[int]], excluded: set[int]) -> list[PoolItem]:
    candidates = [item for item in items if item.field == field]
    if len(candidates) < count:
        raise AssemblyError(
            f"the {field} field needs {count} {status} items per sitting but the bank has {len(candidates)}"
        )
    if not enemies:
        return [candidates[i] for i in rng.choice(len(candidates), size=count, replace=False)]
    chosen = []
    for index in rng.permutation(len(candidates)):
        item = candidates[index]
        if item.item_id in excluded:
            continue
        chosen.append(item)
        excluded.add(item.item_id)
        excluded.update(enemies.get(item.item_id, ()))
        if len(chosen) == count:
            return chosen
    raise AssemblyError(f"the {field} field needs {count} {status} items per sitting but its enemy sets "
                        f"leave only {len(chosen)} that can sit together")
