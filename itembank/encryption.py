"""The bank's encryption at rest as a whole: the start-up check and key rotation.

Single values are encrypted and decrypted in :mod:`itembank.content`; this
module works over every stored version: it checks at start-up that the keyring
decrypts the bank, and re-encrypts the whole bank under a new key in one
transaction.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from itembank.content import PREFIX_LENGTH, ContentKeyError, SealedInteger, key_id_of, reencrypt, unpack
from itembank.keyring import Keyring, current_keyring, use_keyring, write_key_file
from itembank.models import ItemVersion
from persistence import Base, audit
from persistence.unit_of_work import unit_of_work


def key_usage(session: Session) -> Counter:
    """How many stored versions each key id encrypts (None: not encrypted)."""
    prefix = func.substr(ItemVersion.content, 1, PREFIX_LENGTH)
    rows = session.execute(select(prefix, func.count()).group_by(prefix))
    usage: Counter = Counter()
    for stored_prefix, count in rows:
        usage[key_id_of(stored_prefix + "x") if stored_prefix else None] += count
    return usage


def check_content_keys(session: Session, keyring: Keyring | None = None) -> Counter:
    """Refuse a keyring that cannot decrypt the bank: raise ContentKeyError with the fix.

    Every key id in use must be in the keyring, and decrypt one of its rows
    (AES-GCM's tag tells a wrong key from the right one). Returns the key usage.
    """
    keyring = keyring or current_keyring()
    usage = key_usage(session)
    if usage.get(None):
        raise ContentKeyError(f"{usage[None]} item version(s) hold plain text: run `cbt items encrypt` "
                              "to encrypt them under the active key")
    missing = sorted(kid for kid in usage if kid not in keyring.keys)
    if missing:
        raise ContentKeyError(
            f"the item bank is encrypted with key(s) {', '.join(missing)}, which {keyring.source} does not hold: "
            "set CBT_CONTENT_KEYS or CBT_CONTENT_KEY_FILE to the bank's keys")
    for kid in usage:
        sample = session.scalar(
            select(ItemVersion.content).where(func.substr(ItemVersion.content, 1, PREFIX_LENGTH) == f"v1:{kid}:")
            .order_by(ItemVersion.id).limit(1))
        unpack(sample, keyring)
    return usage


@dataclass(frozen=True)
class RotationReport:
    old_keys: tuple[str, ...]
    new_key: str
    reencrypted: int


def reencrypt_bank(session: Session, old: Keyring, new: Keyring, *, batch: int = 500,
                   progress: Callable[[int, int], None] | None = None) -> int:
    """Re-encrypt every version not under ``new``'s active key, in the caller's transaction.

    Rows are read in id order a batch at a time and written back by id; the
    caller commits once, so the bank is all old or all new.
    """
    total = session.scalar(select(func.count(ItemVersion.id))) or 0
    done = changed = 0
    last_id = 0
    while True:
        rows = session.execute(
            select(ItemVersion.id, ItemVersion.content).where(ItemVersion.id > last_id)
            .order_by(ItemVersion.id).limit(batch)).all()
        if not rows:
            break
        for version_id, stored in rows:
            fresh = reencrypt(stored, old, new)
            if fresh != stored:
                session.execute(update(ItemVersion).where(ItemVersion.id == version_id).values(content=fresh))
                changed += 1
        done += len(rows)
        last_id = rows[-1][0]
        if progress:
            progress(done, total)
    return changed


def reencrypt_sealed_values(session: Session) -> int:
    """Write every :class:`~itembank.content.SealedInteger` value again, under the process's active
    key (read with the keyring that holds the old keys too), in the caller's transaction."""
    done = 0
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if not isinstance(column.type, SealedInteger):
                continue
            for row_id, value in session.execute(select(table.c.id, column).where(column.is_not(None))).all():
                session.execute(update(table).where(table.c.id == row_id).values({column.name: value}))
                done += 1
    return done


def rotate_keys(session: Session, keyring: Keyring | None = None, *, actor: str, actor_role: str,
                now: dt.datetime, progress: Callable[[int, int], None] | None = None) -> RotationReport:
    """Rotate to a new key and re-encrypt the bank in one transaction, audited in it. Commits.

    With a key file: 1. write the file with a fresh active key and the old keys
    (the bank still reads), 2. re-encrypt every row and commit, 3. write the file
    with the new key alone. A crash at any point leaves a keyring that reads the
    bank. With keys from the environment the operator puts the new key first in
    CBT_CONTENT_KEYS (``cbt items new-key`` prints one) and this re-encrypts the
    bank under it; the old keys can then be dropped from the environment.
    """
    keyring = keyring or current_keyring()
    check_content_keys(session, keyring)
    old_keys = tuple(sorted(keyring.keys))
    if keyring.writable:
        rotated = keyring.with_new_active_key()
        write_key_file(rotated)
        use_keyring(rotated)
    else:
        rotated = keyring
    with unit_of_work(session):
        changed = reencrypt_bank(session, keyring, rotated, progress=progress)
        sealed = reencrypt_sealed_values(session)
        audit.record(session, actor=actor, actor_role=actor_role, action="bank.rotate_key", subject="bank",
                     details={"new_key": rotated.active, "old_keys": list(old_keys), "reencrypted": changed,
                              "sealed_values": sealed}, at=now)
    if rotated.writable:
        final = rotated.only_active()
        write_key_file(final)
        use_keyring(final)
    return RotationReport(old_keys, rotated.active, changed)


def encrypt_plaintext(session: Session, keyring: Keyring | None = None, *, actor: str, actor_role: str,
                      now: dt.datetime) -> int:
    """Encrypt versions stored in plain text (a bank from before encryption). Commits (audited when any was)."""
    keyring = keyring or current_keyring()
    with unit_of_work(session):
        changed = reencrypt_bank(session, keyring, keyring) if key_usage(session).get(None) else 0
        if changed:
            audit.record(session, actor=actor, actor_role=actor_role, action="bank.encrypt", subject="bank",
                         details={"key": keyring.active, "encrypted": changed}, at=now)
    return changed
