"""A corpus of real-world-shaped QTI packages, each written here in QTI 2.1, 2.2 and 3.0.

Every construct that single-choice items in the wild carry (the shapes of 1EdTech's examples, TAO, QTIWorks
and oat-sa's samples, with our own content): each item is imported or refused with a reason, nothing is
dropped without saying so, the source documents themselves are schema-valid, and what was imported
exports valid and round-trips.
"""
from __future__ import annotations

import base64
import datetime as dt
import io
import re
import zipfile
from xml.etree.ElementTree import fromstring

import pytest

from itembank import bank, qti
from tests.cli_helpers import own_cbt
from tests.qti_helpers import ITEM_SCHEMAS, banks, schema_errors, zip_members  # noqa: F401 (banks: a fixture)

NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.timezone.utc)
WHO = {"actor": "psy-test", "actor_role": "psychometrician", "now": NOW}
VERSIONS = ("2.1", "2.2", "3.0")
XI = "http://www.w3.org/2001/XInclude"
SVG = (b'<svg xmlns="http://www.w3.org/2000/svg" width="120" height="60"><rect width="40" height="50" y="10"/>'
       b'<rect x="50" width="40" height="60"/></svg>')
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9"
                       "awAAAABJRU5ErkJggg==")

# ---- writing a document in any version -------------------------------------------------------------

QTI_ELEMENTS = ("assessmentItem", "responseDeclaration", "outcomeDeclaration", "templateDeclaration", "correctResponse",
                "defaultValue", "value", "itemBody", "choiceInteraction", "simpleChoice", "prompt", "feedbackInline",
                "feedbackBlock", "responseProcessing", "modalFeedback", "templateBlock", "contentBody",
                "assessmentStimulus", "stimulusBody", "assessmentStimulusRef")
QTI_ATTRIBUTES = ("responseIdentifier", "maxChoices", "minChoices", "baseType", "timeDependent", "outcomeIdentifier",
                  "showHide")


def kebab(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", lambda m: "-" + m.group(1).lower(), name)


def to_v3(xml: str) -> str:
    """QTI 2 markup in QTI 3.0's names: rubric blocks and modal feedback get their content body."""
    xml = re.sub(r'<rubricBlock view="([^"]+)">(.*?)</rubricBlock>', lambda m: (
        f'<qti-rubric-block use="{"instructions" if m.group(1) == "candidate" else "scoring"}" view="{m.group(1)}">'
        f'<qti-content-body>{m.group(2)}</qti-content-body></qti-rubric-block>'), xml, flags=re.S)
    xml = re.sub(r'(<modalFeedback [^>]*>)(.*?)</modalFeedback>',
                 r'\1<contentBody>\2</contentBody></modalFeedback>', xml, flags=re.S)
    names = "|".join(QTI_ELEMENTS)
    xml = re.sub(rf"<(/?)({names})(?=[\s>/])", lambda m: f"<{m.group(1)}qti-{kebab(m.group(2))}", xml)
    attributes = "|".join(QTI_ATTRIBUTES)
    return re.sub(rf"\s({attributes})=", lambda m: f" {kebab(m.group(1))}=", xml)


NAMESPACES = {"2.0": "http://www.imsglobal.org/xsd/imsqti_v2p0", **{v: qti.VERSIONS[v].namespace for v in VERSIONS}}
TEMPLATES = {"2.0": "http://www.imsglobal.org/question/qti_v2p0/rptemplates/match_correct",
             **{v: qti.VERSIONS[v].match_correct for v in VERSIONS}}
TYPES = {"2.0": "imsqti_item_xmlv2p0", **{v: qti.VERSIONS[v].item_type for v in VERSIONS}}


def choices(*texts: str, ids: str = "ABCD", shuffle: str = "false", fixed: str = "", prompt: str = "",
            key: str = "") -> str:
    """A choiceInteraction (``key`` only documents which choice the item's correct response names)."""
    inner = f"<prompt>{prompt}</prompt>" if prompt else ""
    for ident, text in zip(ids, texts):
        mark = ' fixed="true"' if ident in fixed else ""
        inner += f'<simpleChoice identifier="{ident}"{mark}>{text}</simpleChoice>'
    return (f'<choiceInteraction responseIdentifier="RESPONSE" shuffle="{shuffle}" maxChoices="1">{inner}'
            "</choiceInteraction>")


def document(version: str, identifier: str, body: str, *, key: str = "B", title: str = "", lang: str = "en",
             after_body: str = "", declarations: str = "", stimulus: tuple[str, str, str] | None = None,
             cardinality: str = "single") -> bytes:
    """An item document; ``stimulus`` (identifier, href, title) is a 3.0 reference or a 2.x XInclude."""
    head = (f'<responseDeclaration identifier="RESPONSE" cardinality="{cardinality}" baseType="identifier">'
            f'<correctResponse>{"".join(f"<value>{k}</value>" for k in key.split())}</correctResponse>'
            '</responseDeclaration><outcomeDeclaration identifier="SCORE" cardinality="single" baseType="float"/>'
            + declarations)
    if stimulus and version == "3.0":
        head += f'<assessmentStimulusRef identifier="{stimulus[0]}" href="{stimulus[1]}" title="{stimulus[2]}"/>'
    elif stimulus:
        body = f'<xi:include xmlns:xi="{XI}" href="{stimulus[1]}"/>' + body
    xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<assessmentItem xmlns="{NAMESPACES[version]}" '
           'xmlns:m="http://www.w3.org/1998/Math/MathML" '
           f'identifier="{identifier}" title="{title or identifier}" adaptive="false" timeDependent="false" '
           f'xml:lang="{lang}">{head}<itemBody>{body}</itemBody>'
           f'<responseProcessing template="{TEMPLATES[version]}"/>{after_body}</assessmentItem>')
    return (to_v3(xml) if version == "3.0" else xml).encode()


