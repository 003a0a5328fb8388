"""Password hashes: scrypt (memory-hard), computed a bounded number at a time.

Each hash or check holds tens of megabytes and a core for a good fraction of a
second, so a burst of sign-ins could exhaust a server's memory. At most
``CBT_PASSWORD_HASH_SLOTS`` (default 2) run at once in a process; a request that
finds every slot taken for longer than a moment is refused at once with
:class:`~persistence.errors.Unavailable` (503 with Retry-After), never queued.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

from werkzeug.security import check_password_hash, generate_password_hash

from persistence.errors import InvalidInput, Unavailable
from persistence.settings import load_settings

MIN_LENGTH = 10
MAX_LENGTH = 1024  # the forms' maxlength: a longer one is refused, not hashed
# How long a request waits for a free slot before it is told to come back.
WAIT_SECONDS = 0.5
RETRY_AFTER_SECONDS = 2



class WrongPassword(InvalidInput):
    """The current password given to change it is not the account's (counted like a failed sign-in)."""

    def __init__(self):
        super().__init__("The current password is not right.", field="current_password")


_lock = threading.Lock()
_slots: threading.BoundedSemaphore | None = None
_gate: threading.BoundedSemaphore | None = None
_dummy_hash: str | None = None


def set_slots(count: int) -> None:
    """Bound the hashes computed at once in this process (read from the settings by default), and
    the sign-ins under way at once (:func:`sign_in_gate`) to as many."""
    global _slots, _gate
    with _lock:
        _slots = threading.BoundedSemaphore(count)
        _gate = threading.BoundedSemaphore(count)


def _semaphore() -> threading.BoundedSemaphore:
    if _slots is None:
        set_slots(load_settings().password_hash_slots)
    return _slots


@contextmanager
def sign_in_gate() -> Iterator[None]:
    """At most ``CBT_PASSWORD_HASH_SLOTS`` password sign-ins under way at once in this process;
    one more is refused at once (503 with Retry-After), before it reads or locks anything.

    Without it a storm of sign-ins from one address (a centre's staff behind one NAT) queued on
    the throttle's row of that address and held every thread of the server while it waited, so
    the candidates' answer saves waited behind them (docs/benchmarks.md, the sign-in storm)."""
    if _gate is None:
        _semaphore()
    gate = _gate
    if not gate.acquire(blocking=False):
        raise Unavailable("The server is busy signing other people in; please try again in a moment.",
                          retry_after=RETRY_AFTER_SECONDS)
    try:
        yield
    finally:
        gate.release()


@contextmanager
def _slot() -> Iterator[None]:
    semaphore = _semaphore()
    if not semaphore.acquire(timeout=WAIT_SECONDS):
        raise Unavailable("The server is busy signing other people in; please try again in a moment.",
                          retry_after=RETRY_AFTER_SECONDS)
    try:
        yield
    finally:
        semaphore.release()


def hash_password(password: str) -> str:
    with _slot():
        return generate_password_hash(password)


def password_matches(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches the stored hash. With no stored hash (an unknown account) a
    dummy hash is checked all the same, so that it takes as long as a wrong password."""
    global _dummy_hash
    with _slot():
        if stored is None:
            if _dummy_hash is None:
                _dummy_hash = generate_password_hash("not a password")
            check_password_hash(_dummy_hash, password)
            return False
        return check_password_hash(stored, password)
