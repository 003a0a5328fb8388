"""Signed score certificates: a code (and QR image) anyone can verify offline.

A certificate is a compact binary statement of a result, signed with Ed25519:

    version  key id  number  date  program  total  n  field scores...  passed  name check
    B        H       I       H     H        H      B  H * n            B       4s

(big-endian; the date counts days from 2000-01-01; ``program`` and ``name check``
are the first bytes of SHA-256 of the program code and of the holder's normalised
name). Statement and 64-byte signature are written in base32, in groups of five.
Changing any character breaks the signature. The verifier needs only the public
keys: retired keys are kept, so old certificates stay verifiable after a rotation.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import struct
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from persistence import audit
from persistence.settings import load_settings
from persistence.unit_of_work import unit_of_work
from scoring.models import Certificate, CertificateKey, ScoreResult

VERSION = 1
EPOCH = dt.date(2000, 1, 1)
_HEAD = struct.Struct(">BHIHHHB")
_TAIL = struct.Struct(">B4s")
SIGNATURE_BYTES = 64


class CertificateError(ValueError):
    """A code that is not a well-formed certificate, or a key that is missing."""


@dataclass(frozen=True)
class Statement:
    key_id: int
    number: int
    sat_on: dt.date
    program_digest: bytes
    total: int
    field_scores: tuple[int, ...]
    passed: bool
    name_check: bytes

    def encode(self) -> bytes:
        head = _HEAD.pack(VERSION, self.key_id, self.number, (self.sat_on - EPOCH).days,
                          int.from_bytes(self.program_digest, "big"), self.total, len(self.field_scores))
        scores = struct.pack(f">{len(self.field_scores)}H", *self.field_scores)
        return head + scores + _TAIL.pack(int(self.passed), self.name_check)

    @classmethod
    def decode(cls, data: bytes) -> "Statement":
        if len(data) < _HEAD.size + _TAIL.size:
            raise CertificateError("the code is too short to be a certificate")
        version, key_id, number, days, program, total, n = _HEAD.unpack_from(data)
        if version != VERSION:
            raise CertificateError(f"unknown certificate version {version}")
        if len(data) != _HEAD.size + 2 * n + _TAIL.size:
            raise CertificateError("the code's length does not match its contents")
        scores = struct.unpack_from(f">{n}H", data, _HEAD.size)
        passed, name_check = _TAIL.unpack_from(data, _HEAD.size + 2 * n)
        return cls(key_id, number, EPOCH + dt.timedelta(days=days), program.to_bytes(2, "big"), total,
                   tuple(scores), bool(passed), name_check)


def short_digest(text: str, size: int) -> bytes:
    return hashlib.sha256(text.encode()).digest()[:size]


def normalise_name(name: str) -> str:
    """Case, width and spacing do not matter when a verifier types the holder's name."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def format_code(raw: bytes) -> str:
    text = base64.b32encode(raw).decode().rstrip("=")
    return "-".join(text[i : i + 5] for i in range(0, len(text), 5))


def parse_code(code: str) -> bytes:
    # Tolerate what people do when they copy a code: spaces, lower case, 0/1/8 for O/I/B.
    text = "".join(ch for ch in code.upper() if ch.isalnum()).translate(str.maketrans("018", "OIB"))
    if not text:
        raise CertificateError("no code given")
    try:
        raw = base64.b32decode(text + "=" * (-len(text) % 8))
    except ValueError:
        raise CertificateError("the code has characters that cannot be part of a certificate") from None
    # One code per certificate: the spare bits of the last character must be zero, as
    # format_code writes them, so no second spelling of a genuine code is accepted.
    if base64.b32encode(raw).decode().rstrip("=") != text:
        raise CertificateError("this is not a certificate code as issued (its last character is wrong)")
    return raw


# ---- keys -------------------------------------------------------------------

def key_directory() -> Path:
    return load_settings().key_dir


def _private_key_path(directory: Path, key_id: int) -> Path:
    return directory / f"certificate-signing-{key_id}.pem"


def active_key(session: Session) -> CertificateKey | None:
    return session.scalar(select(CertificateKey).where(CertificateKey.retired_at.is_(None))
                          .order_by(CertificateKey.id.desc()))


def create_signing_key(session: Session, directory: Path, now: dt.datetime) -> CertificateKey:
    """A new signing key: its private half written to ``directory`` (mode 600), its public half stored.

    The previous active key is retired: it signs no more, but still verifies.
    """
    private = Ed25519PrivateKey.generate()
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    for key in session.scalars(select(CertificateKey).where(CertificateKey.retired_at.is_(None))):
        key.retired_at = now
    key = CertificateKey(public_key=public_pem, created_at=now)
    session.add(key)
    session.flush()
    directory.mkdir(parents=True, exist_ok=True)
    path = _private_key_path(directory, key.id)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return key


