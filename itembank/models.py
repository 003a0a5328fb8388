"""Items and their immutable versions."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from persistence import Base, UTCDateTime, utcnow

ITEM_STATUSES = ("draft", "reviewed", "pretest", "operational", "retired")


class Item(Base):
    """One item of the bank: its place in the syllabus and where it is in its lifecycle."""

    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    field: Mapped[str] = mapped_column(String(32), index=True)
    category: Mapped[int] = mapped_column(Integer, index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    versions: Mapped[list[ItemVersion]] = relationship(
        back_populates="item", order_by="ItemVersion.version", cascade="all, delete-orphan"
    )

    @property
    def current_version(self) -> ItemVersion:
        return self.versions[-1]


class ItemVersion(Base):
    """What a candidate sees and how it is scored, frozen once written.

    Every response points at the exact version shown, so a version is never
    changed: an edit of the content or new IRT parameters make a new version.
    ``content`` holds the stem, optional table, options, key and rationale as
    JSON; it is only read and written through :mod:`itembank.content`.
    """

    __tablename__ = "item_versions"
    __table_args__ = (UniqueConstraint("item_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    content: Mapped[str] = mapped_column(Text)
    a: Mapped[float | None] = mapped_column(Float)
    b: Mapped[float | None] = mapped_column(Float)
    c: Mapped[float | None] = mapped_column(Float)
    parameter_source: Mapped[str] = mapped_column(String(64), default="none")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64), default="system")

    item: Mapped[Item] = relationship(back_populates="versions")
