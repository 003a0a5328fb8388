"""Login throttling: how many wrong guesses one address, one account, or the two together may make.

Three sign-ins are guessable: staff (username and password), registered candidates
(e-mail and password) and the seat login (admission code and date of birth). Each
failed attempt is counted in the database, which every process and host share, under
three keys, each with its own rule (:class:`ThrottlePolicy`):

- ``pair``: this account from this client address. One address guessing one account
  is blocked soon, for longer each time it goes on; the block stops that address only.
- ``account``: this account from every address, against guessing spread over many
  addresses. A client that has signed in to the account before (it shows a signed
  known-device token, see :mod:`delivery.web.auth`) is exempt, so nobody can lock a real
  user out of the device they use by failing from elsewhere.
- ``client``: this address over every account, against one address trying one
  password on many accounts. Known devices are exempt here too.

An attempt while a key is blocked is refused before the credentials are checked (no
answer leaks), is not counted, and is told when to try again. Unknown accounts are
throttled exactly like real ones. Keys are stored as hashes: the table holds no
e-mail address, admission code or client address.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import math
from dataclasses import dataclass

from sqlalchemy import Integer, String, delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from persistence import Base, UTCDateTime, audit

LOGIN_KINDS = ("staff", "applicant", "seat")
SCOPES = ("pair", "account", "client")


class LoginThrottle(Base):
    """The failures counted under one key in the current window, and its block."""

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of scope, kind, account, client
    scope: Mapped[str] = mapped_column(String(8))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # How many blocks this key has earned since its last success: each doubles the next one.
    strikes: Mapped[int] = mapped_column(Integer, default=0)
    blocked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


@dataclass(frozen=True)
class Rule:
    """``limit`` failures within ``window_seconds`` block the key for ``block_seconds``,
    doubled for each earlier block since the last success, up to ``max_block_seconds``."""

    limit: int
    window_seconds: int
    block_seconds: int
    max_block_seconds: int

    def block_for(self, strikes: int) -> int:
        return min(self.max_block_seconds, self.block_seconds * 2 ** min(strikes, 20))


@dataclass(frozen=True)
class ThrottlePolicy:
    """The rules of each scope (an app setting, ``LOGIN_THROTTLE``); see docs/security.md for the choice."""

    pair: Rule = Rule(limit=5, window_seconds=900, block_seconds=60, max_block_seconds=900)
    account: Rule = Rule(limit=20, window_seconds=900, block_seconds=60, max_block_seconds=600)
    client: Rule = Rule(limit=100, window_seconds=900, block_seconds=300, max_block_seconds=900)

    def rule(self, scope: str) -> Rule:
        return getattr(self, scope)


class LoginThrottled(Exception):
    """Too many failed attempts: try again in ``retry_after`` seconds."""

    status = 429

    def __init__(self, retry_after: int):
        minutes = max(1, math.ceil(retry_after / 60))
        super().__init__(f"Too many failed attempts. Please wait {minutes} minute{'s' if minutes > 1 else ''} "
                         "and try again.")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Attempt:
    """One sign-in attempt: what kind, at which account (normalised), from where."""

    kind: str
    account: str
    client: str
    known_device: bool = False

    def keys(self) -> dict[str, str]:
        """The key of each scope that applies: a known device answers for the pair only."""
        keys = {"pair": _key("pair", self.kind, self.account, self.client)}
        if not self.known_device:
            keys["account"] = _key("account", self.kind, self.account)
            keys["client"] = _key("client", self.client)
        return keys

    def all_keys(self) -> dict[str, str]:
        return {"pair": _key("pair", self.kind, self.account, self.client),
                "account": _key("account", self.kind, self.account), "client": _key("client", self.client)}


def client_of(address: str | None) -> str:
    """A client address as the throttle counts it: IPv4 as is, IPv6 by its /64 network
    (one subscriber holds a whole /64, so one address of it means nothing)."""
    try:
        parsed = ipaddress.ip_address(address or "")
    except ValueError:
        return "unknown"
    if parsed.version == 6:
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def _key(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def account_key(kind: str, account: str) -> str:
    """The stored key of an account's own rule (for unblocking it)."""
    return _key("account", kind, account)


