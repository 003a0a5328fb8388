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

The check and the count are one step (:func:`admit`): the attempt's rows are locked,
checked and counted as a failure in advance, in one transaction, before the password is
checked; :func:`settle` then takes the advance back if the sign-in succeeded. So however
many attempts arrive at once, no more than a rule's limit get their password checked.
Two more rules bound what costs the server most whatever the credentials: ``signin``,
successful staff and applicant sign-ins per client address (each one a password hash),
and ``register``, registrations per client address.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import math
from dataclasses import dataclass
from typing import Callable, TypeVar

from sqlalchemy import Integer, String, delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column

from persistence import Base, UTCDateTime, audit
from persistence.errors import NotSignedIn, Refused
from persistence.unit_of_work import unit_of_work

T = TypeVar("T")

LOGIN_KINDS = ("staff", "applicant", "seat")
SCOPES = ("pair", "account", "client", "signin", "register")
# The scopes that count failures; "signin" counts successes, "register" every registration.
FAILURE_SCOPES = ("pair", "account", "client")


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
    # Successful staff and applicant sign-ins from one address: generous (an office or a campus behind
    # one address signs in many people), it bounds one client to a password hash every 3 s or so.
    signin: Rule = Rule(limit=300, window_seconds=900, block_seconds=300, max_block_seconds=900)
    # Registrations from one address (a university network registering a class at once fits).
    register: Rule = Rule(limit=30, window_seconds=3600, block_seconds=900, max_block_seconds=3600)

    def rule(self, scope: str) -> Rule:
        return getattr(self, scope)