def stimulus_document(version: str, identifier: str, title: str, body: str) -> bytes:
    if version == "3.0":
        xml = (f'<qti-assessment-stimulus xmlns="{NAMESPACES[version]}" identifier="{identifier}" title="{title}" '
               f'xml:lang="en"><qti-stimulus-body>{body}</qti-stimulus-body></qti-assessment-stimulus>')
    else:
        xml = f'<div xmlns="{NAMESPACES[version]}" id="{identifier}" label="{title}">{body}</div>'
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + xml).encode()


def lom(source: str, taxon: str) -> str:
    return (f'<metadata><lom xmlns="http://ltsc.ieee.org/xsd/LOM"><classification><purpose><value>discipline</value>'
            f'</purpose><taxonPath><source><string>{source}</string></source><taxon><id>{taxon}</id></taxon>'
            '</taxonPath></classification></lom></metadata>')


def package(version: str, items: dict[str, bytes], files: dict[str, bytes] | None = None,
            metadata: dict[str, str] | None = None, other: str = "", types: dict[str, str] | None = None) -> bytes:
    """A content package: ``items`` by path, ``files`` beside them, LOM ``metadata`` by item path."""
    cp = qti.VERSIONS["2.1" if version == "2.0" else version].cp_namespace
    resources = ""
    for number, href in enumerate(items, start=1):
        kind = (types or {}).get(href, TYPES[version])
        extra = "".join(f'<file href="{f}"/>' for f in (files or {}) if f.startswith(href.rsplit("/", 1)[0] + "/")
                        and f != href)
        resources += (f'<resource identifier="r{number}" type="{kind}" href="{href}">'
                      f'{(metadata or {}).get(href, "")}<file href="{href}"/>{extra}</resource>')
    manifest = (f'<?xml version="1.0" encoding="UTF-8"?>\n<manifest xmlns="{cp}" identifier="corpus"><organizations/>'
                f"<resources>{resources}{other}</resources></manifest>")
    return zip_members({"imsmanifest.xml": manifest, **items, **(files or {})})


FOUR = ("Bus", "Ring", "Star", "Full mesh")

# ---- the corpus --------------------------------------------------------------------------------------


