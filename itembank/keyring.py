"""The keys that encrypt item content at rest, kept outside the database.

Where the keys come from, first match wins:

* ``CBT_CONTENT_KEYS``: ``kid:base64key[,kid:base64key...]`` in the environment;
  the first key is the active one (new content is encrypted with it), the others
  can still decrypt (a rotation in progress). For production.
* ``CBT_CONTENT_KEY_FILE``: the path of a key file (below); it must exist.
* otherwise the development key file ``var/content-keys.json`` (``CBT_VAR_DIR``
  moves ``var/``), created with one fresh key on first use.

A key file is JSON ``{"active": kid, "keys": {kid: base64key, ...}}``, mode 0600.
Keys are 256-bit AES-GCM keys; a key id is 8 hex digits, stored in front of each
ciphertext so that a rotation can tell which rows still need re-encryption.
"""
from __future__ import annotations

import base64
import json
import os
import re
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path

from persistence.settings import load_settings

KEY_ID = re.compile(r"^[0-9a-f]{8}$")
KEY_BYTES = 32


class KeyringError(RuntimeError):
    """The content keys are missing, malformed or do not fit the bank."""


@dataclass(frozen=True)
class Keyring:
    """The active key id and every key that may decrypt (``keys``: kid -> 32 bytes)."""

    active: str
    keys: dict[str, bytes]
    source: str  # where the keys came from, for messages
    path: Path | None = field(default=None)  # the key file, when the keys came from one

    def __post_init__(self) -> None:
        if self.active not in self.keys:
            raise KeyringError(f"{self.source}: the active key {self.active} is not among its keys")
        for kid, key in self.keys.items():
            if not KEY_ID.match(kid):
                raise KeyringError(f"{self.source}: key id {kid!r} must be 8 hex digits")
            if len(key) != KEY_BYTES:
                raise KeyringError(f"{self.source}: key {kid} must be {KEY_BYTES} bytes (256 bits), "
                                   f"found {len(key)}")

    @property
    def writable(self) -> bool:
        return self.path is not None

    def with_new_active_key(self) -> Keyring:
        """This keyring plus a fresh key that becomes the active one."""
        kid = new_key_id(set(self.keys))
        return Keyring(kid, {kid: secrets.token_bytes(KEY_BYTES), **self.keys}, self.source, self.path)

    def only_active(self) -> Keyring:
        return Keyring(self.active, {self.active: self.keys[self.active]}, self.source, self.path)


def new_key_id(taken: set[str] = frozenset()) -> str:
    while True:
        kid = secrets.token_hex(4)
        if kid not in taken:
            return kid


def _b64(text: str, where: str) -> bytes:
    try:
        return base64.b64decode(text.strip() + "=" * (-len(text.strip()) % 4), altchars=b"-_", validate=False)
    except (ValueError, TypeError):
        raise KeyringError(f"{where}: a key is not valid base64") from None


def parse_environment(value: str) -> Keyring:
    keys: dict[str, bytes] = {}
    active = None
    for part in value.split(","):
        kid, sep, encoded = part.strip().partition(":")
        if not sep:
            raise KeyringError("CBT_CONTENT_KEYS: each key must be written kid:base64key")
        keys[kid] = _b64(encoded.replace("+", "-").replace("/", "_"), "CBT_CONTENT_KEYS")
        active = active or kid
    if active is None:
        raise KeyringError("CBT_CONTENT_KEYS is empty")
    return Keyring(active, keys, "CBT_CONTENT_KEYS")


def read_key_file(path: Path) -> Keyring:
    source = f"key file {path}"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KeyringError(f"{source} does not exist") from None
    except (OSError, ValueError) as error:
        raise KeyringError(f"{source} cannot be read: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), dict) or not isinstance(data.get("active"), str):
        raise KeyringError(f'{source} must hold {{"active": kid, "keys": {{kid: base64key}}}}')
    keys = {kid: _b64(str(encoded).replace("+", "-").replace("/", "_"), source) for kid, encoded in data["keys"].items()}
    return Keyring(data["active"], keys, source, path)


def write_key_file(keyring: Keyring, path: Path | None = None) -> None:
    """Write the key file atomically (a new file renamed over the old), mode 0600."""
    path = path or keyring.path
    if path is None:
        raise KeyringError(f"{keyring.source}: keys from the environment cannot be written back")
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps({
        "active": keyring.active,
        "keys": {kid: base64.urlsafe_b64encode(key).decode() for kid, key in keyring.keys.items()},
    }, indent=2)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(body + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def load_keyring() -> Keyring:
    """The keyring the settings name (see the module docstring)."""
    settings = load_settings()
    if settings.content_keys:
        return parse_environment(settings.content_keys)
    if settings.content_key_file:
        return read_key_file(settings.content_key_file)
    path = settings.development_key_file
    if not path.exists():
        kid = new_key_id()
        try:
            write_key_file(Keyring(kid, {kid: secrets.token_bytes(KEY_BYTES)}, f"key file {path}", path))
        except FileExistsError:
            pass  # another process made it first
    return read_key_file(path)


_lock = threading.Lock()
_current: Keyring | None = None


def current_keyring() -> Keyring:
    """The process's keyring, loaded once."""
    global _current
    if _current is None:
        with _lock:
            if _current is None:
                _current = load_keyring()
    return _current


def use_keyring(keyring: Keyring | None) -> None:
    """Replace the process's keyring (after a rotation; None reloads on next use)."""
    global _current
    with _lock:
        _current = keyring


# ---- sealing bytes other than item content ----------------------------------------------
#
# What is derived from the content (a sitting's prepared questions) is as secret as the
# content: it is sealed under the same keys. ``purpose`` is bound into the seal, so a
# value sealed for one use cannot be passed off as another's.

_aead: dict[bytes, object] = {}


def _aes(key: bytes):
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    cipher = _aead.get(key)
    if cipher is None:
        cipher = _aead[key] = AESGCM(key)
    return cipher


def seal(plain: bytes, purpose: bytes, keyring: Keyring | None = None) -> bytes:
    """``kid (8 ASCII) + nonce (12) + AES-GCM(plain)`` under the active key."""
    keyring = keyring or current_keyring()
    kid = keyring.active.encode()
    nonce = secrets.token_bytes(12)
    return kid + nonce + _aes(keyring.keys[keyring.active]).encrypt(nonce, plain, purpose + kid)


def unseal(sealed: bytes, purpose: bytes, keyring: Keyring | None = None) -> bytes | None:
    """The plain bytes of :func:`seal`'s output; None if no key of ``keyring`` opens it (a
    rotated-away key, an altered value): the caller derives the value afresh."""
    from cryptography.exceptions import InvalidTag

    keyring = keyring or current_keyring()
    kid = sealed[:8].decode("ascii", "replace")
    key = keyring.keys.get(kid)
    if key is None or len(sealed) < 8 + 12 + 16:
        return None
    try:
        return _aes(key).decrypt(sealed[8:20], sealed[20:], purpose + sealed[:8])
    except InvalidTag:
        return None
