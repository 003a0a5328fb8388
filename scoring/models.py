"""Score results."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

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
    score_result_id: Mapped[int] = mapped_column(ForeignKey("score_results.id"), unique=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("certificate_keys.id"))
    code: Mapped[str] = mapped_column(String(400))
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
