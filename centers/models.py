"""Centres, rooms, seats, the calendar (slots and closures), candidates, bookings,
staff accounts and incidents."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, CheckConstraint, Date, Float, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from centers.states import Machine, Status, StatusText, Transition, status_check, status_values
from persistence import Base, UTCDateTime, utcnow
from persistence.personal import PersonalDate, PersonalText, lookup_hash
from persistence.settings import DEFAULT_PROGRAM

STAFF_ROLES = ("proctor", "psychometrician")


class BookingStatus(Status):
    BOOKED = "booked"
    CHECKED_IN = "checked_in"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


# A booking in one of these holds a place in its slot (and its seat, once it has one).
ACTIVE_BOOKING = (BookingStatus.BOOKED, BookingStatus.CHECKED_IN)

# Every change of a booking, and the statuses it may come from (the services refuse the rest).
BOOKING = Machine("booking", BookingStatus, {
    "check_in": Transition((BookingStatus.BOOKED,), BookingStatus.CHECKED_IN, "checked in"),
    "no_show": Transition((BookingStatus.BOOKED,), BookingStatus.NO_SHOW, "recorded as a no-show"),
    "move": Transition((BookingStatus.BOOKED,), None, "moved"),
    "cancel": Transition((BookingStatus.BOOKED,), BookingStatus.CANCELLED, "cancelled"),
    "accommodate": Transition((BookingStatus.BOOKED, BookingStatus.CHECKED_IN), None, "given accommodations"),
})


class SlotStatus(Status):
    OPEN = "open"
    CLOSED = "closed"

# The eight regions of Japan, by which statistics and DIF analyses group centres.
REGIONS = ("Hokkaido", "Tohoku", "Kanto", "Chubu", "Kinki", "Chugoku", "Shikoku", "Kyushu")
# What a seat offers and a booking may ask for (the seat-placement accommodation).
SEAT_FEATURES = ("wheelchair", "front", "near_exit")
OCCUPATIONS = ("working", "student")
COMPANY_TYPES = ("it", "non-it")
INCIDENT_KINDS = ("equipment", "identity", "misconduct", "late_arrival", "health", "environment", "other")


class Centre(Base):
    __tablename__ = "centres"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(128))  # in Japanese: 新宿テストセンター
    # The name English readers see (Shinjuku Test Centre); None: ``name``.
    name_en: Mapped[str | None] = mapped_column(String(128))
    # In Japanese (東京都); lists follow the postal order of centers.prefectures.
    prefecture: Mapped[str] = mapped_column(String(32))
    region: Mapped[str] = mapped_column(String(16), default="Kanto", index=True)
    city: Mapped[str] = mapped_column(String(64), default="")
    # The weekdays it opens, Monday = 0: "0123456" is every day of the week.
    open_weekdays: Mapped[str] = mapped_column(String(7), default="0123456")
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    seats: Mapped[list[Seat]] = relationship(back_populates="centre", order_by="Seat.label")
    rooms: Mapped[list[Room]] = relationship(back_populates="centre", order_by="Room.name")

    def name_in(self, language: str) -> str:
        """The centre's name for a reader of ``language``: the Japanese name, or the English one
        where there is one for a reader of another language."""
        return self.name_en if language != "ja" and self.name_en else self.name


class Room(Base):
    __tablename__ = "rooms"
    __table_args__ = (UniqueConstraint("centre_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"), index=True)
    name: Mapped[str] = mapped_column(String(32))

    centre: Mapped[Centre] = relationship(back_populates="rooms")


class Seat(Base):
    __tablename__ = "seats"
    __table_args__ = (UniqueConstraint("centre_id", "label"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"), index=True)
    room_id: Mapped[int | None] = mapped_column(ForeignKey("rooms.id"))
    label: Mapped[str] = mapped_column(String(16))
    # Space-separated words of SEAT_FEATURES, e.g. "wheelchair near_exit".
    features: Mapped[str] = mapped_column(String(64), default="")
    # A seat out of service (say, its PC failed) gets no new candidates.
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    centre: Mapped[Centre] = relationship(back_populates="seats")
    room: Mapped[Room | None] = relationship()

    def offers(self, need: str | None) -> bool:
        return need is None or need in self.features.split()


class SeatEnrolment(Base):
    """A PC enrolled by a proctor as one seat of their centre: candidates of the centre's
    bookings log in only at such a PC (the program's ``seat_enrolment_required``).

    The PC holds a long-lived signed cookie with a random credential whose hash is
    ``token_hash``; a one-time enrolment link (``cbt seats enrol``) holds ``link_hash`` until a
    browser claims it. One PC per seat and one seat per PC: enrolling a seat again, or
    enrolling an enrolled PC as another seat (the PC moved), revokes the older enrolment.
    Revoked rows are kept for the record.
    """

    __tablename__ = "seat_enrolments"

    id: Mapped[int] = mapped_column(primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"), index=True)
    seat_id: Mapped[int] = mapped_column(ForeignKey("seats.id"), index=True)
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    link_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    link_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    enrolled_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(64))

    centre: Mapped[Centre] = relationship()
    seat: Mapped[Seat] = relationship()


class Slot(Base):
    """One sitting time at one centre (e.g. the morning slot of a date).

    ``booked`` counts the bookings holding a place; the booking service raises it
    with one guarded UPDATE, and the check constraint makes overbooking impossible
    whatever the code does, so two candidates racing for the last place never both get it.
    """

    __tablename__ = "slots"
    __table_args__ = (
        UniqueConstraint("centre_id", "starts_at"),
        CheckConstraint("booked >= 0 AND booked <= capacity", name="booked_within_capacity"),
        status_check(SlotStatus),
        Index("ix_slots_centre_id_date", "centre_id", "date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"), index=True)
    date: Mapped[dt.date] = mapped_column(Date, index=True)
    kind: Mapped[str] = mapped_column(String(16))
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    capacity: Mapped[int] = mapped_column(Integer)
    booked: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[SlotStatus] = mapped_column(StatusText(SlotStatus, 8), default=SlotStatus.OPEN)

    centre: Mapped[Centre] = relationship()

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.booked)


class CalendarClosure(Base):
    """A day (or one slot of a day) closed for a holiday or maintenance.

    ``centre_id`` empty closes every centre. Slots already in the calendar are
    closed with it; slots added later by ``extend_calendar`` respect it.
    """

    __tablename__ = "calendar_closures"

    id: Mapped[int] = mapped_column(primary_key=True)
    centre_id: Mapped[int | None] = mapped_column(ForeignKey("centres.id"), index=True)
    date: Mapped[dt.date] = mapped_column(Date, index=True)
    kind: Mapped[str | None] = mapped_column(String(16))  # a slot kind, or empty for the whole day
    reason: Mapped[str] = mapped_column(String(200))
    closed_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Candidate(Base):
    """A candidate. Name, kana, date of birth and e-mail are encrypted at rest
    (:mod:`persistence.personal`); ``email_hash``, a keyed hash of the e-mail, finds a
    registered candidate by address (:func:`centers.candidates.by_email`)."""

    __tablename__ = "candidates"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(PersonalText())
    # The name's reading in katakana (フリガナ): identity checks read it aloud.
    name_kana: Mapped[str | None] = mapped_column(PersonalText())
    date_of_birth: Mapped[dt.date] = mapped_column(PersonalDate())
    # Registered candidates sign in to their bookings with e-mail and password.
    email: Mapped[str | None] = mapped_column(PersonalText())
    email_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(256))
    # The exam's statistics are reported by these groups (see the exam spec).
    occupation: Mapped[str | None] = mapped_column(String(16))  # "working" | "student"
    company_type: Mapped[str | None] = mapped_column(String(16))  # "it" | "non-it"
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    @validates("email")
    def _hash_email(self, _key: str, email: str | None) -> str | None:
        # The look-up hash follows the address, whoever sets it.
        self.email_hash = lookup_hash(email.strip().lower()) if email else None
        return email


class Booking(Base):
    """A candidate's place in a slot, with the admission code printed on the slip.

    The seat is given at check-in (or when booked by staff), matching the
    seat-placement accommodation; extra time and larger text are applied to the
    sitting automatically.
    """

    __tablename__ = "bookings"
    __table_args__ = (
        # One candidate per seat per slot, among bookings that hold a place.
        Index("uq_bookings_slot_seat", "slot_id", "seat_id", unique=True,
              sqlite_where=text(f"seat_id IS NOT NULL AND status IN ({status_values(ACTIVE_BOOKING)})"),
              postgresql_where=text(f"seat_id IS NOT NULL AND status IN ({status_values(ACTIVE_BOOKING)})")),
        # One booking not yet taken up per candidate and program, whatever the code does: a
        # second one (two bookings racing) is refused by the database. Checked-in bookings of
        # days gone by stay as they are; the booking service keeps "one upcoming at a time".
        Index("uq_bookings_candidate_program", "candidate_id", "program_code", unique=True,
              sqlite_where=text(f"status = '{BookingStatus.BOOKED.value}'"),
              postgresql_where=text(f"status = '{BookingStatus.BOOKED.value}'")),
        status_check(BookingStatus),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"), index=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("slots.id"), index=True)
    seat_id: Mapped[int | None] = mapped_column(ForeignKey("seats.id"))
    admission_code: Mapped[str] = mapped_column(String(32), unique=True)
    # The exam program booked (its code), for the rule of one booking per program at a time.
    program_code: Mapped[str] = mapped_column(String(32), default=DEFAULT_PROGRAM, server_default=DEFAULT_PROGRAM)
    status: Mapped[BookingStatus] = mapped_column(StatusText(BookingStatus), default=BookingStatus.BOOKED)
    # The language the candidate chose ("ja", "en"); the sitting is shown in it. None: the program's default.
    language: Mapped[str | None] = mapped_column(String(8))
    # Accommodations.
    time_multiplier: Mapped[float] = mapped_column(Float, default=1.0)
    large_text: Mapped[bool] = mapped_column(Boolean, default=False)
    seat_need: Mapped[str | None] = mapped_column(String(16))  # one of SEAT_FEATURES
    # Moves so far, and the date first booked (a move must stay within the program's window of it).
    changes: Mapped[int] = mapped_column(Integer, default=0)
    first_date: Mapped[dt.date | None] = mapped_column(Date)
    checked_in_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    checked_in_by: Mapped[int | None] = mapped_column(ForeignKey("staff_accounts.id"))
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
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


class SignIn(Base):
    """One signed-in browser of a staff account or a registered candidate: the server's half
    of the session cookie, which holds a random token whose hash is the row's id.

    Every request of the browser finds its row (one primary-key lookup) or is signed out.
    Signing out deletes the row; a password change or a closed account deletes every row of
    the account, so every copy of the cookie stops working at once. ``seen_at`` (moved on at
    most once a minute) gives the idle timeout, ``created_at`` the absolute one.
    """

    __tablename__ = "sign_ins"
    __table_args__ = (CheckConstraint("(staff_id IS NULL) <> (candidate_id IS NULL)", name="one_account"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_accounts.id"), index=True)
    candidate_id: Mapped[int | None] = mapped_column(ForeignKey("candidates.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class Incident(Base):
    """Something that happened at a centre during a slot, as the proctor logged it."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"), index=True)
    slot_id: Mapped[int | None] = mapped_column(ForeignKey("slots.id"), index=True)
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id"))
    kind: Mapped[str] = mapped_column(String(16))  # one of INCIDENT_KINDS
    description: Mapped[str] = mapped_column(String(1000))
    logged_by: Mapped[int] = mapped_column(ForeignKey("staff_accounts.id"))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
