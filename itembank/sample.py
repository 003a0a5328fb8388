"""The sample item bank shipped with the project (itembank/sample/items-*.json)."""
from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from itembank.bank import add_item
from itembank.content import ItemContent
from itembank.models import Item
from itembank.program import ExamProgram

SAMPLE_DIR = Path(__file__).with_name("sample")
KEY_LETTERS = "ABCD"


def sample_items() -> list[dict]:
    items = []
    for path in sorted(SAMPLE_DIR.glob("items-*.json")):
        if len(path.suffixes) > 1:
            continue  # another language's versions (items-strategy.ja.json): not items of their own
        items.extend(json.loads(path.read_text(encoding="utf-8"))["items"])
    return items


def load_sample_bank(session: Session, program: ExamProgram) -> int:
    """Add every sample item not yet in the bank; returns how many were added."""
    existing = set(session.scalars(select(Item.code)))
    added = 0
    for raw in sample_items():
        if raw["id"] in existing:
            continue
        add_item(
            session,
            program,
            code=raw["id"],
            category=raw["category"],
            status=raw["status"],
            content=ItemContent(
                stem=raw["stem"],
                options=tuple(raw["options"]),
                key=KEY_LETTERS.index(raw["key"]),
                rationale=raw.get("rationale", ""),
                table=raw.get("table"),
            ),
            parameters=(raw["a"], raw["b"], raw["c"]),
            parameter_source="synthetic",
            author="sample bank",
        )
        added += 1
    return added