def client_key(client: str) -> str:
    return _key("client", client)


def _retry_after(until: dt.datetime, now: dt.datetime) -> int:
    return max(1, math.ceil((until - now).total_seconds()))


def check(session: Session, attempt: Attempt, now: dt.datetime) -> None:
    """Raise :class:`LoginThrottled` if any key of the attempt is blocked now."""
    until = session.scalar(
        select(LoginThrottle.blocked_until)
        .where(LoginThrottle.key.in_(list(attempt.keys().values())), LoginThrottle.blocked_until > now)
        .order_by(LoginThrottle.blocked_until.desc()).limit(1)
    )
    if until is not None:
        raise LoginThrottled(_retry_after(until, now))


def _locked_rows(session: Session, keys: dict[str, str], now: dt.datetime) -> dict[str, LoginThrottle]:
    """The rows of ``keys`` (scope -> key), created if new, locked for this transaction.

    Created with INSERT .. ON CONFLICT DO NOTHING, so two hosts counting the same
    key at once both count; locked in key order, so they never deadlock.
    """
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    rows = {}
    for scope, key in sorted(keys.items(), key=lambda entry: entry[1]):
        session.execute(insert(LoginThrottle).values(
            key=key, scope=scope, failures=0, window_started_at=now, strikes=0, updated_at=now,
        ).on_conflict_do_nothing(index_elements=["key"]))
        rows[scope] = session.scalar(select(LoginThrottle).where(LoginThrottle.key == key).with_for_update()
                                     .execution_options(populate_existing=True))
    return rows


def failed(session: Session, policy: ThrottlePolicy, attempt: Attempt, now: dt.datetime) -> int | None:
    """Count a failed attempt under every key (a known device too: its own mistakes count
    against the account from elsewhere). Returns the seconds of the longest block this
    failure started, if it started one; each block is recorded in the audit trail."""
    started: list[tuple[str, int]] = []
    for scope, row in _locked_rows(session, attempt.all_keys(), now).items():
        rule = policy.rule(scope)
        if (now - row.window_started_at).total_seconds() >= rule.window_seconds:
            row.failures, row.window_started_at = 0, now
        row.failures += 1
        row.updated_at = now
        if row.failures >= rule.limit:
            seconds = rule.block_for(row.strikes)
            row.blocked_until = now + dt.timedelta(seconds=seconds)
            row.strikes += 1
            row.failures, row.window_started_at = 0, now
            started.append((scope, seconds))
    if started:
        audit.record(session, actor=f"client:{attempt.client}"[:64], actor_role="anonymous", action="login.blocked",
                     subject=f"{attempt.kind}:{attempt.account}"[:64],
                     details={"scopes": {scope: seconds for scope, seconds in started}}, at=now)
        return max(seconds for _, seconds in started)
    return None


def succeeded(session: Session, attempt: Attempt) -> None:
    """A correct sign-in clears its pair: the user's own typing mistakes are forgotten.
    Not the account (a user signing in often would wipe out the count of a guesser spread
    over many addresses) and not the client address (an address spraying guesses could
    clear its count by signing in to an account of its own): those wait out their window."""
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == attempt.all_keys()["pair"]))


def unblock(session: Session, keys: list[str]) -> int:
    """Forget the counts and blocks of these keys (an operator's decision); returns how many there were."""
    return session.execute(delete(LoginThrottle).where(LoginThrottle.key.in_(keys))).rowcount


def prune(session: Session, policy: ThrottlePolicy, now: dt.datetime) -> int:
    """Drop rows that neither block nor count any more (run it daily); returns how many."""
    longest = max(max(r.window_seconds, r.max_block_seconds) for r in (policy.pair, policy.account, policy.client))
    # A day past the longest window or block: a key's strikes are forgotten after a quiet day.
    horizon = now - dt.timedelta(seconds=longest) - dt.timedelta(days=1)
    return session.execute(delete(LoginThrottle).where(LoginThrottle.updated_at < horizon)).rowcount
