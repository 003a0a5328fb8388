"""Score results."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from itembank.content import SealedInteger
from persistence import Base, UTCDateTime, utcnow


class ScoringRuleVersion(Base):
    """A scoring rule as it stood (see scoring.rules); never changed once stored."""

    __tablename__ = "scoring_rule_versions"
    __table_args__ = (UniqueConstraint("program_code", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    program_code: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    definition: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ScoreResult(Base):
    """A sitting's scale scores, with what they were computed from.

    ``field_scores``, ``thetas`` and ``standard_errors`` are keyed by field code
    (and ``"total"`` for the thetas), since fields are program configuration.
    """

    __tablename__ = "score_results"

    id: Mapped[int] = mapped_column(primary_key=True)
    sitting_id: Mapped[int] = mapped_column(ForeignKey("sittings.id"), unique=True)
    program_code: Mapped[str] = mapped_column(String(32))
    rule_version_id: Mapped[int] = mapped_column(ForeignKey("scoring_rule_versions.id"))
    method: Mapped[str] = mapped_column(String(16))
    total_score: Mapped[int] = mapped_column(Integer)
    field_scores: Mapped[dict] = mapped_column(JSON)
    thetas: Mapped[dict] = mapped_column(JSON)
    standard_errors: Mapped[dict] = mapped_column(JSON)
    passed: Mapped[bool] = mapped_column(Boolean)
    scored_items: Mapped[int] = mapped_column(Integer)
    # The scoring amendments (key corrections, withdrawals) the result was computed with.
    amendment_ids: Mapped[list] = mapped_column(JSON, default=list)
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    rule_version: Mapped[ScoringRuleVersion] = relationship()


class CertificateKey(Base):
    """A certificate signing key's public half; the private half lives outside the database.

    Retired keys stay here, so every certificate ever issued stays verifiable.
    """

    __tablename__ = "certificate_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_key: Mapped[str] = mapped_column(String(200))  # PEM
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    retired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Certificate(Base):
    """The signed statement of one result, as issued to the candidate."""

    __tablename__ = "certificates"

    id: Mapped[int] = mapped_column(primary_key=True)
    score_result_id: Mapped[int] = mapped_column(ForeignKey("score_results.id"), index=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("certificate_keys.id"))
    code: Mapped[str] = mapped_column(String(400))
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when a rescoring changed the result: the online check then says so.
    superseded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


AMENDMENT_KINDS = ("key", "withdrawn")


class RescoringCampaign(Base):
    """A correction to scoring (a key fixed, an item withdrawn) and its effect on every result.

    Proposed with the before/after table; applied by a second psychometrician, or discarded.
    """

    __tablename__ = "rescoring_campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    reason: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), default="proposed")  # proposed -> applied | discarded
    proposed_by: Mapped[str] = mapped_column(String(64))
    proposed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    amendments: Mapped[list[ScoringAmendment]] = relationship(back_populates="campaign", order_by="ScoringAmendment.id")
    changes: Mapped[list[CampaignChange]] = relationship(back_populates="campaign", order_by="CampaignChange.id",
                                                         cascade="all, delete-orphan")


class ScoringAmendment(Base):
    """How one item version is scored from now on: a corrected key, or withdrawn (not scored).

    In effect once its campaign is applied; every result records the amendments it used.
    """

    __tablename__ = "scoring_amendments"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("rescoring_campaigns.id"), index=True)
    item_version_id: Mapped[int] = mapped_column(ForeignKey("item_versions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    # The corrected key, encrypted under the content keys like the item's own key.
    key: Mapped[int | None] = mapped_column(SealedInteger())

    campaign: Mapped[RescoringCampaign] = relationship(back_populates="amendments")


class CampaignChange(Base):
    """One result before and after a campaign: {"total", "fields", "passed"} each."""

    __tablename__ = "campaign_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("rescoring_campaigns.id"), index=True)
    score_result_id: Mapped[int] = mapped_column(ForeignKey("score_results.id"), index=True)
    before: Mapped[dict] = mapped_column(JSON)
    after: Mapped[dict] = mapped_column(JSON)

    campaign: Mapped[RescoringCampaign] = relationship(back_populates="changes")
