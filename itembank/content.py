"""Reading and writing an item version's content, encrypted at rest.

Content is the part of an item that must stay secret until it is shown: the
stem, an optional table and figure, the options, the key and the rationale,
and what exchange with other tools needs kept with them (QTI): a shared
stimulus shown with the item, instructions for the candidate, the title, the
language, the choice identifiers, and whether the options may be shuffled.
Every read and write of ``ItemVersion.content`` goes through :func:`pack` and
:func:`unpack`, which encrypt and decrypt it with AES-256-GCM under the keys of
:mod:`itembank.keyring` (outside the database). A stored value reads

    v1:<key id>:<base64 of 12-byte nonce + ciphertext + 16-byte tag>

so the database never holds item text in plain text, and a rotation finds the
rows still under an old key from the prefix alone (:data:`KEY_ID_SQL`).
"""
from __future__ import annotations

import base64
import binascii
import json
import os
import re
from dataclasses import asdict, dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from defusedxml.ElementTree import fromstring as defused_fromstring
from sqlalchemy import String
from sqlalchemy.types import TypeDecorator

from itembank.keyring import Keyring, current_keyring
from persistence.errors import InvalidInput

FORMAT = "v1"
PREFIX_LENGTH = len("v1:01234567:")
FIGURE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/svg+xml")
FIGURE_MAX_BYTES = 512 * 1024
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")  # an XML NCName in ASCII, as QTI identifiers are
LANGUAGE = re.compile(r"^([A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*)?$")
# The associated data binds every ciphertext to this format and its key id.
_AAD = b"cbt item content "


class ContentError(InvalidInput):
    """Item content that cannot be used as given."""


class ContentKeyError(ContentError):
    """Stored content that the keyring cannot decrypt (missing or wrong key, or plain text)."""


@dataclass(frozen=True)
class ItemContent:
    stem: str
    options: tuple[str, ...]
    key: int  # index into options
    rationale: str = ""
    table: dict | None = None  # {"header": [...], "rows": [[...], ...]}
    figure: dict | None = None  # {"media_type": "image/png", "data": base64, "alt": "..."}
    # A passage shared by several items, shown with each: {"identifier", "title", "text"}.
    stimulus: dict | None = None
    instructions: str = ""  # shown to the candidate with the item (QTI's candidate rubric block)
    title: str = ""  # "" when the item's code is its title
    language: str = ""  # BCP 47 tag of the text (xml:lang); "" when not stated
    choice_ids: tuple[str, ...] = ()  # the options' identifiers in QTI; () for choice_A, choice_B, ...
    shuffle: bool = True  # whether a sitting may show the options in another order
    fixed: tuple[int, ...] = ()  # options that keep their place when the others are shuffled

    def __post_init__(self) -> None:
        # JSON and callers give lists; the content is frozen and compared by value.
        object.__setattr__(self, "options", tuple(self.options))
        object.__setattr__(self, "choice_ids", tuple(self.choice_ids))
        object.__setattr__(self, "fixed", tuple(sorted(int(i) for i in self.fixed)))
        if not self.stem.strip():
            raise ContentError("the stem is empty", field="stem")
        if len(self.options) < 2 or any(not o.strip() for o in self.options):
            raise ContentError("an item needs at least two non-empty options", field="options")
        if len(set(self.options)) != len(self.options):
            raise ContentError("two options are the same", field="options")
        if not 0 <= self.key < len(self.options):
            raise ContentError(f"key {self.key} is not an option index", field="key")
        if self.table is not None:
            header, rows = self.table.get("header"), self.table.get("rows")
            if not isinstance(header, list) or not isinstance(rows, list) or any(
                not isinstance(r, list) or len(r) != len(header) for r in rows
            ):
                raise ContentError("a table needs a header and rows of the header's length", field="table")
        if self.figure is not None:
            check_figure(self.figure)
        if self.choice_ids and (len(self.choice_ids) != len(self.options) or len(set(self.choice_ids)) != len(
                self.choice_ids) or not all(isinstance(c, str) and IDENTIFIER.match(c) for c in self.choice_ids)):
            raise ContentError("choice identifiers must be distinct identifiers (letters, digits, _ . -), "
                               "one per option")
        if len(set(self.fixed)) != len(self.fixed) or any(not 0 <= i < len(self.options) for i in self.fixed):
            raise ContentError("fixed options must be distinct option indices")
        if self.stimulus is not None:
            if not isinstance(self.stimulus, dict) or set(self.stimulus) != {"identifier", "title", "text"} or not all(
                    isinstance(v, str) for v in self.stimulus.values()):
                raise ContentError("a stimulus needs exactly identifier, title and text")
            if not IDENTIFIER.match(self.stimulus["identifier"]) or not self.stimulus["text"].strip():
                raise ContentError("a stimulus needs an identifier (letters, digits, _ . -) and text")
        if len(self.language) > 35 or not LANGUAGE.match(self.language):
            raise ContentError(f"{self.language!r} is not a language tag")
        if not isinstance(self.shuffle, bool):
            raise ContentError("shuffle is true or false")

    @property
    def fixed_positions(self) -> tuple[int, ...]:
        """The options a sitting must show in their own place: all of them when shuffling is off."""
        return tuple(range(len(self.options))) if not self.shuffle else self.fixed

    @property
    def figure_uri(self) -> str | None:
        """The figure as a data: URI for an <img> (the page's CSP allows data: images)."""
        if self.figure is None:
            return None
        return f"data:{self.figure['media_type']};base64,{self.figure['data']}"


