"""The sample item bank shipped with the project (itembank/sample/items-*.json).

``items-FIELD.json`` holds the items in English with everything about them (category,
key, parameters); ``items-FIELD.LANG.json`` holds the same items' text in another
language (``"language": "ja"``): same ids, options in the same order, so the key is the
same option in every language. An item is loaded with the program's default language as
its own and the others as its language versions.
"""
from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from itembank.bank import add_item
from itembank.content import ItemContent, LanguageVersion
from itembank.models import Item
from itembank.program import ExamProgram

SAMPLE_DIR = Path(__file__).with_name("sample")
# The sample files' own notation of the key (whatever labels a program shows).
KEY_LETTERS = "ABCD"
SAMPLE_LANGUAGE = "en"  # the language of items-FIELD.json


def sample_items() -> list[dict]:
    items = []
    for path in sorted(SAMPLE_DIR.glob("items-*.json")):
        if len(path.suffixes) > 1:
            continue  # another language's versions (items-strategy.ja.json): not items of their own
        items.extend(json.loads(path.read_text(encoding="utf-8"))["items"])
    return items


def sample_translations() -> dict[str, dict[str, dict]]:
    """The sample items' text in other languages: language -> item id -> stem, options, rationale, table."""
    found: dict[str, dict[str, dict]] = {}
    for path in sorted(SAMPLE_DIR.glob("items-*.*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        language = document.get("language") or path.suffixes[0].lstrip(".")
        found.setdefault(language, {}).update({raw["id"]: raw for raw in document["items"]})
    return found


def _text(raw: dict, language: str) -> LanguageVersion:
    return LanguageVersion(language=language, stem=raw["stem"], options=tuple(raw["options"]),
                           rationale=raw.get("rationale", ""), table=raw.get("table"))


def sample_content(raw: dict, translations: dict[str, dict[str, dict]], languages: tuple[str, ...]) -> ItemContent:
    """The content of the sample item ``raw`` in ``languages`` (the first its own) where the sample
    has them; the English file's text where it has no version in the first."""
    texts = {SAMPLE_LANGUAGE: _text(raw, SAMPLE_LANGUAGE)}
    for language, items in translations.items():
        if raw["id"] in items:
            texts[language] = _text(items[raw["id"]], language)
    order = [language for language in languages if language in texts]
    order += [language for language in texts if language not in order]
    own, others = texts[order[0]], [texts[language] for language in order[1:]]
    return ItemContent(stem=own.stem, options=own.options, key=KEY_LETTERS.index(raw["key"]),
                       rationale=own.rationale, table=own.table, language=own.language, translations=tuple(others))


def load_sample_bank(session: Session, program: ExamProgram) -> int:
    """Add every sample item not yet in the bank; returns how many were added."""
    existing = set(session.scalars(select(Item.code)))
    translations = sample_translations()
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
            content=sample_content(raw, translations, program.languages),
            parameters=(raw["a"], raw["b"], raw["c"]),
            parameter_source="synthetic",
            author="sample bank",
        )
        added += 1
    return added
