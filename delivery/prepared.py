"""A sitting's questions, prepared once when the candidate logs in at the seat.

Every centre starts a slot at the same minute. Decrypting and rendering a hundred
questions for each of thousands of candidates at that minute is what made the start
slow, so it is done at login instead, during check-in: the questions in the
sitting's order, options shuffled as assembled, in the sitting's language, rendered
into the JSON the page reads, gzip-compressed and sealed under the content key.
The start only starts the clock; the page then reads this one row
(:meth:`delivery.answers.AnswerStore.read_questions`), and a reload or a move to
another seat reads the same row. What changes during the sitting (answers, marks,
the clock) is read separately and is small.

The stored body is ``gzip(JSON)`` sealed by :func:`itembank.keyring.seal`; the
ETag is a digest of the JSON, so a page that has the questions already is told
"not modified".
"""
from __future__ import annotations

import gzip
import hashlib
import json

from sqlalchemy.orm import Session

from delivery.models import Sitting, SittingQuestions
from itembank.keyring import Keyring, seal, unseal
from itembank.program import ExamProgram

PURPOSE = b"cbt sitting questions "


def questions_document(program: ExamProgram, shown) -> dict:
    """What the page shows of each question (``shown``: ``sittings.presentation``), without the
    answers and marks, which change."""
    fields = {f.code: f.name for f in program.fields}
    return {
        "language": shown.language,
        "option_labels": list(shown.option_labels),
        "items": [
            {
                "position": item.position,
                "field": item.field,
                "field_name": fields[item.field],
                "stem": item.stem,
                "table": item.table,
                "figure": item.figure,
                "stimulus": item.stimulus,
                "instructions": item.instructions,
                "language": item.language,
                "options": [{"id": o.id, "text": o.text} for o in item.options],
            }
            for item in shown.items
        ],
    }


def packed(document: dict) -> tuple[str, bytes]:
    """The document's ETag and its gzip-compressed JSON."""
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    # mtime=0: the same questions compress to the same bytes.
    return hashlib.sha256(text).hexdigest()[:32], gzip.compress(text, compresslevel=6, mtime=0)


def prepare(session: Session, program: ExamProgram, sitting: Sitting, keyring: Keyring | None = None
            ) -> SittingQuestions:
    """Render, compress and seal ``sitting``'s questions, in its language, and store them with it
    (in the caller's unit of work); replaces what was stored before."""
    from delivery.sittings import presentation

    shown = presentation(session, program, sitting)
    etag, body = packed(questions_document(program, shown))
    stored = session.get(SittingQuestions, sitting.id)
    if stored is None:
        stored = SittingQuestions(sitting_id=sitting.id)
        session.add(stored)
    stored.language, stored.etag, stored.body = shown.language, etag, seal(body, PURPOSE + str(sitting.id).encode(), keyring)
    session.flush()
    return stored


def opened(sitting_id: int, sealed: bytes, keyring: Keyring | None = None) -> bytes | None:
    """The gzip-compressed JSON of a stored row; None if the keys no longer open it (then
    :func:`prepare` makes it again)."""
    return unseal(sealed, PURPOSE + str(sitting_id).encode(), keyring)