def incidental(version: str):
    """Single-choice items once refused for incidental reasons (the issue's list), and layout that moves."""
    long_id = "ITP_2026_strategy_business_industry_q01"  # 39 characters
    items = {
        "items/br.xml": document(version, "br-between-blocks",
                                 "<p>A LAN joins the computers of one office.</p><br/>"
                                 "<p>Which layout has a central switch?</p>"
                                 + choices(*FOUR)),
        "items/svg/prompt.xml": document(version, "svg-in-prompt", choices(
            "Product A", "Product B", "Both the same", "Cannot tell",
            prompt='Which product sold more? <object type="image/svg+xml" data="chart.svg">Bar chart: product A '
                   'sold 50 units, product B sold 60 units</object>')),
        "items/long.xml": document(version, long_id, "<p>Which is a business industry?</p>"
                                   + choices("Retail", "Rounding", "Routing", "Rooting", key="A"), key="A"),
        "items/after/figure.xml": document(version, "text-after-figure",
                                           '<p>Look at the figure.</p><p><img src="net.png" alt="Four computers on '
                                           'one cable"/></p><p>What topology does it show?</p>' + choices(*FOUR),
                                           key="A"),
        "items/formatting.xml": document(version, "formatting-and-lists",
                                         "<p>Water is H<sub>2</sub>O and <em>not</em> H<sub>2</sub>O<sub>2</sub>.</p>"
                                         "<ul><li>first fact</li><li>second fact</li></ul>"
                                         + choices("one", "two", "three", "four")),
    }
    if version == "3.0":  # ruby is HTML5: QTI 3.0 has it
        items["items/ruby.xml"] = document(version, "ruby", "<p>A <ruby>漢字<rt>かんじ</rt></ruby> reading.</p>"
                                           + choices("one", "two", "three", "four"), lang="ja")
    files = {"items/svg/chart.svg": SVG, "items/after/net.png": PNG}
    expect = {
        "items/br.xml": ("br-between-blocks", [], []),
        "items/svg/prompt.xml": ("svg-in-prompt", ["figure"], []),
        "items/long.xml": (qti._derived_code(long_id, set()), [], ["has more than 32 characters: imported as code"]),
        "items/after/figure.xml": ("text-after-figure", ["figure"], ["text after the figure is shown before it"]),
        "items/formatting.xml": ("formatting-and-lists", [], ["inline formatting kept as plain text: <em>, <sub>",
                                                              "a list kept as lines of text"]),
        "items/ruby.xml": ("ruby", ["language ja"], ["ruby kept as text with its reading in parentheses"]),
    }
    return package(version, items, files), expect, {}


def shared_identifier(version: str):
    """QTIWorks' WebDeveloperTest1 shape: several items of one package all identified "choice"."""
    topics = ["HTML", "CSS", "HTTP", "DOM", "URL"]
    items = {f"items/q{n}.xml": document(version, "choice", f"<p>Which of these is about {topic}?</p>" + choices(
        f"{topic} answer", "Wrong one", "Wrong two", "Wrong three", key="A"), key="A", title=f"Web developer {n}")
        for n, topic in enumerate(topics, start=1)}
    expect = {"items/q1.xml": ("choice", ["title"], [])}
    expect.update({f"items/q{n}.xml": (f"choice-{n}", ["title"], ["is shared by 5 items of the package: imported as "
                                                                  f"code choice-{n}"]) for n in range(2, 6)})
    return package(version, items), expect, {}


def fixed_choices(version: str):
    """IMS's choice_fixed: "none of the above" stays last while the others shuffle; and an unshuffled item."""
    items = {
        "items/choice_fixed.xml": document(version, "choice_fixed", "<p>Which protocol sends e-mail?</p>" + choices(
            "SMTP", "DNS", "DHCP", "None of the above", shuffle="true", fixed="D"), key="A"),
        "items/ordered.xml": document(version, "ordered", "<p>Which number is the smallest?</p>" + choices(
            "1", "2", "3", "4", shuffle="false"), key="A"),
    }
    expect = {"items/choice_fixed.xml": ("choice_fixed", ["except the fixed D"], []),
              "items/ordered.xml": ("ordered", ['in their given order'], [])}
    checks = {"choice_fixed": lambda c: c.shuffle and c.fixed == (3,) and c.choice_ids == ("A", "B", "C", "D"),
              "ordered": lambda c: not c.shuffle and c.fixed == ()}
    return package(version, items), expect, checks


