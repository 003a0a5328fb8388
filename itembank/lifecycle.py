"""The item lifecycle: draft -> reviewed -> pretest -> operational -> retired.

Which steps exist and which roles may take them is program configuration
(``[lifecycle]`` in the program file). Each step is recorded on the item
(:class:`~itembank.models.ItemStatusChange`: who, when, why) and in the audit trail.
"""
from __future__ import annotations

import datetime as dt

from itembank.bank import item_by_code
from itembank.models import Item, ItemStatusChange
from itembank.program import ExamProgram, LifecycleStep
from persistence import audit
from persistence.errors import Conflict, Refused
from persistence.unit_of_work import unit_of_work


def allowed_steps(program: ExamProgram, item: Item, actor: str, actor_role: str) -> list[tuple[LifecycleStep, str]]:
    """Every step from the item's status, with '' if this actor may take it now, else why not."""
    return [(step, refusal(step, item, actor, actor_role)) for step in program.next_statuses(item.status)]


def refusal(step: LifecycleStep, item: Item, actor: str, actor_role: str, *, by_calibration: bool = False) -> str:
    """Why ``actor`` may not take ``step`` on ``item`` ('' if they may)."""
    if actor_role not in step.roles:
        return f"only {' or '.join(step.roles)} may move an item from {step.from_status} to {step.to_status}"
    if step.calibration and not by_calibration:
        return (f"an item becomes {step.to_status} from {step.from_status} only by approval in a calibration run, "
                "which gives it its estimated parameters")
    if step.four_eyes and item.current_version.created_by == actor:
        return f"you wrote the current version of {item.code}; another person must review it"
    if step.parameters and not item.current_version.has_parameters:
        return f"{item.code} has no IRT parameters; it must be calibrated first"
    return ""


def move(session, program: ExamProgram, code: str, to_status: str, *, actor: str, actor_role: str,
         now: dt.datetime, reason: str = "", calibration_run_id: int | None = None) -> Item:
    """Take one lifecycle step, or raise DomainError saying why it is not allowed. Commits (audited)."""
    with unit_of_work(session):
        item = item_by_code(session, code, lock=True)
        step = program.lifecycle_step(item.status, to_status)
        if step is None:
            options = ", ".join(s.to_status for s in program.next_statuses(item.status)) or "none"
            raise Conflict("{code} is {status}; it cannot move to {to_status} (possible: {options})", code=code,
                           status=item.status, to_status=to_status, options=options)
        why_not = refusal(step, item, actor, actor_role, by_calibration=calibration_run_id is not None)
        if why_not:
            raise (Refused if actor_role not in step.roles else Conflict)(why_not)
        item.history.append(ItemStatusChange(from_status=item.status, to_status=to_status, actor=actor,
                                             actor_role=actor_role, at=now, reason=reason[:500],
                                             calibration_run_id=calibration_run_id))
        audit.record(session, actor=actor, actor_role=actor_role, action="item.status", subject=f"item:{code}",
                     reason=reason, details={"from": item.status, "to": to_status,
                                             **({"calibration_run": calibration_run_id} if calibration_run_id
                                                else {})},
                     at=now)
        item.status = to_status
        session.flush()
    return item
