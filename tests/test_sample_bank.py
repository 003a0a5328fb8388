"""The sample item bank: enough original items, in every category, loadable once."""
from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select

from itembank.content import ItemContent
from itembank.models import Item
from itembank.sample import KEY_LETTERS, load_sample_bank, sample_items


def test_the_sample_bank_covers_the_syllabus_in_blueprint_proportions(program):
    items = sample_items()
    assert len(items) >= 300
    assert len({i["id"] for i in items}) == len(items)
    categories = Counter(i["category"] for i in items)
    assert set(categories) == set(range(1, 24))
    fields = Counter(program.field_of_category(i["category"]) for i in items)
    for field in program.fields:
        share = fields[field.code] / len(items)
        assert abs(share - field.items / program.items_per_sitting) < 0.05, (field.code, share)
    topics = Counter(t for i in items for t in i.get("topics", []))
    assert all(topics[t] >= 5 for t in ("ai", "big-data", "iot", "agile", "devops", "security")), topics


def test_every_sample_item_is_well_formed_and_keys_are_balanced(program):
    items = sample_items()
    for raw in items:
        ItemContent(stem=raw["stem"], options=tuple(raw["options"]), key=KEY_LETTERS.index(raw["key"]),
                    rationale=raw["rationale"], table=raw.get("table"))
        assert len(raw["options"]) == 4 and raw["rationale"].strip()
        assert 0.2 < raw["a"] < 4 and -4 < raw["b"] < 4 and 0 <= raw["c"] < 0.35
        assert raw["id"][0] == program.field_of_category(raw["category"])[0].upper()
    keys = Counter(raw["key"] for raw in items)
    assert all(0.18 < keys[letter] / len(items) < 0.32 for letter in KEY_LETTERS), keys


def test_the_bank_can_fill_a_sitting_and_loads_only_once(session, program):
    statuses = Counter((program.field_of_category(i["category"]), i["status"]) for i in sample_items())
    for field in program.fields:
        assert statuses[(field.code, "operational")] >= field.scored
        assert statuses[(field.code, "pretest")] >= field.pretest
    before = session.scalar(select(func.count(Item.id)))
    assert load_sample_bank(session, program) == 0
    assert session.scalar(select(func.count(Item.id))) == before >= len(sample_items())