def stimuli(version: str):
    """A passage shared by two items, and a third with its own."""
    passage = "<p>A shop of 5 staff keeps its sales in one spreadsheet.</p><p>The owner wants daily backups.</p>"
    other = "<p>The network has one router and two switches.</p>"
    ref = ("shop-passage", "../stimuli/shop.xml", "The shop")
    items = {
        "items/a/q1.xml": document(version, "stim-1", "<p>What should the owner do first?</p>"
                                   + choices("Back up daily", "Buy a printer", "Hire staff", "Nothing"),
                                   key="A", stimulus=ref),
        "items/b/q2.xml": document(version, "stim-2", "<p>Who keeps the sales?</p>"
                                   + choices("A bank", "The shop", "A cloud", "Nobody"), stimulus=ref),
        "items/c/q3.xml": document(version, "stim-3", "<p>How many switches?</p>"
                                   + choices("One", "Two", "Three", "Four"), stimulus=(
                                       "net-passage", "../stimuli/net.xml", "The network")),
    }
    files = {"items/stimuli/shop.xml": stimulus_document(version, "shop-passage", "The shop", passage),
             "items/stimuli/net.xml": stimulus_document(version, "net-passage", "The network", other)}
    types = {}
    expect = {href: (doc_id, ["shared stimulus"], []) for href, doc_id in
              (("items/a/q1.xml", "stim-1"), ("items/b/q2.xml", "stim-2"), ("items/c/q3.xml", "stim-3"))}
    checks = {"stim-1": lambda c: c.stimulus["identifier"] == "shop-passage" and c.stimulus["title"] == "The shop"
              and c.stimulus["text"].splitlines() == ["A shop of 5 staff keeps its sales in one spreadsheet.",
                                                     "The owner wants daily backups."],
              "stim-3": lambda c: c.stimulus["identifier"] == "net-passage"}
    other_resources = ""
    if version == "3.0":
        other_resources = ('<resource identifier="s1" type="imsqti_stimulus_xmlv3p0" href="items/stimuli/shop.xml">'
                           '<file href="items/stimuli/shop.xml"/></resource>')
    return package(version, items, files, other=other_resources, types=types), expect, checks


def feedback_and_rubrics(version: str):
    """Modal feedback, inline feedback, a rubric for the candidate and one for scorers."""
    modal = ('<modalFeedback outcomeIdentifier="FEEDBACK" identifier="correct" showHide="show">'
             "<p>Right: a star has one central device.</p></modalFeedback>"
             '<modalFeedback outcomeIdentifier="FEEDBACK" identifier="wrong" showHide="show">'
             "<p>Look again at the central switch.</p></modalFeedback>")
    feedback_declaration = '<outcomeDeclaration identifier="FEEDBACK" cardinality="single" baseType="identifier"/>'
    items = {
        "items/modal.xml": document(version, "modal-feedback", "<p>Which topology has one central switch?</p>"
                                    + choices(*FOUR), key="C", after_body=modal, declarations=feedback_declaration),
        "items/rubric.xml": document(version, "candidate-rubric",
                                     '<rubricBlock view="candidate"><p>Answer from the office plan.</p></rubricBlock>'
                                     "<p>How many cables does the switch need?</p>"
                                     + choices("1", "4", "5", "10")
                                     + '<rubricBlock view="scorer"><p>One cable per computer: five.</p></rubricBlock>',
                                     key="C"),
    }
    if version != "3.0":  # feedbackInline inside choices: QTI 2 items carry it this way
        items["items/inline.xml"] = document(
            version, "inline-feedback", "<p>Which port does HTTPS use?</p>" + choices(
                '443<feedbackInline outcomeIdentifier="FEEDBACK" identifier="A" showHide="show"> Yes, 443.'
                "</feedbackInline>", "80", "21", "25"), key="A", declarations=feedback_declaration)
    expect = {"items/modal.xml": ("modal-feedback", [], ["feedback (modalFeedback FEEDBACK=correct) kept in the "
                                                         "rationale"]),
              "items/rubric.xml": ("candidate-rubric", ["instructions for the candidate", "rationale"], []),
              "items/inline.xml": ("inline-feedback", [], ["feedback (feedbackInline FEEDBACK=A) kept"])}
    checks = {"modal-feedback": lambda c: c.rationale.splitlines() == ["Right: a star has one central device.",
                                                                       "Look again at the central switch."],
              "candidate-rubric": lambda c: c.instructions == "Answer from the office plan."
              and c.rationale == "One cable per computer: five." and "office plan" not in c.stem,
              "inline-feedback": lambda c: c.options[0] == "443" and c.rationale == "Yes, 443."}
    return package(version, items), expect, checks


