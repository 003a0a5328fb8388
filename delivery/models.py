"""The sitting: one candidate's exam, its items, answers and clock."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Float, ForeignKey, Integer, LargeBinary, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from centers.states import Machine, Status, StatusText, Transition, status_check
from persistence import Base, UTCDateTime, utcnow


class SittingStatus(Status):
    WAITING = "waiting"  # logged in at the seat, not started
    IN_PROGRESS = "in_progress"  # the clock runs
    PAUSED = "paused"  # the clock is stopped by a proctor
    FINISHED = "finished"  # submitted or time up, and scored
    ENDED = "ended"  # stopped by a proctor (e.g. misconduct), not scored


OPEN_SITTING = (SittingStatus.WAITING, SittingStatus.IN_PROGRESS, SittingStatus.PAUSED)
CLOSED_SITTING = (SittingStatus.FINISHED, SittingStatus.ENDED)

# Every transition of a sitting, whoever triggers it (the candidate, a proctor, the clock).
SITTING = Machine("sitting", SittingStatus, {
    "start": Transition((SittingStatus.WAITING,), SittingStatus.IN_PROGRESS, "started"),
    "pause": Transition((SittingStatus.IN_PROGRESS,), SittingStatus.PAUSED, "paused"),
    "resume": Transition((SittingStatus.PAUSED,), SittingStatus.IN_PROGRESS, "resumed"),
    "add_time": Transition(OPEN_SITTING, None, "given more time"),
    "move_seat": Transition(OPEN_SITTING, None, "moved"),
    "end": Transition(OPEN_SITTING, SittingStatus.ENDED, "ended"),
    "finish": Transition((SittingStatus.IN_PROGRESS,), SittingStatus.FINISHED, "finished"),
})


class Sitting(Base):
    """The state of one candidate's exam.

    The clock lives here, on the server: while in progress ``deadline_at`` is the
    moment time runs out; while waiting or paused ``remaining_seconds`` holds the
    time left and ``deadline_at`` is empty.
    """

    __tablename__ = "sittings"
    __table_args__ = (status_check(SittingStatus),)

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id"), unique=True)
    seat_id: Mapped[int | None] = mapped_column(ForeignKey("seats.id"))
    program_code: Mapped[str] = mapped_column(String(32))
    status: Mapped[SittingStatus] = mapped_column(StatusText(SittingStatus), default=SittingStatus.WAITING)
    # A new login replaces the token, so a seat that was left is locked out.
    login_token_hash: Mapped[str] = mapped_column(String(64))
    remaining_seconds: Mapped[float | None] = mapped_column(Float)
    deadline_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The whole minutes proctors have added so far (capped by the program).
    added_minutes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
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


class SittingQuestions(Base):
    """A sitting's questions as the page reads them, prepared at login (``delivery.prepared``):
    JSON, gzip-compressed, sealed under the content key (it is the exam's content)."""

    __tablename__ = "sitting_questions"

    sitting_id: Mapped[int] = mapped_column(ForeignKey("sittings.id", ondelete="CASCADE"), primary_key=True)
    language: Mapped[str] = mapped_column(String(8))
    etag: Mapped[str] = mapped_column(String(32))
    body: Mapped[bytes] = mapped_column(LargeBinary)
