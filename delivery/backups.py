"""What a backup of the database needs beside it: the keys that are not in the database.

A backup (persistence.backup) holds every row, but three kinds of key live outside:

- the **content keys** (``CBT_CONTENT_KEYS`` or ``CBT_CONTENT_KEY_FILE``): item content is
  encrypted with them; without them the bank cannot be read and no sitting can start;
- the **audit seal key** (``CBT_AUDIT_KEY`` or ``<CBT_KEY_DIR>/audit-seal.key``): without the
  same key ``cbt audit verify`` cannot tell the restored trail from a rewritten one;
- the **certificate signing keys** (``<CBT_KEY_DIR>/certificate-signing-<id>.pem``): the
  active one signs new score reports (old certificates verify from the public halves, which
  are in the database).

The session secret (``CBT_SECRET_KEY``) is not needed: with another, signed-in users just
sign in again. :func:`manifest` lists what a restore needs, by key id and fingerprint (never
a key), and is written beside the backup; :func:`missing_keys` checks a restored database
against the keys this process has.
"""
from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from delivery.models import Sitting, SittingItem
from itembank.encryption import key_usage
from persistence.audit import AuditEvent, audit_key
from scoring import certificates
from scoring.models import CertificateKey, ScoreResult


def audit_key_fingerprint() -> str:
    """The first 16 hex digits of the SHA-256 of the audit key: tells keys apart, reveals nothing."""
    return hashlib.sha256(audit_key()).hexdigest()[:16]


def counts(session: Session) -> dict[str, int]:
    return {
        "sittings": session.scalar(select(func.count()).select_from(Sitting)) or 0,
        "answers": session.scalar(select(func.count()).select_from(SittingItem)
                                  .where(SittingItem.chosen_option.is_not(None))) or 0,
        "score_results": session.scalar(select(func.count()).select_from(ScoreResult)) or 0,
        "audit_events": session.scalar(select(func.count()).select_from(AuditEvent)) or 0,
    }


def manifest(session: Session, *, kind: str, now: dt.datetime) -> dict:
    """What a restore of this database needs, and what it holds."""
    return {
        "made_at": now.isoformat(timespec="seconds"),
        "database": kind,
        "content_keys": sorted(kid for kid in key_usage(session) if kid),
        "audit_key_sha256": audit_key_fingerprint(),
        "certificate_keys": [key.id for key in session.scalars(
            select(CertificateKey).where(CertificateKey.retired_at.is_(None)).order_by(CertificateKey.id))],
        "counts": counts(session),
    }


def describe(entry: dict) -> list[str]:
    """The manifest's keys as an operator reads them."""
    lines = [f"content keys {', '.join(entry['content_keys']) or '(none in use)'} "
             "(CBT_CONTENT_KEYS or CBT_CONTENT_KEY_FILE)",
             f"the audit seal key with SHA-256 fingerprint {entry['audit_key_sha256']} "
             "(CBT_AUDIT_KEY or audit-seal.key in CBT_KEY_DIR)"]
    if entry["certificate_keys"]:
        lines.append("the certificate signing key(s) " + ", ".join(
            f"certificate-signing-{kid}.pem" for kid in entry["certificate_keys"]) + " (in CBT_KEY_DIR)")
    return lines


def missing_keys(session: Session, entry: dict | None) -> list[str]:
    """What the restored database needs that this process's keys do not give (empty: all there)."""
    from itembank.content import ContentKeyError
    from itembank.encryption import check_content_keys
    from itembank.keyring import KeyringError, load_keyring

    problems = []
    try:
        check_content_keys(session, load_keyring())
    except (KeyringError, ContentKeyError) as error:
        problems.append(f"content keys: {error}")
    if entry is not None and entry.get("audit_key_sha256") != audit_key_fingerprint():
        problems.append(f"audit key: this one's fingerprint is {audit_key_fingerprint()}, the backup was sealed "
                        f"with {entry['audit_key_sha256']}: set CBT_AUDIT_KEY (or CBT_KEY_DIR) to the original")
    key = certificates.active_key(session)
    if key is not None:
        try:
            certificates.load_private_key(certificates.key_directory(), key)
        except certificates.CertificateError as error:
            problems.append(f"certificate signing key: {error}")
    return problems