def layout(version: str):
    """A layout table, an image described in visually hidden text, and code in <pre>."""
    items = {
        "items/layout.xml": document(version, "layout-table",
                                     '<table role="presentation"><tbody><tr><td><p>Read the plan on the right.</p></td>'
                                     '<td><img src="plan.png" alt="Office plan"/></td></tr></tbody></table>'
                                     + choices("Bus", "Ring", "Star", "Tree")),
        "items/hidden.xml": document(version, "hidden-description",
                                     '<p><img src="plan.png" alt="Office plan"/><span class="sr-only">Five desks '
                                     "around one switch</span></p><p>Which topology?</p>" + choices(*FOUR), key="C"),
        "items/code.xml": document(version, "code-in-pre",
                                   "<p>What does this print?</p>"
                                   "<pre><code>for i in range(3):\n    print(i)</code></pre>"
                                   + choices("0 1 2", "1 2 3", "0 1 2 3", "nothing", key="A"), key="A"),
    }
    files = {"items/plan.png": PNG}
    expect = {"items/layout.xml": ("layout-table", ["figure"], ["layout table (role=presentation) read as"]),
              "items/hidden.xml": ("hidden-description", ["figure"], ["visually hidden text kept as the figure's"]),
              "items/code.xml": ("code-in-pre", ["preformatted text"], [])}
    checks = {"layout-table": lambda c: c.table is None and c.stem.startswith("Read the plan on the right."),
              "hidden-description": lambda c: c.figure["alt"] == "Office plan Five desks around one switch"
              and "Five desks" not in c.stem,
              "code-in-pre": lambda c: "for i in range(3):\n    print(i)" in c.stem}
    return package(version, items, files), expect, checks


def refusals(version: str):
    """Items the bank cannot hold: each refused with its reason; the good one lands in --mode valid."""
    items = {
        "items/good.xml": document(version, "good", "<p>Which is an input device?</p>"
                                   + choices("Keyboard", "Monitor", "Printer", "Speaker", key="A"), key="A"),
        "items/multiple.xml": document(version, "multiple", "<p>Pick two.</p>" + choices(*FOUR).replace(
            'maxChoices="1"', 'maxChoices="2"'), key="A B", cardinality="multiple"),
        "items/math.xml": document(version, "math", '<p>Solve <m:math><m:mi>x</m:mi></m:math>.</p>'
                                   + choices("1", "2", "3", "4")),
        "items/spacing.xml": document(version, "spacing", "<p>Which string?</p>" + choices("x  y", "x y", "z", "w")),
        "items/five.xml": document(version, "five", "<p>Five options.</p>" + choices(
            "a", "b", "c", "d", "e", ids="ABCDE")),
        "items/noalt.xml": document(version, "no-alt", '<p><img src="plan.png" alt=""/></p><p>Which?</p>'
                                    + choices(*FOUR)),
    }
    files = {"items/plan.png": PNG}
    expect = {"items/good.xml": ("good", [], [])}
    refused = {"items/multiple.xml": "only single-response items", "items/math.xml": "MathML (<math>) is not supported",
               "items/spacing.xml": "two options are the same", "items/five.xml": "this one has 5",
               "items/noalt.xml": "has no text alternative"}
    return package(version, items, files), expect, {}, refused


