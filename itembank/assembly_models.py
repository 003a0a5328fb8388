"""Stored assembly: pre-assembled forms and their review, exposure counts, design studies."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from persistence import Base, UTCDateTime, utcnow

# draft: assembled, awaiting review; published: drawn by sittings; retired: no longer drawn
# (a draft that is not published is retired too, with the reason).
FORM_STATUSES = ("draft", "published", "retired")


class Form(Base):
    """A pre-assembled form: the scored items of every sitting that draws it.

    The pretest slots are not part of the form: each sitting fills them from the
    pretest pool of the day. ``targets`` and ``information`` record what the form was
    assembled toward and what it has (at the cut points), for the review screen and
    for later appeals; ``settings`` the constraints it was assembled under.
    """

    __tablename__ = "forms"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    program_code: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), index=True, default="draft")
    batch: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    published_by: Mapped[str | None] = mapped_column(String(64))
    retired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    retired_by: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(String(500), default="")
    targets: Mapped[list] = mapped_column(JSON, default=list)  # [{name, scope, theta, information}]
    information: Mapped[list] = mapped_column(JSON, default=list)  # the form's information at each target
    settings: Mapped[dict] = mapped_column(JSON, default=dict)

    items: Mapped[list[FormItem]] = relationship(
        back_populates="form", order_by="FormItem.position", cascade="all, delete-orphan"
    )


class FormItem(Base):
    """One scored item of a form, in field order; the version is the one assembled and reviewed."""

    __tablename__ = "form_items"

    form_id: Mapped[int] = mapped_column(ForeignKey("forms.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    item_version_id: Mapped[int] = mapped_column(ForeignKey("item_versions.id"))
    field: Mapped[str] = mapped_column(String(32))
    category: Mapped[int] = mapped_column(Integer)

    form: Mapped[Form] = relationship(back_populates="items")


class ItemExposure(Base):
    """How many sittings have shown an item, kept current at every login for exposure control.

    One row per item, updated with ``scored = scored + 1`` in the login's own
    transaction, so every process sees every other's sittings. The number of sittings
    assembled so far is the sum of ``scored`` over the bank divided by the scored items
    per sitting (no single counter row for every login to queue on); an item's exposure
    rate is ``scored / (sittings - sittings_before)``, counting only the sittings since
    it entered exposure control.
    """

    __tablename__ = "item_exposure"

    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), primary_key=True)
    scored: Mapped[int] = mapped_column(Integer, default=0)
    pretest: Mapped[int] = mapped_column(Integer, default=0)
    sittings_before: Mapped[int] = mapped_column(Integer, default=0)


class DesignStudy(Base):
    """A simulation of many candidates through assembly and scoring, kept with its figures."""

    __tablename__ = "design_studies"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    pool: Mapped[str] = mapped_column(String(200))  # e.g. "operational bank (306 items)", "synthetic 5000 (seed 1)"
    n_candidates: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer)
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    results: Mapped[dict] = mapped_column(JSON, default=dict)  # per design: the report of engine.design
