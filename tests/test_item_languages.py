"""Items in more than one language: the content model, the program's labels, the exchange formats,
the sitting in the candidate's language and the psychometrician's pages."""
from __future__ import annotations

import dataclasses
import datetime as dt
import io
import re
import uuid
import zipfile

import pytest
from sqlalchemy import select

from centers.models import Booking
from delivery import sittings
from delivery.models import Sitting, SittingItem
from itembank import bank, exchange, qti
from itembank.content import ContentError, ItemContent, LanguageVersion, from_dict, to_dict, unpack
from itembank.models import ItemVersion
from itembank.program import ProgramError, parse_program
from itembank.sample import sample_items, sample_translations
from tests.helpers import api, booked_candidate, csrf_token, login_candidate, login_staff, sitting_view, start_sitting
from tests.qti_helpers import ITEM_SCHEMAS, SVG, banks, schema, schema_errors  # noqa: F401 (banks: a fixture)

NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.timezone.utc)
WHO = {"actor": "psy-test", "actor_role": "psychometrician", "now": NOW}
PASSAGE = {"identifier": "passage-shop", "title": "小さな店", "text": "ある店は売上をノートに記録している。"}


def bilingual(**changes) -> ItemContent:
    """An item written in Japanese with an English version: a figure, a table, a passage, a title."""
    english = LanguageVersion(
        language="en", stem="Which device forwards packets between networks?",
        options=("Router", "Hub", "Repeater", "Modem"), rationale="A router forwards between networks.",
        table={"header": ["Layer", "Device"], "rows": [["3", "?"]]}, figure_alt="A diagram of two networks",
        stimulus={"title": "A small shop", "text": "A shop records its sales in a notebook."},
        instructions="Read the passage first.", title="Network devices")
    content = ItemContent(
        stem="異なるネットワーク間でパケットを中継する機器はどれか。", options=("ルータ", "ハブ", "リピータ", "モデム"),
        key=0, rationale="ルータはネットワーク間を中継する。", table={"header": ["層", "機器"], "rows": [["3", "?"]]},
        figure={"media_type": "image/svg+xml", "data": SVG, "alt": "二つのネットワークの図"}, stimulus=PASSAGE,
        instructions="先に文章を読むこと。", title="ネットワーク機器", language="ja", translations=(english,),
        shuffle=True, fixed=(3,))
    return dataclasses.replace(content, **changes) if changes else content


# The content model ---------------------------------------------------------------------------

def test_a_language_version_shows_its_own_text_with_the_items_key_and_figure():
    content = bilingual()
    assert content.languages == ("ja", "en")
    english = content.in_language("en")
    assert english.stem.startswith("Which device") and english.options[0] == "Router"
    assert english.key == content.key == 0 and english.fixed == (3,) and english.shuffle
    assert english.figure["data"] == content.figure["data"] and english.figure["alt"] == "A diagram of two networks"
    assert english.stimulus == {"identifier": "passage-shop", "title": "A small shop",
                                "text": "A shop records its sales in a notebook."}
    assert english.language == "en" and english.translations == ()
    assert content.in_language("ja").stem == content.stem and content.in_language("fr") is None
    # The candidate's language, else the default, else the item's own; "en-GB" takes "en".
    assert content.shown_in("en").language == "en" and content.shown_in("en-GB").language == "en"
    assert content.shown_in("fr", "ja").language == "ja" and content.shown_in(None).language == "ja"
    only_english = ItemContent(stem="Only English.", options=("a", "b", "c", "d"), key=1, language="en")
    assert only_english.shown_in("ja", "ja").stem == "Only English."


def test_stored_content_round_trips_and_old_single_language_content_reads_as_its_language():
    content = bilingual()
    assert from_dict(to_dict(content)) == content
    old = {"stem": "What is 1 + 1?", "options": ["1", "2", "3", "4"], "key": 1, "rationale": "", "table": None,
           "figure": None}
    legacy = from_dict(old)
    assert legacy.translations == () and legacy.languages == ("",) and legacy.shown_in("en").stem == "What is 1 + 1?"
    assert "translations" not in to_dict(legacy)  # single-language content is stored as before
    # A version's table equal to the item's is the item's (None): content compares equal however given.
    same_table = bilingual(translations=(dataclasses.replace(bilingual().translations[0],
                                                             table=bilingual().table),))
    assert same_table.translations[0].table is None