class LoginThrottled(Refused):
    """Too many attempts: try again in ``retry_after`` seconds (429 with Retry-After on the web)."""

    def __init__(self, retry_after: int):
        minutes = max(1, math.ceil(retry_after / 60))
        super().__init__("Too many failed attempts. Please wait {minutes} min and try again.", minutes=minutes)
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

    def counted_keys(self) -> dict[str, str]:
        """Every key an attempt is counted under in advance: the failures' and, but at the seat
        (a centre's PCs share one address), the client's successful sign-ins."""
        keys = self.all_keys()
        if self.kind != "seat":
            keys["signin"] = _key("signin", self.client)
        return keys

    def checked_keys(self) -> dict[str, str]:
        keys = self.keys()
        if self.kind != "seat":
            keys["signin"] = _key("signin", self.client)
        return keys


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
    failure started, if it started one; each block is recorded in the audit trail.
    (The sign-ins count through :func:`admit` and :func:`settle`; this is the count alone.)"""
    started: list[tuple[str, int]] = []
    for scope, row in _locked_rows(session, attempt.all_keys(), now).items():
        seconds = _count(row, policy.rule(scope), now)
        if seconds is not None:
            started.append((scope, seconds))
    if started:
        audit.record(session, actor=f"client:{attempt.client}"[:64], actor_role="anonymous", action="login.blocked",
                     subject=f"{attempt.kind}:{attempt.account}"[:64],
                     details={"scopes": {scope: seconds for scope, seconds in started}}, at=now)
        return max(seconds for _, seconds in started)
    return None


def _count(row: LoginThrottle, rule: Rule, now: dt.datetime) -> int | None:
    """Count one event on the row; the seconds of the block it starts, if it starts one."""
    if not 0 <= (now - row.window_started_at).total_seconds() < rule.window_seconds:  # over, or a clock set back
        row.failures, row.window_started_at = 0, now
    row.failures += 1
    row.updated_at = now
    if row.failures < rule.limit:
        return None
    seconds = rule.block_for(row.strikes)
    row.blocked_until = now + dt.timedelta(seconds=seconds)
    row.strikes += 1
    row.failures, row.window_started_at = 0, now
    return seconds


@dataclass(frozen=True)
class Counted:
    """What one admitted attempt counted under one key, so that it can be taken back exactly."""

    key: str
    window_started_at: dt.datetime  # the window it was counted in
    block: tuple[dt.datetime, dt.datetime | None, dt.datetime] | None  # (its block's end, the row's
    # blocked_until and window start before it), when this attempt started a block
    seconds: int | None


@dataclass(frozen=True)
class Admission:
    attempt: Attempt
    counted: dict[str, Counted]


def admit(session: Session, policy: ThrottlePolicy, attempt: Attempt, now: dt.datetime) -> Admission:
    """Check and count the attempt in one step (one unit of work, the rows locked): refused with
    :class:`LoginThrottled` if a key that applies to it is blocked, else counted in advance as a
    failure (and a sign-in) under every key, with any block that earns."""
    with unit_of_work(session):
        rows = _locked_rows(session, attempt.counted_keys(), now)
        checked = set(attempt.checked_keys())
        blocks = [row.blocked_until for scope, row in rows.items()
                  if scope in checked and row.blocked_until is not None and row.blocked_until > now]
        if blocks:
            raise LoginThrottled(_retry_after(max(blocks), now))
        counted = {}
        for scope, row in rows.items():
            before = (row.blocked_until, row.window_started_at)
            seconds = _count(row, policy.rule(scope), now)
            block = (row.blocked_until, *before) if seconds is not None else None
            counted[scope] = Counted(row.key, row.window_started_at, block, seconds)
    return Admission(attempt, counted)


def _take_back(session: Session, policy: ThrottlePolicy, counted: Counted, scope: str) -> None:
    row = session.scalar(select(LoginThrottle).where(LoginThrottle.key == counted.key).with_for_update()
                         .execution_options(populate_existing=True))
    if row is None:
        return
    if counted.block is not None:
        until, blocked_before, window_before = counted.block
        if row.blocked_until == until:  # the block this attempt started, and nothing counted since
            row.blocked_until, row.window_started_at = blocked_before, window_before
            row.strikes = max(0, row.strikes - 1)
            row.failures = policy.rule(scope).limit - 1
    elif row.window_started_at == counted.window_started_at and row.failures > 0:
        row.failures -= 1


SUCCEEDED, FAILED, NOT_CHECKED = "succeeded", "failed", "not checked"


def settle(session: Session, policy: ThrottlePolicy, admission: Admission, outcome: str, now: dt.datetime) -> None:
    """Settle an admitted attempt (one unit of work). Succeeded: the pair is forgotten (the user's
    own typing mistakes), the advance failure counts are taken back but not the account's and the
    client's earlier ones (a user signing in often would wipe out the count of a guesser spread
    over many addresses, and an address spraying guesses could clear its count by signing in to an
    account of its own: those wait out their window); the sign-in stays counted. Failed: the failure stays counted, the sign-in
    is taken back, and any block it started is recorded in the audit trail. Not checked (the
    server could not check it): everything is taken back."""
    attempt = admission.attempt
    with unit_of_work(session):
        keep = {SUCCEEDED: {"signin"}, FAILED: set(FAILURE_SCOPES)}.get(outcome, set())
        for scope, counted in sorted(admission.counted.items(), key=lambda entry: entry[1].key):
            if scope in keep:
                continue
            if outcome == SUCCEEDED and scope == "pair":
                session.execute(delete(LoginThrottle).where(LoginThrottle.key == counted.key))
                continue
            _take_back(session, policy, counted, scope)
        started = {scope: c.seconds for scope, c in admission.counted.items() if scope in keep and c.seconds}
        if outcome == FAILED and started:
            audit.record(session, actor=f"client:{attempt.client}"[:64], actor_role="anonymous",
                         action="login.blocked", subject=f"{attempt.kind}:{attempt.account}"[:64],
                         details={"scopes": started}, at=now)


def guarded(session: Session, policy: ThrottlePolicy, attempt: Attempt, now: dt.datetime,
            sign_in: Callable[[], T], wrong: tuple[type[Exception], ...] = (NotSignedIn,)) -> T:
    """Run ``sign_in`` (a service that raises one of ``wrong`` for wrong credentials) under the
    throttle: admitted first (or refused with :class:`LoginThrottled`), settled after."""
    admission = admit(session, policy, attempt, now)
    try:
        result = sign_in()
    except wrong:
        settle(session, policy, admission, FAILED, now)
        raise
    except BaseException:
        try:
            settle(session, policy, admission, NOT_CHECKED, now)
        except SQLAlchemyError:
            pass  # the database that failed the sign-in fails this too; the first error is the one to report
        raise
    settle(session, policy, admission, SUCCEEDED, now)
    return result


def admit_registration(session: Session, policy: ThrottlePolicy, client: str, now: dt.datetime) -> None:
    """Count a registration from ``client`` (one unit of work), or refuse it with :class:`LoginThrottled`."""
    with unit_of_work(session):
        row = _locked_rows(session, {"register": _key("register", client)}, now)["register"]
        if row.blocked_until is not None and row.blocked_until > now:
            raise LoginThrottled(_retry_after(row.blocked_until, now))
        _count(row, policy.register, now)


def unblock(session: Session, keys: list[str]) -> int:
    """Forget the counts and blocks of these keys, in the caller's unit of work; returns how many there were."""
    return session.execute(delete(LoginThrottle).where(LoginThrottle.key.in_(keys))).rowcount


def unblock_targets(session: Session, targets: list[tuple[str, str]], *, actor: str, reason: str,
                    now: dt.datetime) -> int:
    """An operator lifts the blocks of accounts (kind, account) and client addresses ("client", address),
    each lift recorded in the audit trail; returns how many counts there were."""
    keys = [client_key(name) if kind == "client" else account_key(kind, name) for kind, name in targets]
    with unit_of_work(session):
        removed = unblock(session, keys)
        for kind, name in targets:
            audit.record(session, actor=actor, actor_role="operations", action="login.unblock",
                         subject=f"{kind}:{name}"[:64], reason=reason, at=now)
    return removed


def prune(session: Session, policy: ThrottlePolicy, now: dt.datetime) -> int:
    """Drop rows that neither block nor count any more (run it daily); returns how many."""
    longest = max(max(r.window_seconds, r.max_block_seconds) for r in map(policy.rule, SCOPES))
    # A day past the longest window or block: a key's strikes are forgotten after a quiet day.
    horizon = now - dt.timedelta(seconds=longest) - dt.timedelta(days=1)
    with unit_of_work(session):
        return session.execute(delete(LoginThrottle).where(LoginThrottle.updated_at < horizon)).rowcount
