"""The sitting: one candidate's exam, its items, answers and clock."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Float, ForeignKey, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from persistence import Base, UTCDateTime, utcnow

# waiting: logged in at the seat, not started; in_progress: the clock runs;
# paused: the clock is stopped by a proctor; finished: submitted or time up;
# ended: stopped by a proctor (e.g. misconduct).
SITTING_STATUSES = ("waiting", "in_progress", "paused", "finished", "ended")


class Sitting(Base):
    """The state of one candidate's exam.

    The clock lives here, on the server: while in progress ``deadline_at`` is the
    moment time runs out; while waiting or paused ``remaining_seconds`` holds the
    time left and ``deadline_at`` is empty.
    """

    __tablename__ = "sittings"

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id"), unique=True)
    seat_id: Mapped[int | None] = mapped_column(ForeignKey("seats.id"))
    program_code: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="waiting")
    # A new login replaces the token, so a seat that was left is locked out.
    login_token_hash: Mapped[str] = mapped_column(String(64))
    remaining_seconds: Mapped[float | None] = mapped_column(Float)
    deadline_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    current_position: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(32))
    # The published form drawn (pre-assembled forms); empty when assembled at login (LOFT).
    form_id: Mapped[int | None] = mapped_column(ForeignKey("forms.id"))

    items: Mapped[list[SittingItem]] = relationship(
        back_populates="sitting", order_by="SittingItem.position", cascade="all, delete-orphan"
    )


class SittingItem(Base):
    """One position of a sitting's form and the candidate's answer to it.

    ``chosen_option`` is the index of the chosen option in the item version's
    own option list (0-3), whatever order the options were shown in.
    """

    __tablename__ = "sitting_items"

    sitting_id: Mapped[int] = mapped_column(ForeignKey("sittings.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_version_id: Mapped[int] = mapped_column(ForeignKey("item_versions.id"), index=True)
    field: Mapped[str] = mapped_column(String(32))
    is_pretest: Mapped[bool] = mapped_column(Boolean, default=False)
    chosen_option: Mapped[int | None] = mapped_column(SmallInteger)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    marked: Mapped[bool] = mapped_column(Boolean, default=False)
    # The order the options were shown in, as content indices ("2,0,3,1"); empty: content order.
    option_order: Mapped[str | None] = mapped_column(String(32))

    sitting: Mapped[Sitting] = relationship(back_populates="items")