def metadata(version: str):
    """LOM taxa: this program's syllabus is read; another classification's numeric taxon is not."""
    items = {
        "items/ours.xml": document(version, "our-taxon", "<p>Which is a database language?</p>"
                                   + choices("SQL", "HTML", "CSS", "SVG", key="A"), key="A"),
        "items/acm.xml": document(version, "acm-taxon", "<p>Which sorts in place?</p>"
                                  + choices("Heap sort", "Merge sort", "Counting sort", "Radix sort", key="A"),
                                  key="A"),
    }
    meta = {"items/ours.xml": lom("it-passport syllabus", "21"), "items/acm.xml": lom("ACM CCS", "10")}
    other = ('<resource identifier="t1" type="imsqti_test_xmlv2p1" href="test.xml"><file href="test.xml"/></resource>'
             '<resource identifier="x1" type="imslti_xmlv1p0" href="tool.xml"><file href="tool.xml"/></resource>')
    expect = {"items/ours.xml": ("our-taxon", [], []),
              "items/acm.xml": ("acm-taxon", [], ["LOM taxon '10' of 'ACM CCS' is not a category"])}
    return package(version, items, metadata=meta, other=other), expect, {}


CORPUS = {"incidental": incidental, "shared-identifier": shared_identifier, "fixed-choices": fixed_choices,
          "stimuli": stimuli, "feedback-and-rubrics": feedback_and_rubrics, "layout": layout, "refusals": refusals,
          "metadata": metadata}
# Shapes found in the wild that their version's schema refuses: <br/> straight in the item body, role= in
# QTI 2.1 (ARIA came with 2.2); and the MathML schema is not bundled.
NOT_VALIDATED = {"items/br.xml", "items/math.xml", "2.1 items/layout.xml"}
CATEGORY = 14  # the importer's category for items whose manifest names none


def source_texts(data: bytes) -> list[str]:
    """Every piece of text of a source document (collapsed), to find again in what was imported."""
    root = fromstring(data)
    out = []
    for element in root.iter():
        name = element.tag.rsplit("}", 1)[-1]
        if name in ("value", "qti-value"):  # the correct response: an identifier, not text
            continue
        for text in (element.text, element.tail):
            text = qti.collapse(text or "")
            if text and text not in ("x  y",):
                out.append(text)
    return out


def stimulus_identifier(data: bytes) -> str | None:
    root = fromstring(data)
    return root.get("identifier") or root.get("id")


def imported_text(content) -> str:
    parts = [content.stem, *content.options, content.rationale, content.instructions, content.title]
    if content.stimulus:
        parts += [content.stimulus["title"], content.stimulus["text"]]
    if content.figure:
        parts.append(content.figure["alt"])
    if content.table:
        parts += [c for row in [content.table["header"], *content.table["rows"]] for c in row]
    return qti.collapse(" ".join(parts))


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", CORPUS)
def test_every_item_of_the_corpus_is_imported_or_refused_with_a_reason_and_nothing_is_dropped_unsaid(
        banks, program, name, version):
    made = CORPUS[name](version)
    data, expect, checks = made[:3]
    refused = made[3] if len(made) > 3 else {}
    files = {n: zipfile.ZipFile(io.BytesIO(data)).read(n) for n in zipfile.ZipFile(io.BytesIO(data)).namelist()}
    # The corpus is real-world-shaped: its item documents are valid QTI of their version.
    for path in expect.keys() | refused.keys():
        if path in files and not {path, f"{version} {path}"} & NOT_VALIDATED:
            assert schema_errors(ITEM_SCHEMAS[version], files[path]) == [], path

    session = banks.new()
    report = qti.import_package(session, program, data, mode="valid", category=CATEGORY, name=name, **WHO)
    session.commit()
    outcomes = {o.where: o for o in report.items}
    rejected = {r.where: r.reason for r in report.rejected}
    listed = {p for p in files if p.endswith(".xml") and p != "imsmanifest.xml" and "stimuli/" not in p}
    assert outcomes.keys() | rejected.keys() == listed and not outcomes.keys() & rejected.keys()
    for path, reason in refused.items():
        assert reason in rejected[path], (path, rejected.get(path))
    assert set(rejected) == set(refused), rejected

    for path, (code, kept, changed) in expect.items():
        if path not in files:
            continue
        outcome = outcomes[path]
        assert outcome.code == code
        for text in kept:
            assert any(text in k for k in outcome.kept), (path, text, outcome.kept)
        for text in changed:
            assert any(text in c for c in outcome.changed), (path, text, outcome.changed)
        entry = bank.entry(session, code)
        assert entry is not None and entry.item.status == "draft"
        if code in checks:
            assert checks[code](entry.content), (code, entry.content)
        # Nothing dropped in silence: every text of the source (and its stimulus) is in the imported content.
        texts = source_texts(files[path])
        if entry.content.stimulus:
            texts += [t for n, d in files.items() if "stimuli/" in n and stimulus_identifier(d) == entry.content
                      .stimulus["identifier"] for t in source_texts(d)]
            assert len(texts) > len(source_texts(files[path])), "the stimulus's own text was checked"
        missing = [t for t in texts if t not in imported_text(entry.content)]
        assert missing == [], (path, missing)

    # What was imported exports valid and comes back the same.
    if report.accepted:
        exported = qti.export_package(session, program, version=version, **WHO)
        with zipfile.ZipFile(io.BytesIO(exported)) as archive:
            for member in archive.namelist():
                if member.startswith("items/") and member.endswith(".xml"):
                    assert schema_errors(ITEM_SCHEMAS[version], archive.read(member)) == [], member
        other = banks.new()
        again = qti.import_package(other, program, exported, **WHO)
        assert again.rejected == []
        assert ({e.item.code: (e.item.category, e.content) for e in bank.browse(other)}
                == {e.item.code: (e.item.category, e.content) for e in bank.browse(session)})


