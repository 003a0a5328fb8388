"""Scoring a finished sitting's answers and keeping the result."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from itembank.program import ExamProgram
from scoring.batch import UNANSWERED, AnswerSheet, ScoringError, SheetScores, score_sheet, version_table
from scoring.models import RescoringCampaign, ScoreResult, ScoringAmendment, ScoringRuleVersion
from scoring.rules import rule_of_version


@dataclass(frozen=True)
class ScoredAnswer:
    """One scored item of a sitting: the version shown and the option chosen (None: unanswered)."""

    version_id: int
    field: str
    chosen_option: int | None


def effective_amendments(session: Session, version_ids) -> list[int]:
    """Ids of the amendments in force (their campaign applied) for these item versions."""
    return list(session.scalars(
        select(ScoringAmendment.id)
        .join(RescoringCampaign, RescoringCampaign.id == ScoringAmendment.campaign_id)
        .where(RescoringCampaign.status == "applied", ScoringAmendment.item_version_id.in_(list(version_ids)))
        .order_by(ScoringAmendment.id)
    ))


def answer_sheet(answers: Sequence[ScoredAnswer]) -> AnswerSheet:
    """The sheet of one sitting."""
    return AnswerSheet(
        n_sittings=1,
        sitting=np.zeros(len(answers), dtype=np.int64),
        version_id=[a.version_id for a in answers],
        field=[a.field for a in answers],
        chosen=[UNANSWERED if a.chosen_option is None else a.chosen_option for a in answers],
    )


def result_of(rule_version: ScoringRuleVersion, scores: SheetScores, row: int, amendment_ids: list[int]) -> ScoreResult:
    """Row ``row`` of a sheet's scores as an unsaved :class:`ScoreResult`."""
    return ScoreResult(
        program_code=rule_version.program_code,
        rule_version_id=rule_version.id,
        method=rule_version.definition["method"],
        total_score=int(scores.scale[row, 0]),
        field_scores={code: int(scores.scale[row, i]) for i, code in enumerate(scores.columns) if i > 0},
        thetas={column: float(scores.theta[row, i]) for i, column in enumerate(scores.columns)},
        standard_errors={column: float(scores.se[row, i]) for i, column in enumerate(scores.columns)},
        passed=bool(scores.passed[row]),
        scored_items=int(scores.scored_items[row]),
        amendment_ids=list(amendment_ids),
    )


def score_answers(session: Session, rule_version: ScoringRuleVersion, answers: Iterable[ScoredAnswer],
                  amendment_ids: list[int] | None = None) -> ScoreResult:
    """Score one sitting's scored items under ``rule_version``; an unanswered item counts as wrong.

    ``amendment_ids``: the scoring amendments to apply (default: those in force now).
    Returns an unsaved :class:`ScoreResult` (without ``sitting_id``). Given the same
    answers, rule version and amendments it gives the same result, to the last digit.
    """
    answers = list(answers)
    if not answers:
        raise ScoringError("a sitting with no scored items cannot be scored")
    version_ids = {a.version_id for a in answers}
    if amendment_ids is None:
        amendment_ids = effective_amendments(session, version_ids)
    table = version_table(session, version_ids, amendment_ids)
    scores = score_sheet(rule_of_version(rule_version), table, answer_sheet(answers))
    return result_of(rule_version, scores, 0, amendment_ids)


def rescore(session: Session, result: ScoreResult, answers: Iterable[ScoredAnswer]) -> ScoreResult:
    """The result ``answers`` give under the rule version and amendments ``result`` was computed with."""
    return score_answers(session, result.rule_version, answers, list(result.amendment_ids or []))


def same_scores(a: ScoreResult, b: ScoreResult) -> bool:
    """Identical to the last digit: scale scores, decision, thetas and standard errors."""
    return (
        a.total_score == b.total_score
        and a.field_scores == b.field_scores
        and a.passed == b.passed
        and a.thetas == b.thetas
        and a.standard_errors == b.standard_errors
        and a.rule_version_id == b.rule_version_id
        and list(a.amendment_ids or []) == list(b.amendment_ids or [])
    )


def result_for_sitting(session: Session, sitting_id: int) -> ScoreResult | None:
    return session.scalar(select(ScoreResult).where(ScoreResult.sitting_id == sitting_id))


@dataclass(frozen=True)
class ScoreLine:
    """One line of a score report: the total or a field, against its minimum."""

    code: str
    name: str
    score: int
    minimum: int

    @property
    def met(self) -> bool:
        return self.score >= self.minimum


def score_lines(program: ExamProgram, result: ScoreResult) -> list[ScoreLine]:
    """The total and each field against the minimums of the rule the result was scored with."""
    rule = rule_of_version(result.rule_version).pass_rule
    return [ScoreLine("total", "Total", result.total_score, rule.total_minimum)] + [
        ScoreLine(field.code, field.name, result.field_scores[field.code], rule.field_minimum)
        for field in program.fields
    ]
