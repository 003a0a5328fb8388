"""Building a sitting's form from the bank (for now: a random draw per field)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from itembank.bank import PoolItem, pool
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
    form: list[FormPosition] = []
    for field in program.fields:
        scored = _draw(operational, field.code, field.scored, "operational", rng)
        trial = _draw(pretest, field.code, field.pretest, "pretest", rng)
        chosen = [(item, False) for item in scored] + [(item, True) for item in trial]
        for index in rng.permutation(len(chosen)):
            item, is_pretest = chosen[index]
            form.append(FormPosition(len(form) + 1, item.version_id, field.code, is_pretest))
    return form


def _draw(items: list[PoolItem], field: str, count: int, status: str, rng: np.random.Generator) -> list[PoolItem]:
    candidates = [item for item in items if item.field == field]
    if len(candidates) < count:
        raise AssemblyError(
            f"the {field} field needs {count} {status} items per sitting but the bank has {len(candidates)}"
        )
    return [candidates[i] for i in rng.choice(len(candidates), size=count, replace=False)]
