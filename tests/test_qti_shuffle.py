"""Option order: a sitting's shuffle keeps fixed options in their place and leaves an item whose
options may not be shuffled in its own order; QTI import and export carry both flags."""
from __future__ import annotations

import dataclasses
import datetime as dt
import io
import zipfile

import numpy as np
from sqlalchemy import select

from itembank import bank, qti
from itembank.assembly import draw_form, option_order
from itembank.content import pack, unpack
from itembank.models import Item, ItemVersion
from itembank.sample import load_sample_bank
from tests.qti_helpers import banks, zip_members  # noqa: F401 (banks: a fixture)

NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.timezone.utc)
WHO = {"actor": "psy-test", "actor_role": "psychometrician", "now": NOW}


def test_option_order_keeps_fixed_options_and_draws_as_before_without_them():
    rng, same = np.random.default_rng(7), np.random.default_rng(7)
    assert option_order(4, (), rng) == tuple(int(i) for i in same.permutation(4))
    orders = {option_order(4, (3,), rng) for _ in range(200)}
    assert all(order[3] == 3 for order in orders) and len(orders) == 6  # the other three take every order
    orders = {option_order(4, (0, 2), rng) for _ in range(50)}
    assert orders == {(0, 1, 2, 3), (0, 3, 2, 1)}
    assert option_order(4, (0, 1, 2, 3), rng) is None


def test_the_sittings_shuffle_honours_each_items_flags(banks, program):
    session = banks.new()
    load_sample_bank(session, program)
    session.commit()
    # Every third item keeps its last option ("none of the above"); every third is never shuffled.
    flags = {}
    for number, (item, version) in enumerate(session.execute(select(Item, ItemVersion).join(ItemVersion))):
        content = unpack(version.content)
        if number % 3 == 0:
            content = dataclasses.replace(content, fixed=(3,))
        elif number % 3 == 1:
            content = dataclasses.replace(content, shuffle=False)
        version.content = pack(content)
        flags[version.id] = content
    session.commit()
    rng = np.random.default_rng(2026)
    seen = {"fixed": 0, "unshuffled": 0, "free moved": 0}
    for _ in range(3):
        for position in draw_form(session, program, rng):
            content = flags[position.version_id]
            order = position.option_order
            if not content.shuffle:
                assert order is None
                seen["unshuffled"] += 1
            elif content.fixed:
                assert order[3] == 3 and sorted(order) == [0, 1, 2, 3]
                seen["fixed"] += 1
            else:
                seen["free moved"] += order != (0, 1, 2, 3)
    assert seen["fixed"] > 50 and seen["unshuffled"] > 50 and seen["free moved"] > 50


CHOICE_FIXED = """<?xml version="1.0" encoding="UTF-8"?>
<assessmentItem xmlns="http://www.imsglobal.org/xsd/imsqti_v2p1" identifier="choice_fixed" title="Fixed choice"
    adaptive="false" timeDependent="false">
  <responseDeclaration identifier="RESPONSE" cardinality="single" baseType="identifier">
    <correctResponse><value>ChoiceB</value></correctResponse>
  </responseDeclaration>
  <outcomeDeclaration identifier="SCORE" cardinality="single" baseType="float"/>
  <itemBody>
    <choiceInteraction responseIdentifier="RESPONSE" shuffle="{shuffle}" maxChoices="1">
      <prompt>Which protocol resolves host names to addresses?</prompt>
      <simpleChoice identifier="ChoiceA">SMTP</simpleChoice>
      <simpleChoice identifier="ChoiceB">DNS</simpleChoice>
      <simpleChoice identifier="ChoiceC">FTP</simpleChoice>
      <simpleChoice identifier="ChoiceD" fixed="true">None of the above</simpleChoice>
    </choiceInteraction>
  </itemBody>
  <responseProcessing template="http://www.imsglobal.org/question/qti_v2p1/rptemplates/match_correct"/>
</assessmentItem>"""
MANIFEST = """<?xml version="1.0" encoding="UTF-8"?>
<manifest xmlns="http://www.imsglobal.org/xsd/imscp_v1p1" identifier="m"><organizations/><resources>
<resource identifier="r1" type="imsqti_item_xmlv2p1" href="choice_fixed.xml"><file href="choice_fixed.xml"/></resource>
</resources></manifest>"""


def test_import_keeps_shuffle_and_fixed_and_every_export_writes_them(banks, program):
    session = banks.new()
    for shuffle in ("true", "false"):
        package = zip_members({"imsmanifest.xml": MANIFEST, "choice_fixed.xml": CHOICE_FIXED.replace(
            "{shuffle}", shuffle)})
        report = qti.import_package(session, program, package, category=22, mode="valid", **WHO)
        if shuffle == "true":
            assert report.accepted == ["choice_fixed"]
            content = bank.entry(session, "choice_fixed").content
            assert content.shuffle and content.fixed == (3,) and content.fixed_positions == (3,)
            assert content.choice_ids == ("ChoiceA", "ChoiceB", "ChoiceC", "ChoiceD")
            assert "options shuffled in a sitting, except the fixed ChoiceD" in report.items[0].kept
        else:  # the same identifier again: refused, not doubled
            assert report.rejected[0].reason == "item choice_fixed is already in the bank"
    session.commit()
    for version in ("2.1", "2.2", "3.0"):
        package = qti.export_package(session, program, version=version, **WHO)
        item = zipfile.ZipFile(io.BytesIO(package)).read("items/choice_fixed.xml").decode()
        assert 'shuffle="true"' in item and '"ChoiceD" fixed="true">None of the above<' in item
        assert item.count('fixed="true"') == 1
