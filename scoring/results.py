"""Scoring a finished sitting's answers and keeping the result."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

import engine
from itembank.bank import versions_by_id
from itembank.content import unpack
from itembank.program import ExamProgram
from scoring.models import ScoreResult, ScoringRuleVersion
from scoring.rules import rule_of_version
from scoring.scale import score_responses


@dataclass(frozen=True)
class ScoredAnswer:
    """One scored item of a sitting: the version shown and the option chosen (None: unanswered)."""

    version_id: int
    field: str
    chosen_option: int | None


class ScoringError(RuntimeError):
    """An answer set that cannot be scored (e.g. an item without parameters)."""


def score_answers(session: Session, rule_version: ScoringRuleVersion, answers: Iterable[ScoredAnswer]) -> ScoreResult:
    """Score one sitting's scored items under ``rule_version``; an unanswered item counts as wrong.

    Returns an unsaved :class:`ScoreResult` (without ``sitting_id``). Given the same
    answers and rule version it gives the same result, to the last digit.
    """
    rule = rule_of_version(rule_version)
    answers = list(answers)
    if not answers:
        raise ScoringError("a sitting with no scored items cannot be scored")
    versions = versions_by_id(session, {a.version_id for a in answers})
    a, b, c, correct = [], [], [], []
    for answer in answers:
        version = versions[answer.version_id]
        if version.a is None or version.b is None or version.c is None:
            raise ScoringError(f"item version {version.id} has no IRT parameters")
        a.append(version.a)
        b.append(version.b)
        c.append(version.c)
        correct.append(int(answer.chosen_option is not None and answer.chosen_option == unpack(version.content).key))
    scores = score_responses(
        rule,
        engine.ItemParameters(a, b, c),
        np.array([answer.field for answer in answers]),
        np.array([correct], dtype=np.int8),
    )
    fields = scores.columns[1:]
    return ScoreResult(
        program_code=rule.program_code,
        rule_version_id=rule_version.id,
        method=rule.method,
        total_score=int(scores.scale[0, 0]),
        field_scores={code: int(scores.scale[0, i + 1]) for i, code in enumerate(fields)},
        thetas={column: float(scores.theta[0, i]) for i, column in enumerate(scores.columns)},
        standard_errors={column: float(scores.se[0, i]) for i, column in enumerate(scores.columns)},
        passed=bool(scores.passed[0]),
        scored_items=len(answers),
    )


def rescore(session: Session, result: ScoreResult, answers: Iterable[ScoredAnswer]) -> ScoreResult:
    """The result ``answers`` give under the rule version ``result`` was computed with (unsaved)."""
    return score_answers(session, result.rule_version, answers)


def same_scores(a: ScoreResult, b: ScoreResult) -> bool:
    """Identical to the last digit: scale scores, decision, thetas and standard errors."""
    return (
        a.total_score == b.total_score
        and a.field_scores == b.field_scores
        and a.passed == b.passed
        and a.thetas == b.thetas
        and a.standard_errors == b.standard_errors
        and a.rule_version_id == b.rule_version_id
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