@pytest.mark.parametrize("change, field", [
    ({"options": ("Router", "Hub", "Repeater")}, "options"),  # another number of options
    ({"figure_alt": ""}, "figure_alt"),  # the figure undescribed in English
    ({"language": "ja"}, "language"),  # the item's own language twice
])
def test_a_language_version_that_is_not_the_same_item_is_refused(change, field):
    version = dataclasses.replace(bilingual().translations[0], **change)
    with pytest.raises(ContentError) as refused:
        bilingual(translations=(version,))
    assert refused.value.field == field
    with pytest.raises(ContentError) as refused:
        dataclasses.replace(bilingual().translations[0], stem="  ")
    assert refused.value.field == "stem"
    with pytest.raises(ContentError, match="state the language"):
        bilingual(language="")


# The program's option labels ----------------------------------------------------------------------

def test_option_labels_are_per_language_and_the_old_list_form_still_reads(program):
    assert program.languages == ("ja", "en") and program.default_language == "ja"
    assert program.labels_for("ja") == ("ア", "イ", "ウ", "エ") == program.option_labels
    assert program.labels_for("en") == ("A", "B", "C", "D") and program.labels_for(None) == program.option_labels
    assert program.option_index("ウ") == program.option_index("C") == 2 and program.option_index("Z") is None
    from itembank.program import program_path, tomllib
    data = tomllib.loads(program_path(None).read_text(encoding="utf-8"))
    old = parse_program({**data, "option_labels": ["A", "B", "C", "D"]})
    assert old.labels_for("ja") == old.labels_for("en") == ("A", "B", "C", "D")
    with pytest.raises(ProgramError, match="not one of the program's languages"):
        parse_program({**data, "option_labels": {"ja": ["ア", "イ", "ウ", "エ"], "fr": ["A", "B", "C", "D"]}})
    with pytest.raises(ProgramError, match="as many option labels"):
        parse_program({**data, "option_labels": {"ja": ["ア", "イ", "ウ", "エ"], "en": ["A", "B"]}})


# The sample bank ----------------------------------------------------------------------------------

def test_the_sample_bank_is_japanese_with_english_beside_it_and_the_same_keys(session):
    japanese = sample_translations()["ja"]
    raw = {r["id"]: r for r in sample_items()}
    assert set(japanese) == set(raw) and len(raw) == 330
    for entry in bank.browse(session):
        if entry.item.code not in raw:
            continue
        content, english = entry.content, raw[entry.item.code]
        assert content.language == "ja" and content.stem == japanese[entry.item.code]["stem"]
        shown = content.in_language("en")
        assert shown.stem == english["stem"] and list(shown.options) == english["options"]
        assert content.key == "ABCD".index(english["key"])


# Exchange: the native format and QTI --------------------------------------------------------------

def _one_item_bank(banks, program, content):
    session = banks.new()
    exchange.create_draft(session, program, code="T22-LANG", category=22, content=content, note="created", **WHO)
    session.commit()
    return session


def test_the_native_format_keeps_every_language(banks, program):
    source = _one_item_bank(banks, program, bilingual())
    document = exchange.export_bank(source, program, **WHO)
    exported = next(i for i in document["items"] if i["code"] == "T22-LANG")["versions"][-1]["content"]
    assert [t["language"] for t in exported["translations"]] == ["en"]
    other = banks.new()
    report = exchange.import_bank(other, program, document, **WHO)
    other.commit()
    assert report.rejected == [] and bank.entry(other, "T22-LANG").content == bilingual()


