"""Items, their immutable versions, their lifecycle, enemy sets and calibration runs."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from itembank.program import ITEM_STATUSES  # noqa: F401 (re-exported: the bank's statuses)
from persistence import Base, UTCDateTime, utcnow

# Where an item version's IRT parameters came from.
PARAMETER_SOURCES = ("none", "synthetic", "manual", "import", "calibration")


class Estimates:
    """An item's 3PL parameters (a, b, c) and their standard errors; None where not estimated."""

    a: Mapped[float | None] = mapped_column(Float)
    b: Mapped[float | None] = mapped_column(Float)
    c: Mapped[float | None] = mapped_column(Float)
    se_a: Mapped[float | None] = mapped_column(Float)
    se_b: Mapped[float | None] = mapped_column(Float)
    se_c: Mapped[float | None] = mapped_column(Float)


class Item(Base):
    """One item of the bank: its place in the syllabus and where it is in its lifecycle.

    The field and major category follow from the middle category (the program's
    syllabus); they are stored for filtering.
    """

    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    field: Mapped[str] = mapped_column(String(32), index=True)
    category: Mapped[int] = mapped_column(Integer, index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    author: Mapped[str] = mapped_column(String(64), default="system")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    versions: Mapped[list[ItemVersion]] = relationship(
        back_populates="item", order_by="ItemVersion.version", cascade="all, delete-orphan"
    )
    history: Mapped[list[ItemStatusChange]] = relationship(
        back_populates="item", order_by="ItemStatusChange.id", cascade="all, delete-orphan"
    )

    @property
    def current_version(self) -> ItemVersion:
        return self.versions[-1]


class ItemVersion(Estimates, Base):
    """What a candidate sees and how it is scored, frozen once written.

    Every response points at the exact version shown, so a version is never
    changed: an edit of the content or new IRT parameters make a new version.
    ``content`` holds the stem, optional table and figure, options, key and
    rationale, encrypted; it is only read and written through
    :mod:`itembank.content`. The parameters carry their provenance: the source,
    the calibration run, the number of responses and the standard errors.
    """

    __tablename__ = "item_versions"
    __table_args__ = (UniqueConstraint("item_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    content: Mapped[str] = mapped_column(Text)
    parameter_source: Mapped[str] = mapped_column(String(64), default="none")
    calibration_run_id: Mapped[int | None] = mapped_column(ForeignKey("calibration_runs.id"))
    n_responses: Mapped[int | None] = mapped_column(Integer)
    # Why this version exists: "created", "content edit", "calibration run 4", "import", ...
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64), default="system")

    item: Mapped[Item] = relationship(back_populates="versions")

    @property
    def has_parameters(self) -> bool:
        return self.a is not None and self.b is not None and self.c is not None


class ItemStatusChange(Base):
    """One step of an item's lifecycle: who moved it, when, from what to what, and why."""

    __tablename__ = "item_status_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))
    actor_role: Mapped[str] = mapped_column(String(32))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    reason: Mapped[str] = mapped_column(String(500), default="")
    calibration_run_id: Mapped[int | None] = mapped_column(ForeignKey("calibration_runs.id"))

    item: Mapped[Item] = relationship(back_populates="history")


class EnemySet(Base):
    """Items that must never appear together in one sitting (e.g. one gives another away)."""

    __tablename__ = "enemy_sets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    note: Mapped[str] = mapped_column(String(500), default="")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    members: Mapped[list[EnemySetMember]] = relationship(
        back_populates="enemy_set", cascade="all, delete-orphan", order_by="EnemySetMember.item_id"
    )


class EnemySetMember(Base):
    __tablename__ = "enemy_set_members"

    enemy_set_id: Mapped[int] = mapped_column(ForeignKey("enemy_sets.id"), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), primary_key=True, index=True)

    enemy_set: Mapped[EnemySet] = relationship(back_populates="members")
    item: Mapped[Item] = relationship()


class CalibrationRun(Base):
    """One calibration of responses gathered from finished sittings, kept for good.

    kind: "pretest" (pretest items estimated with the operational items fixed)
    or "drift" (operational items re-estimated from recent data and compared).
    """

    __tablename__ = "calibration_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    model: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    window_from: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    window_to: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    n_sittings: Mapped[int] = mapped_column(Integer)
    n_anchors: Mapped[int] = mapped_column(Integer)
    converged: Mapped[bool] = mapped_column(Boolean)
    iterations: Mapped[int] = mapped_column(Integer)
    log_likelihood: Mapped[float] = mapped_column(Float)
    latent_mean: Mapped[float] = mapped_column(Float)
    latent_sd: Mapped[float] = mapped_column(Float)
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    summary: Mapped[dict] = mapped_column(JSON, default=dict)

    items: Mapped[list[CalibrationItem]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="CalibrationItem.id"
    )


class CalibrationItem(Estimates, Base):
    """One item's estimates and statistics in a calibration run, and the decision on it.

    ``previous_*`` are the parameters the item had (drift runs compare against
    them); ``statistics`` holds the classical statistics, distractor analysis,
    item fit, DIF by group and the observed proportions for the ICC plot.
    """

    __tablename__ = "calibration_items"
    __table_args__ = (UniqueConstraint("run_id", "item_version_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("calibration_runs.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    item_version_id: Mapped[int] = mapped_column(ForeignKey("item_versions.id"))
    n_responses: Mapped[int] = mapped_column(Integer)
    previous_a: Mapped[float | None] = mapped_column(Float)
    previous_b: Mapped[float | None] = mapped_column(Float)
    previous_c: Mapped[float | None] = mapped_column(Float)
    converged: Mapped[bool] = mapped_column(Boolean)
    message: Mapped[str] = mapped_column(String(500), default="")
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    flags: Mapped[list] = mapped_column(JSON, default=list)
    statistics: Mapped[dict] = mapped_column(JSON, default=dict)
    # pending -> approved | rejected (pretest runs); drift runs: pending -> acknowledged
    decision: Mapped[str] = mapped_column(String(16), default="pending")
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str] = mapped_column(String(500), default="")
    new_version_id: Mapped[int | None] = mapped_column(ForeignKey("item_versions.id"))

    run: Mapped[CalibrationRun] = relationship(back_populates="items")
    item: Mapped[Item] = relationship()
