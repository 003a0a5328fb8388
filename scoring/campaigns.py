"""Rescoring campaigns: correct a key or withdraw an item, see every result it moves, then apply.

A campaign is proposed with its amendments and the before/after table of every
result it changes; a second psychometrician applies it (or it is discarded).
Applying updates the results, records the amendments on them (so rescoring
reproduces the new figures), supersedes their certificates, and writes the audit
trail. The results themselves are gathered and rescored by the delivery layer,
which sees the sittings; this module keeps the campaign's records.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from itembank.bank import item_by_code
from itembank.content import unpack
from itembank.models import ItemVersion
from persistence import audit
from persistence.errors import Conflict, InvalidInput, NotFound, Refused
from scoring.models import (
    AMENDMENT_KINDS,
    CampaignChange,
    Certificate,
    RescoringCampaign,
    ScoreResult,
    ScoringAmendment,
)


@dataclass(frozen=True)
class Amendment:
    """What a psychometrician asks for: item ``code`` version ``version`` gets ``key``, or is withdrawn."""

    code: str
    version: int
    kind: str
    key: int | None = None


def summary_of(result: ScoreResult) -> dict:
    return {"total": result.total_score, "fields": dict(result.field_scores), "passed": result.passed}


def propose(session: Session, amendments: list[Amendment], *, reason: str, actor: str, actor_role: str,
            now: dt.datetime) -> RescoringCampaign:
    """A new campaign (status proposed) with its amendments checked against the bank (in the caller's
    transaction: :func:`delivery.rescoring.propose_campaign` is the use case)."""
    if not reason.strip():
        raise InvalidInput("say why the scoring changes", field="reason")
    if not amendments:
        raise InvalidInput("a campaign needs at least one amendment")
    campaign = RescoringCampaign(reason=reason.strip()[:500], status="proposed", proposed_by=actor, proposed_at=now)
    for amendment in amendments:
        if amendment.kind not in AMENDMENT_KINDS:
            raise InvalidInput("unknown amendment '{kind}'; one of {kinds}", field="kind", kind=amendment.kind,
                               kinds=", ".join(AMENDMENT_KINDS))
        item = item_by_code(session, amendment.code)
        version = session.scalar(select(ItemVersion).where(ItemVersion.item_id == item.id,
                                                           ItemVersion.version == amendment.version))
        if version is None:
            raise NotFound("item {code} has no version {version}", field="version", code=amendment.code,
                           version=amendment.version)
        if amendment.kind == "key":
            options = len(unpack(version.content).options)
            if amendment.key is None or not 0 <= amendment.key < options:
                raise InvalidInput("the corrected key must be one of the {options} options", field="key", options=options)
            if amendment.key == unpack(version.content).key:
                raise InvalidInput("{code} v{version} already has that key", field="key", code=amendment.code,
                                   version=amendment.version)
        campaign.amendments.append(ScoringAmendment(item_version_id=version.id, kind=amendment.kind,
                                                    key=amendment.key if amendment.kind == "key" else None))
    session.add(campaign)
    session.flush()
    # The trail is kept in clear for good: it names what changes, never the corrected key itself
    # (the amendment row holds it, for the psychometricians' campaign page and for scoring).
    audit.record(session, actor=actor, actor_role=actor_role, action="rescoring.propose",
                 subject=f"campaign:{campaign.id}", reason=campaign.reason, at=now,
                 details={"amendments": [{"code": a.code, "version": a.version, "kind": a.kind,
                                          "amendment": row.id} for a, row in zip(amendments, campaign.amendments)]})
    return campaign


def record_changes(session: Session, campaign: RescoringCampaign,
                   changes: list[tuple[ScoreResult, ScoreResult]]) -> None:
    """Keep the before/after table: (stored result, rescored result) for each result that moves."""
    campaign.changes.clear()
    for before, after in changes:
        if summary_of(before) != summary_of(after) or before.scored_items != after.scored_items:
            campaign.changes.append(CampaignChange(score_result_id=before.id, before=summary_of(before),
                                                   after=summary_of(after)))
    session.flush()


def campaign_by_id(session: Session, campaign_id: int, *, lock: bool = False) -> RescoringCampaign:
    query = select(RescoringCampaign).where(RescoringCampaign.id == campaign_id)
    campaign = session.scalar(query.with_for_update() if lock else query)
    if campaign is None:
        raise NotFound("no rescoring campaign {campaign}", campaign=campaign_id)
    return campaign


def check_decidable(campaign: RescoringCampaign, actor: str) -> None:
    if campaign.status != "proposed":
        raise Conflict("campaign {campaign} is already {status}", campaign=campaign.id, status=campaign.status)
    if campaign.proposed_by == actor:
        raise Refused("a campaign is applied by another psychometrician than the one who proposed it")


def apply(session: Session, campaign: RescoringCampaign, rescored: dict[int, ScoreResult], *, actor: str,
          actor_role: str, now: dt.datetime) -> int:
    """Write ``rescored`` (result id -> freshly rescored result, every affected one) into the results.

    The fresh figures must match the proposal's table: if anything moved since
    (another campaign, say), the campaign is refused and must be proposed again.
    Returns the number of results changed.
    """
    check_decidable(campaign, actor)
    proposed = {change.score_result_id: change.after for change in campaign.changes}
    results = {r.id: r for r in session.scalars(select(ScoreResult).where(ScoreResult.id.in_(list(rescored))))}
    moved = {rid for rid, fresh in rescored.items() if summary_of(fresh) != summary_of(results[rid])
             or fresh.scored_items != results[rid].scored_items}
    stale = (moved != set(proposed)) or any(summary_of(rescored[rid]) != proposed[rid] for rid in moved)
    if stale:
        raise Conflict("the results have changed since this campaign was proposed; propose it again")
    amendment_ids = [a.id for a in campaign.amendments]
    for rid, fresh in rescored.items():
        result = results[rid]
        result.total_score = fresh.total_score
        result.field_scores = fresh.field_scores
        result.thetas = fresh.thetas
        result.standard_errors = fresh.standard_errors
        result.passed = fresh.passed
        result.scored_items = fresh.scored_items
        result.amendment_ids = sorted(set(result.amendment_ids or []) | set(amendment_ids))
        result.computed_at = now
        if rid in moved:
            for certificate in session.scalars(select(Certificate).where(Certificate.score_result_id == rid,
                                                                         Certificate.superseded_at.is_(None))):
                certificate.superseded_at = now
    campaign.status, campaign.decided_by, campaign.decided_at = "applied", actor, now
    audit.record(session, actor=actor, actor_role=actor_role, action="rescoring.apply",
                 subject=f"campaign:{campaign.id}", reason=campaign.reason, at=now,
                 details={"results_rescored": len(rescored), "results_changed": len(moved),
                          "decisions_changed": sum(1 for c in campaign.changes
                                                   if c.before["passed"] != c.after["passed"])})
    return len(moved)


def discard(session: Session, campaign: RescoringCampaign, *, actor: str, actor_role: str, now: dt.datetime,
            reason: str) -> None:
    if campaign.status != "proposed":
        raise Conflict("campaign {campaign} is already {status}", campaign=campaign.id, status=campaign.status)
    campaign.status, campaign.decided_by, campaign.decided_at = "discarded", actor, now
    audit.record(session, actor=actor, actor_role=actor_role, action="rescoring.discard",
                 subject=f"campaign:{campaign.id}", reason=reason[:500], at=now)


def campaigns(session: Session) -> list[RescoringCampaign]:
    return list(session.scalars(select(RescoringCampaign).order_by(RescoringCampaign.id.desc())))