def rotate_signing_key(session: Session, directory: Path, *, actor: str, actor_role: str, now: dt.datetime,
                       reason: str = "") -> CertificateKey:
    """Start signing with a new key (earlier certificates stay verifiable). Commits (audited)."""
    with unit_of_work(session):
        key = create_signing_key(session, directory, now)
        audit.record(session, actor=actor, actor_role=actor_role, action="certificates.rotate_key",
                     subject=f"certificate_key:{key.id}", reason=reason, at=now)
    return key


def load_private_key(directory: Path, key: CertificateKey) -> Ed25519PrivateKey:
    path = _private_key_path(directory, key.id)
    try:
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise CertificateError(f"the private key of certificate key {key.id} is not at {path}") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise CertificateError(f"{path} is not an Ed25519 key")
    expected = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    if expected != key.public_key:
        raise CertificateError(f"{path} does not match certificate key {key.id} in the database")
    return private


def public_keys(session: Session) -> dict[int, str]:
    """Every public key ever used, by id: what an offline verifier needs."""
    return {key.id: key.public_key for key in session.scalars(select(CertificateKey).order_by(CertificateKey.id))}


# ---- issuing and verifying -----------------------------------------------------

def issue(session: Session, result: ScoreResult, *, holder_name: str, sat_on: dt.date,
          directory: Path, now: dt.datetime) -> Certificate:
    """The result's current certificate, signed with the active key on first request
    (and again after a rescoring changed the result)."""
    existing = current_certificate(session, result.id)
    if existing is not None:
        return existing
    key = active_key(session) or create_signing_key(session, directory, now)
    statement = Statement(
        key_id=key.id,
        number=result.id,
        sat_on=sat_on,
        program_digest=short_digest(result.program_code, 2),
        total=result.total_score,
        field_scores=tuple(result.field_scores[code] for code in result.rule_version.definition["fields"]),
        passed=result.passed,
        name_check=short_digest(normalise_name(holder_name), 4),
    )
    message = statement.encode()
    signature = load_private_key(directory, key).sign(message)
    certificate = Certificate(score_result_id=result.id, key_id=key.id, code=format_code(message + signature),
                              issued_at=now)
    session.add(certificate)
    session.flush()
    return certificate


def current_certificate(session: Session, result_id: int) -> Certificate | None:
    return session.scalar(select(Certificate).where(Certificate.score_result_id == result_id,
                                                    Certificate.superseded_at.is_(None)))


def superseded(session: Session, code: str) -> Certificate | None:
    """The stored certificate with this code, if a rescoring has since replaced it."""
    try:
        canonical = format_code(parse_code(code))
    except CertificateError:
        return None
    return session.scalar(select(Certificate).where(Certificate.code == canonical,
                                                    Certificate.superseded_at.is_not(None)))


@dataclass(frozen=True)
class Verification:
    valid: bool
    reason: str
    statement: Statement | None = None
    name_matches: bool | None = None


def verify(code: str, keys: dict[int, str], holder_name: str | None = None) -> Verification:
    """Check a code against the public keys; optionally check the holder's name too."""
    try:
        raw = parse_code(code)
        if len(raw) <= SIGNATURE_BYTES:
            raise CertificateError("the code is too short to be a certificate")
        message, signature = raw[:-SIGNATURE_BYTES], raw[-SIGNATURE_BYTES:]
        statement = Statement.decode(message)
    except CertificateError as error:
        return Verification(False, str(error))
    pem = keys.get(statement.key_id)
    if pem is None:
        return Verification(False, f"signed with key {statement.key_id}, which this verifier does not know")
    public = serialization.load_pem_public_key(pem.encode())
    assert isinstance(public, Ed25519PublicKey)
    try:
        public.verify(signature, message)
    except InvalidSignature:
        return Verification(False, "the signature does not match: the code was altered or forged")
    name_matches = None
    if holder_name:
        name_matches = short_digest(normalise_name(holder_name), 4) == statement.name_check
    return Verification(True, "genuine", statement, name_matches)


def qr_svg(text: str) -> str:
    """An inline SVG QR image of ``text`` (a verification link)."""
    import segno

    return segno.make(text, error="m").svg_inline(scale=3, dark="#1b1f24", title="Certificate QR code")