def check_figure(figure: dict) -> None:
    if not isinstance(figure, dict) or set(figure) != {"media_type", "data", "alt"}:
        raise ContentError("a figure needs exactly media_type, data and alt", field="figure")
    if figure["media_type"] not in FIGURE_TYPES:
        raise ContentError(f"a figure must be one of {', '.join(FIGURE_TYPES)}, not {figure['media_type']!r}",
                           field="figure")
    if not isinstance(figure["alt"], str) or not figure["alt"].strip():
        raise ContentError("a figure needs a text alternative (alt) for candidates who cannot see it",
                           field="figure_alt")
    try:
        raw = base64.b64decode(figure["data"], validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise ContentError("the figure's data is not base64", field="figure") from None
    if len(raw) > FIGURE_MAX_BYTES:
        raise ContentError(f"the figure is {len(raw) // 1024} KiB; at most {FIGURE_MAX_BYTES // 1024} KiB",
                           field="figure")
    check_figure_bytes(raw, figure["media_type"])


# The first bytes each raster type starts with: a figure is what its bytes are, not its name.
MAGIC = {"image/png": (b"\x89PNG\r\n\x1a\n",), "image/jpeg": (b"\xff\xd8\xff",), "image/gif": (b"GIF87a", b"GIF89a")}
# SVG elements that run code or pull in other documents.
SVG_ACTIVE = {"script", "foreignObject", "iframe", "embed", "object", "handler", "listener"}


def check_figure_bytes(raw: bytes, media_type: str) -> None:
    """Refuse a figure whose bytes are not of ``media_type``, or an SVG that could run code."""
    if media_type != "image/svg+xml":
        if not raw.startswith(MAGIC[media_type]):
            raise ContentError(f"the figure is named {media_type} but its content is not a {media_type} image")
        return
    try:
        root = defused_fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except Exception:  # defusedxml's refusals and expat's parse errors alike
        raise ContentError("the SVG figure is not well-formed XML without a DTD") from None
    if root.tag.rsplit("}", 1)[-1] != "svg":
        raise ContentError("the SVG figure's root element is not <svg>")
    for element in root.iter():
        tag = element.tag.rsplit("}", 1)[-1] if isinstance(element.tag, str) else ""
        if tag in SVG_ACTIVE:
            raise ContentError(f"the SVG figure holds a <{tag}> element, which could run code; remove it")
        for name, value in element.attrib.items():
            local = name.rsplit("}", 1)[-1].lower()
            if local.startswith("on"):
                raise ContentError(f"the SVG figure has an event handler ({local}); remove it")
            if local == "href" and not value.strip().startswith(("#", "data:image/")):
                raise ContentError("the SVG figure links to another document; only images inside it are allowed")


def to_dict(content: ItemContent) -> dict:
    data = asdict(content)
    for name in ("options", "choice_ids", "fixed"):
        data[name] = list(data[name])
    return data


def from_dict(data: dict) -> ItemContent:
    try:
        return ItemContent(
            stem=data["stem"],
            options=tuple(data["options"]),
            key=int(data["key"]),
            rationale=data.get("rationale", "") or "",
            table=data.get("table"),
            figure=data.get("figure"),
            stimulus=data.get("stimulus"),
            instructions=data.get("instructions", "") or "",
            title=data.get("title", "") or "",
            language=data.get("language", "") or "",
            choice_ids=tuple(data.get("choice_ids") or ()),
            shuffle=data.get("shuffle", True),
            fixed=tuple(data.get("fixed") or ()),
        )
    except ContentError:
        raise
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise ContentError(f"malformed item content: {error!r}") from None


_ciphers: dict[tuple[str, bytes], AESGCM] = {}


def _cipher(kid: str, key: bytes) -> AESGCM:
    cipher = _ciphers.get((kid, key))
    if cipher is None:
        cipher = _ciphers[(kid, key)] = AESGCM(key)
    return cipher


def pack(content: ItemContent, keyring: Keyring | None = None) -> str:
    """The stored form of ``content``: JSON, encrypted under the active key."""
    keyring = keyring or current_keyring()
    plain = json.dumps(to_dict(content), ensure_ascii=False, sort_keys=True).encode()
    kid = keyring.active
    nonce = os.urandom(12)
    sealed = _cipher(kid, keyring.keys[kid]).encrypt(nonce, plain, _AAD + kid.encode())
    return f"{FORMAT}:{kid}:{base64.b64encode(nonce + sealed).decode()}"


def key_id_of(stored: str) -> str | None:
    """The key id a stored value was encrypted with; None if it is not in this format."""
    if len(stored) > PREFIX_LENGTH and stored.startswith(FORMAT + ":") and stored[PREFIX_LENGTH - 1] == ":":
        return stored[3:PREFIX_LENGTH - 1]
    return None


def unpack(stored: str, keyring: Keyring | None = None) -> ItemContent:
    """Decrypt and parse a stored value; ContentKeyError if the keyring cannot."""
    keyring = keyring or current_keyring()
    kid = key_id_of(stored)
    if kid is None:
        raise ContentKeyError("stored item content is not encrypted (run `cbt items encrypt`)")
    key = keyring.keys.get(kid)
    if key is None:
        raise ContentKeyError(f"item content is encrypted with key {kid}, which {keyring.source} does not hold")
    try:
        raw = base64.b64decode(stored[PREFIX_LENGTH:])
        plain = _cipher(kid, key).decrypt(raw[:12], raw[12:], _AAD + kid.encode())
    except InvalidTag:
        raise ContentKeyError(f"key {kid} of {keyring.source} does not decrypt the item content "
                              "(a wrong key, or the stored value was altered)") from None
    except (binascii.Error, ValueError):
        raise ContentKeyError("stored item content is damaged") from None
    return from_dict(json.loads(plain))


def reencrypt(stored: str, old: Keyring, new: Keyring) -> str:
    """The same content under ``new``'s active key (plain-text legacy JSON is encrypted)."""
    if key_id_of(stored) is None:
        return pack(from_dict(json.loads(stored)), new)
    if key_id_of(stored) == new.active:
        return stored
    return pack(unpack(stored, old), new)


# Other secrets of the bank kept beside the items (a scoring amendment's corrected key) are
# encrypted under the same keys, bound to their own associated data.
_SEALED_AAD = b"cbt sealed value "


def seal_value(value: int, keyring: Keyring | None = None) -> str:
    """A whole number (an answer key) encrypted under the active content key, stored like content."""
    keyring = keyring or current_keyring()
    kid = keyring.active
    nonce = os.urandom(12)
    sealed = _cipher(kid, keyring.keys[kid]).encrypt(nonce, str(int(value)).encode(), _SEALED_AAD + kid.encode())
    return f"{FORMAT}:{kid}:{base64.b64encode(nonce + sealed).decode()}"


def open_value(stored: str, keyring: Keyring | None = None) -> int:
    keyring = keyring or current_keyring()
    kid = key_id_of(stored)
    key = keyring.keys.get(kid) if kid else None
    if key is None:
        raise ContentKeyError(f"a sealed value is encrypted with key {kid}, which {keyring.source} does not hold")
    try:
        raw = base64.b64decode(stored[PREFIX_LENGTH:])
        return int(_cipher(kid, key).decrypt(raw[:12], raw[12:], _SEALED_AAD + kid.encode()))
    except (InvalidTag, binascii.Error, ValueError):
        raise ContentKeyError(f"key {kid} of {keyring.source} does not decrypt a sealed value") from None


class SealedInteger(TypeDecorator[int]):
    """A whole number encrypted at rest under the content keys (re-encrypted by a key rotation:
    :func:`itembank.encryption.rotate_keys` walks every column of this type)."""

    impl = String(128)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else seal_value(value)

    def process_result_value(self, value, dialect):
        return None if value is None else open_value(value)
