"""State machines as data: a status enum, one table of transitions, and the column that stores it.

A machine names each action with the statuses it may start from and the status it
leads to. Services refuse with :meth:`Machine.refuse_unless` and move with
:meth:`Machine.target`; the proctor's console asks :meth:`Machine.actions` which
buttons to show. Statuses are stored as their plain string values (raw SQL and the
rows written before the enums existed stay valid), each column guarded by a CHECK
constraint of its values (:func:`status_check`).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Generic, Iterable, TypeVar

from sqlalchemy import CheckConstraint, String
from sqlalchemy.types import TypeDecorator

from persistence.errors import Conflict

S = TypeVar("S", bound=enum.StrEnum)


class Status(enum.StrEnum):
    """A status; ``words`` is how a sentence says it ("checked in")."""

    @property
    def words(self) -> str:
        return self.value.replace("_", " ")


@dataclass(frozen=True)
class Transition(Generic[S]):
    sources: tuple[S, ...]
    target: S | None  # None: the action keeps the status
    done: str  # the words of a refusal: "cannot be <done>"


class Machine(Generic[S]):
    """The transitions of one kind of row (``noun``: "booking", "sitting")."""

    def __init__(self, noun: str, statuses: type[S], transitions: dict[str, Transition[S]]):
        self.noun = noun
        self.statuses = statuses
        self.transitions = transitions

    def allows(self, status: str, action: str) -> bool:
        return status in self.transitions[action].sources

    def actions(self, status: str, among: Iterable[str]) -> tuple[str, ...]:
        """The actions of ``among`` (in that order) that ``status`` allows."""
        return tuple(action for action in among if self.allows(status, action))

    def refuse_unless(self, status: str, action: str) -> None:
        """Raise :class:`Conflict` unless ``status`` allows ``action``."""
        if not self.allows(status, action):
            raise Conflict(f"A {self.noun} that is {self.statuses(status).words} cannot be "
                           f"{self.transitions[action].done}.")

    def target(self, status: str, action: str) -> S:
        """The status after ``action`` from ``status``, refused if not allowed."""
        self.refuse_unless(status, action)
        target = self.transitions[action].target
        return self.statuses(status) if target is None else target


class StatusText(TypeDecorator):
    """A status column: the enum's string value in the database, the enum member in Python."""

    impl = String
    cache_ok = True

    def __init__(self, statuses: type[enum.StrEnum], length: int = 16):
        super().__init__(length)
        self.statuses = statuses

    def process_bind_param(self, value, dialect):
        return None if value is None else self.statuses(value).value

    def process_result_value(self, value, dialect):
        return None if value is None else self.statuses(value)


def status_values(statuses: Iterable[enum.StrEnum]) -> str:
    """The statuses as a list of SQL strings: "'booked', 'checked_in'" (an enum class gives all of its)."""
    return ", ".join(f"'{member.value}'" for member in statuses)


def status_check(statuses: type[enum.StrEnum], column: str = "status") -> CheckConstraint:
    """The CHECK constraint that keeps ``column`` to the enum's values (named ck_<table>_<column>)."""
    return CheckConstraint(f"{column} IN ({status_values(statuses)})", name=column)