@pytest.mark.parametrize("version", ("2.1", "3.0"))
def test_qti_exports_each_language_with_its_xml_lang_and_reimports_the_same_item(banks, program, version):
    source = _one_item_bank(banks, program, bilingual())
    package = qti.export_package(source, program, version=version, codes=["T22-LANG"], **WHO)
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    items = {name: data for name, data in files.items() if name.startswith("items/") and name.endswith(".xml")
             and "/stimuli/" not in name}
    languages = sorted(re.search(rb'xml:lang="([^"]+)"', data).group(1).decode() for data in items.values())
    assert languages == ["en", "ja"]
    english = next(data for data in items.values() if b'xml:lang="en"' in data).decode()
    assert "Which device forwards packets" in english and "Router" in english and "ルータ" not in english
    assert 'alt="A diagram of two networks"' in english
    # Both documents say the same key, under the same choice identifiers.
    keys = {re.search(r"<(?:qti-)?value>([^<]+)<", data.decode()).group(1) for data in items.values()}
    assert len(keys) == 1
    schema(ITEM_SCHEMAS[version])
    assert {name: schema_errors(ITEM_SCHEMAS[version], data)[:2] for name, data in files.items()
            if name.endswith(".xml") and name != "imsmanifest.xml"
            and schema_errors(ITEM_SCHEMAS[version], data)} == {}

    other = banks.new()
    report = qti.import_package(other, program, package, name="bilingual", **WHO)
    other.commit()
    assert report.rejected == [] and report.accepted == ["T22-LANG"]
    assert bank.entry(other, "T22-LANG").content == bilingual()
    assert qti.export_package(other, program, version=version, codes=["T22-LANG"], **WHO) == package


def test_a_qti_language_version_with_another_key_is_refused(banks, program):
    source = _one_item_bank(banks, program, bilingual())
    package = qti.export_package(source, program, version="2.2", codes=["T22-LANG"], **WHO)
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(package)) as archive, zipfile.ZipFile(buffer, "w") as changed:
        for name in archive.namelist():
            data = archive.read(name)
            if b'xml:lang="en"' in data:
                data = re.sub(rb"<value>[^<]+</value>", b"<value>choice_B</value>", data)
            changed.writestr(name, data)
    other = banks.new()
    report = qti.import_package(other, program, buffer.getvalue(), name="changed", **WHO)
    assert report.rejected and "is not the same item" in report.rejected[0].reason
    assert not report.landed


def test_an_import_keeps_the_language_it_is_given(banks, program):
    source = _one_item_bank(banks, program, ItemContent(stem="Only English.", options=("a", "b", "c", "d"), key=1,
                                                        language="en-GB"))
    package = qti.export_package(source, program, version="3.0", codes=["T22-LANG"], **WHO)
    other = banks.new()
    qti.import_package(other, program, package, name="en-GB", **WHO)
    assert bank.entry(other, "T22-LANG").content.language == "en-GB"


# The sitting in the candidate's language -----------------------------------------------------------

def _sit(client, session, program, clock, language):
    booked = booked_candidate(session, program, clock.now)
    session.get(Booking, booked.booking_id).language = language
    session.commit()
    login_candidate(client, booked)
    state = start_sitting(client)
    rows = session.scalars(select(SittingItem).join(Sitting).where(Sitting.booking_id == booked.booking_id)
                           .order_by(SittingItem.position)).all()
    contents = {v.id: unpack(v.content) for v in session.scalars(
        select(ItemVersion).where(ItemVersion.id.in_([r.item_version_id for r in rows])))}
    return state, rows, contents


@pytest.mark.parametrize("language, labels", [("en", ["A", "B", "C", "D"]), ("ja", ["ア", "イ", "ウ", "エ"]),
                                              (None, ["ア", "イ", "ウ", "エ"])])
def test_the_sitting_shows_the_bookings_language_with_its_labels_and_the_same_key(client, session, program, clock,
                                                                                   language, labels):
    state, rows, contents = _sit(client, session, program, clock, language)
    assert state["language"] == (language or "ja") and state["option_labels"] == labels
    shown_language = language or "ja"
    for item, row in zip(state["items"], rows):
        content = contents[row.item_version_id].in_language(shown_language)
        assert item["language"] == shown_language and item["stem"] == content.stem
        assert {o["id"]: o["text"] for o in item["options"]} == dict(enumerate(content.options))
    # The key is the same option in every language: answering it scores.
    first = rows[0]
    key = contents[first.item_version_id].key
    assert api(client, "PUT", "/api/sitting/answers/1", {"option": key}).status_code == 200


def test_an_item_without_the_candidates_language_is_shown_in_the_default(client, session, program, clock,
                                                                         monkeypatch):
    state, rows, contents = _sit(client, session, program, clock, "en")
    assert state["items"][0]["language"] == "en"
    japanese_only = rows[0].item_version_id
    cached = sittings.contents_by_version

    def without_english(db, version_ids):
        found = cached(db, version_ids)
        return {v: dataclasses.replace(c, translations=()) if v == japanese_only else c for v, c in found.items()}

    monkeypatch.setattr(sittings, "contents_by_version", without_english)
    # The questions were prepared at login: prepare them again, now that one item lacks English.
    from delivery.models import SittingQuestions

    session.delete(session.get(SittingQuestions, rows[0].sitting_id))
    session.commit()
    items = sitting_view(client)["items"]
    assert items[0]["language"] == "ja" and items[0]["stem"] == contents[japanese_only].stem
    assert items[1]["language"] == "en"


