"""Score results."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from persistence import Base, UTCDateTime, utcnow


class ScoreResult(Base):
    """A sitting's scale scores, with what they were computed from.

    ``field_scores``, ``thetas`` and ``standard_errors`` are keyed by field code
    (and ``"total"`` for the thetas), since fields are program configuration.
    """

    __tablename__ = "score_results"

    id: Mapped[int] = mapped_column(primary_key=True)
    sitting_id: Mapped[int] = mapped_column(ForeignKey("sittings.id"), unique=True)
    program_code: Mapped[str] = mapped_column(String(32))
    method: Mapped[str] = mapped_column(String(16))
    total_score: Mapped[int] = mapped_column(Integer)
    field_scores: Mapped[dict] = mapped_column(JSON)
    thetas: Mapped[dict] = mapped_column(JSON)
    standard_errors: Mapped[dict] = mapped_column(JSON)
    passed: Mapped[bool] = mapped_column(Boolean)
    scored_items: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
