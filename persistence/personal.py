"""Personal data encrypted at rest: candidates' names, dates of birth and e-mail addresses.

A column of type :class:`PersonalText` or :class:`PersonalDate` holds, in the database,

    p1:<key id>:<base64 of 12-byte nonce + AES-256-GCM ciphertext + 16-byte tag>

and the ORM hands back the plain value: the code reads ``candidate.name`` as before, and a
copy of the database (a backup, a dump, a stolen disk) shows no name, date of birth or
address. Encryption is randomised, so a column cannot be searched in SQL; a look-up by
e-mail goes through a keyed hash (:func:`lookup_hash`, HMAC-SHA256) kept beside it, and
searches by name narrow by other columns first and compare the decrypted names in Python.

The key lives outside the database, like the audit key: ``CBT_PERSONAL_DATA_KEY`` (64 hex
digits) or the file ``personal-data.key`` in ``CBT_KEY_DIR`` (default ``var/keys``), created
on first use. Every web server and the CLI need the same key; without it the data cannot be
read. The encryption key and the look-up key are derived from it (HMAC-SHA256 with distinct
labels), and the key id (the first 8 hex digits of a hash of the key) in front of each value
tells a wrong key from damaged data.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Text
from sqlalchemy.types import TypeDecorator

from persistence.files import secret_key_file
from persistence.settings import key_settings

FORMAT = "p1"
KEY_FILE = "personal-data.key"
_AAD = b"cbt personal data "


class PersonalDataKeyError(RuntimeError):
    """The personal-data key is missing, malformed, or does not decrypt what is stored."""


@dataclass(frozen=True)
class PersonalKey:
    kid: str
    cipher: AESGCM
    lookup: bytes


def _derive(master: bytes, label: str) -> bytes:
    return hmac.new(master, label.encode(), hashlib.sha256).digest()


def key_from_hex(text: str, source: str) -> PersonalKey:
    try:
        master = bytes.fromhex(text.strip())
    except ValueError:
        raise PersonalDataKeyError(f"{source}: the personal-data key must be 64 hex digits") from None
    if len(master) != 32:
        raise PersonalDataKeyError(f"{source}: the personal-data key must be 64 hex digits")
    return PersonalKey(hashlib.sha256(b"kid" + master).hexdigest()[:8], AESGCM(_derive(master, "encrypt")),
                       _derive(master, "look up"))


_lock = threading.Lock()
_keys: dict[str, PersonalKey] = {}


def personal_key() -> PersonalKey:
    """The key the settings name (``CBT_PERSONAL_DATA_KEY``, or the key file, made on first use)."""
    configured, key_dir = key_settings()
    if configured:
        if configured not in _keys:
            _keys[configured] = key_from_hex(configured, "CBT_PERSONAL_DATA_KEY")
        return _keys[configured]
    cached = _keys.get(key_dir)
    if cached is not None:
        return cached
    path = Path(key_dir) / KEY_FILE
    with _lock:
        key = key_from_hex(secret_key_file(path).read_text(), str(path))
        _keys[key_dir] = key
        return key


def seal(plain: str, key: PersonalKey | None = None) -> str:
    key = key or personal_key()
    nonce = os.urandom(12)
    sealed = key.cipher.encrypt(nonce, plain.encode(), _AAD + key.kid.encode())
    return f"{FORMAT}:{key.kid}:{base64.b64encode(nonce + sealed).decode()}"


def is_sealed(stored: str) -> bool:
    return stored.startswith(FORMAT + ":") and len(stored) > 12 and stored[11] == ":"


def open_sealed(stored: str, key: PersonalKey | None = None) -> str:
    key = key or personal_key()
    if not is_sealed(stored):
        raise PersonalDataKeyError("a personal-data value is stored in plain text: run the migrations (0930)")
    kid = stored[3:11]
    if kid != key.kid:
        raise PersonalDataKeyError(f"personal data is encrypted with key {kid}, not with the configured key "
                                   f"{key.kid}: set CBT_PERSONAL_DATA_KEY or CBT_KEY_DIR to the database's key")
    try:
        raw = base64.b64decode(stored[12:])
        return key.cipher.decrypt(raw[:12], raw[12:], _AAD + kid.encode()).decode()
    except (InvalidTag, binascii.Error, ValueError):
        raise PersonalDataKeyError("a stored personal-data value is damaged") from None


def lookup_hash(value: str, key: PersonalKey | None = None) -> str:
    """The keyed hash of a value to look it up by (an e-mail address, normalised by the caller)."""
    key = key or personal_key()
    return hmac.new(key.lookup, value.encode(), hashlib.sha256).hexdigest()


class PersonalText(TypeDecorator[str]):
    """A text column encrypted at rest (see the module docstring)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else seal(str(value))

    def process_result_value(self, value, dialect):
        return None if value is None else open_sealed(value)


class PersonalDate(TypeDecorator[dt.date]):
    """A date column encrypted at rest: the ISO date, sealed."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
            raise TypeError(f"a date is needed, not {value!r}")
        return seal(value.isoformat())

    def process_result_value(self, value, dialect):
        return None if value is None else dt.date.fromisoformat(open_sealed(value))