# The psychometrician's pages ---------------------------------------------------------------------

def test_a_psychometrician_adds_edits_and_removes_a_language_version(client, session, program):
    code = f"T22-L{uuid.uuid4().hex[:6].upper()}"
    own = ItemContent(stem="ルータの役割はどれか。", options=("中継", "増幅", "変調", "暗号化"), key=0, language="ja")
    exchange.create_draft(session, program, code=code, category=22, content=own, note="created", **WHO)
    login_staff(client, "psychometrician", "psychometrician-demo-pass")
    page = client.get(f"/bank/items/{code}").get_data(as_text=True)
    assert '<option value="en">English</option>' in page and 'lang="ja"' in page

    form = client.get(f"/bank/items/{code}/edit?language=en").get_data(as_text=True)
    assert "add a English version" in form and "the key is option A in every language" in form
    added = client.post(f"/bank/items/{code}/edit?language=en", data={
        "csrf_token": csrf_token(client), "stem": "What does a router do?",
        "options-0": "Relays", "options-1": "Amplifies", "options-2": "Modulates", "options-3": "Encrypts",
        "rationale": "It relays packets.", "reason": "English version"})
    assert added.status_code == 302, added.get_data(as_text=True)
    session.expire_all()
    content = bank.entry(session, code).content
    assert content.languages == ("ja", "en") and content.key == 0
    assert content.in_language("en").options == ("Relays", "Amplifies", "Modulates", "Encrypts")
    page = client.get(f"/bank/items/{code}").get_data(as_text=True)
    assert 'lang="en"' in page and "What does a router do?" in page and "ルータの役割はどれか。" in page

    # The same options twice are refused beside the form, and nothing is saved.
    refused = client.post(f"/bank/items/{code}/edit?language=en", data={
        "csrf_token": csrf_token(client), "stem": "What does a router do?",
        "options-0": "Same", "options-1": "Same", "options-2": "Modulates", "options-3": "Encrypts"})
    assert refused.status_code == 422 and "two options are the same" in refused.get_data(as_text=True)
    assert client.get(f"/bank/items/{code}/edit?language=%3Cx%3E").status_code == 422

    removed = client.post(f"/bank/items/{code}/edit?language=en", data={
        "csrf_token": csrf_token(client), "remove": "yes", "reason": "not needed"})
    assert removed.status_code == 302
    session.expire_all()
    assert bank.entry(session, code).content.languages == ("ja",)

    # In Japanese, the page is Japanese and so are the labels.
    client.delete_cookie("cbt_language")
    page = client.get(f"/bank/items/{code}").get_data(as_text=True)
    assert "受験者に表示される問題" in page and '<span class="label">ア</span>' in page
    refused = client.post(f"/bank/items/{code}/edit?language=en", data={
        "csrf_token": csrf_token(client), "stem": "What does a router do?",
        "options-0": "Same", "options-1": "Same", "options-2": "Modulates", "options-3": "Encrypts"})
    assert refused.status_code == 422 and "同じ選択肢が2つあります" in refused.get_data(as_text=True)


def test_a_refusal_inside_a_refusal_reads_in_the_readers_language(app):
    from delivery.web.i18n import user_message

    with pytest.raises(ContentError) as refused:
        exchange.parse_content({"stem": "x", "options": ["a", "a"], "key": 0}, "upload.json")
    assert str(refused.value) == "upload.json: two options are the same"
    with app.test_request_context("/"):
        assert user_message(refused.value) == "upload.json:同じ選択肢が2つあります"
    with app.test_request_context("/", headers={"Cookie": "cbt_language=en"}):
        assert user_message(refused.value) == "upload.json: two options are the same"


def test_the_bank_search_reads_every_language_version(session):
    from itembank.bank import browse

    found = {entry.item.code: entry for entry in browse(session, text="primary key")}
    assert "T21-001" in found and found["T21-001"].content.language == "ja"
    assert "T21-001" in {entry.item.code for entry in browse(session, text=found["T21-001"].content.stem[:6])}