def test_the_syllabus_taxon_is_read_and_a_foreign_one_is_not(banks, program):
    session = banks.new()
    data = metadata("2.1")[0]
    report = qti.import_package(session, program, data, category=CATEGORY, **WHO)
    assert report.landed
    assert bank.entry(session, "our-taxon").item.category == 21
    assert bank.entry(session, "acm-taxon").item.category == CATEGORY  # not 10
    assert any("skipped imsqti_test_xmlv2p1 resource t1" in n for n in report.notes)
    assert any("skipped resource x1 of type imslti_xmlv1p0" in n for n in report.notes)


def test_a_package_mixing_qti_20_and_21_items_is_refused_whole_in_mode_all(banks, program):
    session = banks.new()
    items = {"items/new.xml": document("2.1", "new-item", "<p>Which?</p>" + choices(*FOUR)),
             "items/old.xml": document("2.0", "old-item", "<p>Which?</p>" + choices(*FOUR))}
    data = package("2.1", items, types={"items/old.xml": TYPES["2.0"]})
    report = qti.import_package(session, program, data, category=CATEGORY, **WHO)
    assert not report.landed and report.accepted == []
    assert report.rejected == [qti.Rejected("items/old.xml", "QTI 2.0 items are not supported (QTI 2.1, 2.2 and 3.0 "
                                                             "are)")]
    assert report.summary == ("nothing imported: 1 item(s) refused and the import was all-or-nothing "
                              "(1 item(s) could have been taken)")
    # Labelled 2.1 in the manifest but written in 2.0: refused as well, with the reason.
    data = package("2.1", {"items/old.xml": items["items/old.xml"]})
    report = qti.import_package(session, program, data, category=CATEGORY, mode="valid", **WHO)
    assert report.rejected[0].reason.startswith("QTI 2.0 items are not supported")
    assert report.summary == "nothing imported: 1 item(s) refused"


def test_the_cli_prints_per_item_what_was_kept_changed_and_refused(tmp_path, monkeypatch, program):
    (tmp_path / "corpus.zip").write_bytes(refusals("3.0")[0])
    (tmp_path / "shared.zip").write_bytes(shared_identifier("2.1")[0])
    with own_cbt(tmp_path, monkeypatch, ["db", "upgrade"], ["sample", "load"]) as run:
        output = run("items", "import", str(tmp_path / "corpus.zip"), "--category", "14", code=1)
        assert "refused items/math.xml: MathML (<math>) is not supported" in output
        assert "items/good.xml -> good: kept stem, options, key" in output
        assert "nothing imported: 5 item(s) refused and the import was all-or-nothing" in output
        output = run("items", "import", str(tmp_path / "shared.zip"), "--category", "14")
        assert "items/q2.xml -> choice-2: kept" in output
        assert ("  changed: identifier 'choice' is shared by 5 items of the package: imported as code choice-2"
                in output)
        assert "5 item(s) imported" in output
