"""Reading and writing an item version's content, encrypted at rest.

Content is the part of an item that must stay secret until it is shown: the
stem, an optional table and figure, the options, the key and the rationale,
and what exchange with other tools needs kept with them (QTI): a shared
stimulus shown with the item, instructions for the candidate, the title, the
language, the choice identifiers, and whether the options may be shuffled.
An item may carry its text in other languages too (:class:`LanguageVersion`:
stem, options, rationale, table, the figure's text alternative, the stimulus,
instructions and title); the key, the choice identifiers, the figure's image and
the IRT parameters are the item's, whatever the language. Content written before
there were language versions reads as one language, its own.
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
import dataclasses
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


def _check_texts(stem: str, options: tuple[str, ...]) -> None:
    if not isinstance(stem, str) or not stem.strip():
        raise ContentError("the stem is empty", field="stem")
    if len(options) < 2 or any(not isinstance(o, str) or not o.strip() for o in options):
        raise ContentError("an item needs at least two non-empty options", field="options")
    if len(set(options)) != len(options):
        raise ContentError("two options are the same", field="options")


def _check_table(table: dict | None) -> None:
    if table is None:
        return
    header, rows = table.get("header"), table.get("rows")
    if not isinstance(header, list) or not isinstance(rows, list) or any(
        not isinstance(r, list) or len(r) != len(header) for r in rows
    ):
        raise ContentError("a table needs a header and rows of the header's length", field="table")


def _check_language(language: object) -> None:
    if not isinstance(language, str) or len(language) > 35 or not LANGUAGE.match(language):
        raise ContentError("{language!r} is not a language tag", field="language", language=language)


def same_language(tag: str, wanted: str) -> bool:
    """Whether the text tagged ``tag`` is in ``wanted`` (BCP 47 tags compare without case;
    "ja" wants "ja-JP" as well)."""
    tag, wanted = tag.casefold(), wanted.casefold()
    return bool(tag) and bool(wanted) and (tag == wanted or tag.split("-")[0] == wanted.split("-")[0])


@dataclass(frozen=True)
class LanguageVersion:
    """An item's text in another language than its own: what a candidate reads.

    ``table`` and ``stimulus`` are None where the item's own serve every language (a truth
    table, a passage not translated); ``figure_alt`` is the figure's text alternative in this
    language (needed when the item has a figure, "" when it has none).
    """

    language: str
    stem: str
    options: tuple[str, ...]
    rationale: str = ""
    table: dict | None = None
    figure_alt: str = ""
    stimulus: dict | None = None  # {"title", "text"}: the shared passage in this language
    instructions: str = ""
    title: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", tuple(self.options))
        _check_language(self.language)
        if not self.language:
            raise ContentError("a language version needs its language", field="language")
        _check_texts(self.stem, self.options)
        _check_table(self.table)
        if self.stimulus is not None and (not isinstance(self.stimulus, dict) or set(self.stimulus) != {
                "title", "text"} or not all(isinstance(v, str) for v in self.stimulus.values())
                                          or not self.stimulus["text"].strip()):
            raise ContentError("a stimulus in another language needs exactly title and text")
        for name in ("rationale", "figure_alt", "instructions", "title"):
            if not isinstance(getattr(self, name), str):
                raise ContentError("{name} is text", field=name, name=name)


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
    # The text in other languages than ``language`` (which they need stated), one version each.
    translations: tuple[LanguageVersion, ...] = ()

    def __post_init__(self) -> None:
        # JSON and callers give lists; the content is frozen and compared by value.
        object.__setattr__(self, "options", tuple(self.options))
        object.__setattr__(self, "choice_ids", tuple(self.choice_ids))
        object.__setattr__(self, "fixed", tuple(sorted(int(i) for i in self.fixed)))
        object.__setattr__(self, "translations", tuple(
            t if isinstance(t, LanguageVersion) else _language_version(t) for t in self.translations))
        _check_texts(self.stem, self.options)
        if not 0 <= self.key < len(self.options):
            raise ContentError("key {key} is not an option index", field="key", key=self.key)
        _check_table(self.table)
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
        _check_language(self.language)
        if not isinstance(self.shuffle, bool):
            raise ContentError("shuffle is true or false")
        self._check_translations()

    def _check_translations(self) -> None:
        if self.translations and not self.language:
            raise ContentError("state the language of the item's own text before adding another language",
                               field="language")
        # A version's table or passage that is the item's own is stored as None ("the item's"), so
        # that content compares equal however it was given (an import gives every version in full).
        object.__setattr__(self, "translations", tuple(self._normalised(v) for v in self.translations))
        seen = [self.language]
        for version in self.translations:
            if any(version.language.casefold() == other.casefold() for other in seen):
                raise ContentError("the item has its text in {language} twice", field="language",
                                   language=version.language)
            seen.append(version.language)
            if len(version.options) != len(self.options):
                raise ContentError("the {language} version has {found} options; the item has {count}",
                                   field="options", language=version.language, found=len(version.options),
                                   count=len(self.options))
            if self.figure is not None and not version.figure_alt.strip():
                raise ContentError("the {language} version needs the figure's text alternative",
                                   field="figure_alt", language=version.language)
            if self.figure is None and version.figure_alt:
                raise ContentError("the {language} version describes a figure the item does not have",
                                   field="figure_alt", language=version.language)
            if version.stimulus is not None and self.stimulus is None:
                raise ContentError("the {language} version has a stimulus the item does not have",
                                   language=version.language)

    def _normalised(self, version: LanguageVersion) -> LanguageVersion:
        same = {}
        if version.table is not None and version.table == self.table:
            same["table"] = None
        if version.stimulus is not None and self.stimulus is not None and version.stimulus == {
                "title": self.stimulus["title"], "text": self.stimulus["text"]}:
            same["stimulus"] = None
        return dataclasses.replace(version, **same) if same else version

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages the item's text is in, its own first ("" when its own is not stated)."""
        return (self.language, *(t.language for t in self.translations))

    def translation(self, language: str) -> LanguageVersion | None:
        """The version in ``language`` (an exact tag, without case) among the other languages."""
        return next((t for t in self.translations if t.language.casefold() == language.casefold()), None)

    def in_language(self, language: str) -> ItemContent | None:
        """The item as one language shows it (no other versions), or None if it lacks ``language``.

        The key, choice identifiers, shuffling and the figure's image are the item's; the text
        is the version's, the table and stimulus the item's own where the version has none.
        Views are kept with the content (which never changes): a sitting asks for them on every
        read of its page."""
        views = self.__dict__.setdefault("_views", {})
        wanted = language.casefold()
        if wanted not in views:
            views[wanted] = self._in_language(language)
        return views[wanted]

    def _in_language(self, language: str) -> ItemContent | None:
        if language.casefold() == self.language.casefold():
            return self._view(translations=())
        version = self.translation(language)
        if version is None:
            return None
        stimulus = self.stimulus
        if stimulus is not None and version.stimulus is not None:
            stimulus = {**stimulus, **version.stimulus}
        return self._view(
            stem=version.stem, options=version.options, rationale=version.rationale,
            table=version.table if version.table is not None else self.table,
            figure={**self.figure, "alt": version.figure_alt} if self.figure else None,
            stimulus=stimulus, instructions=version.instructions, title=version.title,
            language=version.language, translations=())

    def shown_in(self, *languages: str | None) -> ItemContent:
        """The item in the first of ``languages`` it has ("ja" takes "ja-JP" too), else in its own."""
        views = self.__dict__.setdefault("_views", {})
        if languages not in views:
            views[languages] = self._shown_in(languages)
        return views[languages]

    def _shown_in(self, languages: tuple[str | None, ...]) -> ItemContent:
        for wanted in languages:
            if not wanted:
                continue
            for tag in self.languages:
                if tag and same_language(tag, wanted):
                    return self.in_language(tag)
        return self.in_language(self.language)

    def with_translation(self, version: LanguageVersion) -> ItemContent:
        """This content with ``version`` added, or put in place of the one in its language."""
        wanted = version.language.casefold()
        if self.translation(version.language) is None:
            return dataclasses.replace(self, translations=(*self.translations, version))
        return dataclasses.replace(self, translations=tuple(
            version if t.language.casefold() == wanted else t for t in self.translations))

    def without_language(self, language: str) -> ItemContent:
        """This content without its version in ``language`` (never its own language)."""
        if language.casefold() == self.language.casefold():
            raise ContentError("the item's own language cannot be removed; make another language its own first",
                               field="language")
        if self.translation(language) is None:
            raise ContentError("the item has no text in {language}", field="language", language=language)
        return dataclasses.replace(self, translations=tuple(
            t for t in self.translations if t.language.casefold() != language.casefold()))

    def _view(self, **changes) -> ItemContent:
        # A view of content already checked: built without checking again (figures are costly
        # to check, and a sitting's start builds a hundred views).
        view = object.__new__(ItemContent)
        for field in dataclasses.fields(self):
            object.__setattr__(view, field.name, changes.get(field.name, getattr(self, field.name)))
        return view

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
        raise ContentError("a figure must be one of {types}, not {media_type!r}", field="figure",
                           types=", ".join(FIGURE_TYPES), media_type=figure["media_type"])
    if not isinstance(figure["alt"], str) or not figure["alt"].strip():
        raise ContentError("a figure needs a text alternative (alt) for candidates who cannot see it",
                           field="figure_alt")
    try:
        raw = base64.b64decode(figure["data"], validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise ContentError("the figure's data is not base64", field="figure") from None
    if len(raw) > FIGURE_MAX_BYTES:
        raise ContentError("the figure is {size} KiB; at most {limit} KiB", field="figure",
                           size=len(raw) // 1024, limit=FIGURE_MAX_BYTES // 1024)
    check_figure_bytes(raw, figure["media_type"])


# The first bytes each raster type starts with: a figure is what its bytes are, not its name.
MAGIC = {"image/png": (b"\x89PNG\r\n\x1a\n",), "image/jpeg": (b"\xff\xd8\xff",), "image/gif": (b"GIF87a", b"GIF89a")}
# SVG elements that run code or pull in other documents.
SVG_ACTIVE = {"script", "foreignObject", "iframe", "embed", "object", "handler", "listener"}


def check_figure_bytes(raw: bytes, media_type: str) -> None:
    """Refuse a figure whose bytes are not of ``media_type``, or an SVG that could run code."""
    if media_type != "image/svg+xml":
        if not raw.startswith(MAGIC[media_type]):
            raise ContentError("the figure is named {media_type} but its content is not a {media_type} image",
                               media_type=media_type)
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
            raise ContentError("the SVG figure holds a <{tag}> element, which could run code; remove it", tag=tag)
        for name, value in element.attrib.items():
            local = name.rsplit("}", 1)[-1].lower()
            if local.startswith("on"):
                raise ContentError("the SVG figure has an event handler ({name}); remove it", name=local)
            if local == "href" and not value.strip().startswith(("#", "data:image/")):
                raise ContentError("the SVG figure links to another document; only images inside it are allowed")


def to_dict(content: ItemContent) -> dict:
    data = asdict(content)
    for name in ("options", "choice_ids", "fixed"):
        data[name] = list(data[name])
    if content.translations:
        data["translations"] = [translation_dict(t) for t in content.translations]
    else:
        del data["translations"]  # single-language content is stored as it was before
    return data


def translation_dict(version: LanguageVersion) -> dict:
    data = asdict(version)
    data["options"] = list(data["options"])
    return data


def _language_version(data: object) -> LanguageVersion:
    if not isinstance(data, dict):
        raise ContentError("a language version is an object with language, stem and options")
    try:
        return LanguageVersion(
            language=data["language"], stem=data["stem"], options=tuple(data["options"]),
            rationale=data.get("rationale", "") or "", table=data.get("table"),
            figure_alt=data.get("figure_alt", "") or "", stimulus=data.get("stimulus"),
            instructions=data.get("instructions", "") or "", title=data.get("title", "") or "")
    except KeyError as error:
        raise ContentError("a language version needs {name}", name=error.args[0]) from None


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
            translations=tuple(data.get("translations") or ()),
        )
    except ContentError:
        raise
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise ContentError("malformed item content: {error}", error=repr(error)) from None


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
        raise ContentKeyError("item content is encrypted with key {kid}, which {source} does not hold",
                              kid=kid, source=keyring.source)
    try:
        raw = base64.b64decode(stored[PREFIX_LENGTH:])
        plain = _cipher(kid, key).decrypt(raw[:12], raw[12:], _AAD + kid.encode())
    except InvalidTag:
        raise ContentKeyError("key {kid} of {source} does not decrypt the item content "
                              "(a wrong key, or the stored value was altered)", kid=kid, source=keyring.source) from None
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
