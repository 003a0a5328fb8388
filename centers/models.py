"""Centres, seats, slots, candidates, bookings and staff accounts."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Date, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from persistence import Base, UTCDateTime, utcnow

STAFF_ROLES = ("proctor", "psychometrician")
BOOKING_STATUSES = ("booked", "checked_in", "cancelled", "no_show")


class Centre(Base):
    __tablename__ = "centres"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    prefecture: Mapped[str] = mapped_column(String(32))

    seats: Mapped[list[Seat]] = relationship(back_populates="centre", order_by="Seat.label")


class Seat(Base):
    __tablename__ = "seats"
    __table_args__ = (UniqueConstraint("centre_id", "label"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"), index=True)
    label: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    centre: Mapped[Centre] = relationship(back_populates="seats")


class Slot(Base):
    """One sitting time at one centre (e.g. the morning slot of a date)."""

    __tablename__ = "slots"
    __table_args__ = (UniqueConstraint("centre_id", "starts_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"), index=True)
    date: Mapped[dt.date] = mapped_column(Date, index=True)
    kind: Mapped[str] = mapped_column(String(16))
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    capacity: Mapped[int] = mapped_column(Integer)

    centre: Mapped[Centre] = relationship()


class Candidate(Base):
    __tablename__ = "candidates"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    date_of_birth: Mapped[dt.date] = mapped_column(Date)
    email: Mapped[str | None] = mapped_column(String(256))
    # The exam's statistics are reported by these groups (see the exam spec).
    occupation: Mapped[str | None] = mapped_column(String(16))  # "working" | "student"
    company_type: Mapped[str | None] = mapped_column(String(16))  # "it" | "non-it"
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Booking(Base):
    """A candidate's seat in a slot, with the admission code printed on the slip."""

    __tablename__ = "bookings"

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"), index=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("slots.id"), index=True)
    seat_id: Mapped[int | None] = mapped_column(ForeignKey("seats.id"))
    admission_code: Mapped[str] = mapped_column(String(32), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="booked")
    time_multiplier: Mapped[float] = mapped_column(Float, default=1.0)
    checked_in_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    checked_in_by: Mapped[int | None] = mapped_column(ForeignKey("staff_accounts.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    candidate: Mapped[Candidate] = relationship()
    slot: Mapped[Slot] = relationship()
    seat: Mapped[Seat | None] = relationship()


class StaffAccount(Base):
    """A proctor (bound to one centre) or a psychometrician."""

    __tablename__ = "staff_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128))
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(32))
    centre_id: Mapped[int | None] = mapped_column(ForeignKey("centres.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    centre: Mapped[Centre | None] = relationship()
