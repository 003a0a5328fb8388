"""Rescoring finished sittings in batch: reproducibility checks and rescoring campaigns.

This layer reads the sittings' stored answers into one long :class:`AnswerSheet`
per (rule version, amendments) group and lets scoring score each group in one
vectorised pass; it never scores sitting by sitting.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from delivery.models import SittingItem
from itembank import lifecycle
from itembank.models import ItemVersion
from itembank.program import ExamProgram
from persistence.unit_of_work import unit_of_work
from scoring import campaigns
from scoring.batch import UNANSWERED, AnswerSheet, score_sheet, version_table
from scoring.models import RescoringCampaign, ScoreResult, ScoringRuleVersion
from scoring.results import result_of
from scoring.rules import rule_of_version


def answer_sheet(session: Session, sitting_ids: list[int]) -> AnswerSheet:
    """The scored answers (pretest items excluded) of these sittings, in the order given."""
    order = {sid: i for i, sid in enumerate(sitting_ids)}
    rows = session.execute(
        select(SittingItem.sitting_id, SittingItem.item_version_id, SittingItem.field, SittingItem.chosen_option)
        .where(SittingItem.sitting_id.in_(sitting_ids), SittingItem.is_pretest.is_(False))
        .order_by(SittingItem.sitting_id, SittingItem.position)
    ).all()
    index = np.array([order[r[0]] for r in rows], dtype=np.int64)
    by_sitting = np.argsort(index, kind="stable")
    return AnswerSheet(
        n_sittings=len(sitting_ids),
        sitting=index[by_sitting],
        version_id=np.array([r[1] for r in rows], dtype=np.int64)[by_sitting],
        field=np.array([r[2] for r in rows], dtype=str)[by_sitting],
        chosen=np.array([UNANSWERED if r[3] is None else r[3] for r in rows], dtype=np.int64)[by_sitting],
    )


def rescore_results(session: Session, results: list[ScoreResult], extra_amendments: list[int] = (),
                    chunk: int = 10_000) -> dict[int, ScoreResult]:
    """Each result rescored (unsaved) under its own rule version and amendments, plus ``extra_amendments``.

    Results that share a rule version and amendments are scored together, in chunks.
    """
    groups: dict[tuple[int, tuple[int, ...]], list[ScoreResult]] = defaultdict(list)
    for result in results:
        amendments = tuple(sorted(set(result.amendment_ids or []) | set(extra_amendments)))
        groups[(result.rule_version_id, amendments)].append(result)
    rescored: dict[int, ScoreResult] = {}
    for (rule_version_id, amendments), members in groups.items():
        rule_version = session.get(ScoringRuleVersion, rule_version_id)
        rule = rule_of_version(rule_version)
        for start in range(0, len(members), chunk):
            part = members[start : start + chunk]
            sheet = answer_sheet(session, [r.sitting_id for r in part])
            table = version_table(session, sheet.version_id, list(amendments))
            scores = score_sheet(rule, table, sheet)
            for row, result in enumerate(part):
                fresh = result_of(rule_version, scores, row, list(amendments))
                fresh.sitting_id = result.sitting_id
                rescored[result.id] = fresh
    return rescored


@dataclass(frozen=True)
class ReproductionReport:
    results: int
    identical_scores: int
    largest_theta_difference: float
    mismatched_result_ids: tuple[int, ...]

    @property
    def all_identical(self) -> bool:
        return self.identical_scores == self.results


def check_reproduction(session: Session, results: list[ScoreResult] | None = None) -> ReproductionReport:
    """Rescore results in batch and compare: scale scores and decisions must be identical."""
    if results is None:
        results = list(session.scalars(select(ScoreResult).order_by(ScoreResult.id)))
    rescored = rescore_results(session, results)
    mismatched, largest = [], 0.0
    for result in results:
        fresh = rescored[result.id]
        largest = max(largest, max(abs(fresh.thetas[k] - result.thetas[k]) for k in result.thetas))
        if campaigns.summary_of(fresh) != campaigns.summary_of(result):
            mismatched.append(result.id)
    return ReproductionReport(len(results), len(results) - len(mismatched), largest, tuple(mismatched))


def affected_results(session: Session, version_ids: list[int]) -> list[ScoreResult]:
    """Results of finished sittings that scored any of these item versions."""
    sitting_ids = select(SittingItem.sitting_id).where(SittingItem.item_version_id.in_(version_ids),
                                                       SittingItem.is_pretest.is_(False))
    return list(session.scalars(select(ScoreResult).where(ScoreResult.sitting_id.in_(sitting_ids))
                                .order_by(ScoreResult.id)))


def propose_campaign(session: Session, amendments: list[campaigns.Amendment], *, reason: str, actor: str,
                     now: dt.datetime, actor_role: str = "psychometrician") -> RescoringCampaign:
    """Record the campaign and its before/after table over every affected result. Commits (audited)."""
    with unit_of_work(session):
        campaign = campaigns.propose(session, amendments, reason=reason, actor=actor, actor_role=actor_role, now=now)
        affected = affected_results(session, [a.item_version_id for a in campaign.amendments])
        rescored = rescore_results(session, affected, [a.id for a in campaign.amendments])
        campaigns.record_changes(session, campaign, [(r, rescored[r.id]) for r in affected])
    return campaign


def apply_campaign(session: Session, program: ExamProgram, campaign_id: int, *, actor: str,
                   now: dt.datetime, actor_role: str = "psychometrician") -> int:
    """Rescore the affected results afresh and write them (see scoring.campaigns.apply). Commits (audited).

    An operational item whose current version is withdrawn from scoring is retired too,
    so that no later sitting draws it.
    """
    with unit_of_work(session):
        campaign = campaigns.campaign_by_id(session, campaign_id, lock=True)
        campaigns.check_decidable(campaign, actor)
        affected = affected_results(session, [a.item_version_id for a in campaign.amendments])
        rescored = rescore_results(session, affected, [a.id for a in campaign.amendments])
        changed = campaigns.apply(session, campaign, rescored, actor=actor, actor_role=actor_role, now=now)
        for amendment in campaign.amendments:
            version = session.get(ItemVersion, amendment.item_version_id)
            item = version.item
            if (amendment.kind == "withdrawn" and item.status == "operational"
                    and item.current_version.id == version.id):
                lifecycle.move(session, program, item.code, "retired", actor=actor, actor_role=actor_role,
                               now=now, reason=f"withdrawn from scoring by rescoring campaign {campaign.id}")
    return changed


def discard_campaign(session: Session, campaign_id: int, *, actor: str, now: dt.datetime, reason: str,
                     actor_role: str = "psychometrician") -> RescoringCampaign:
    """Set a proposed campaign aside without changing any result. Commits (audited)."""
    with unit_of_work(session):
        campaign = campaigns.campaign_by_id(session, campaign_id, lock=True)
        campaigns.discard(session, campaign, actor=actor, actor_role=actor_role, now=now, reason=reason)
    return campaign
