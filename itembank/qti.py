"""IMS QTI content packages: single-response choice items in QTI 2.1, 2.2 and 3.0.

A package is a zip with ``imsmanifest.xml`` (IMS Content Packaging) listing
item resources (``imsqti_item_xmlv2p1``, ``..v2p2``, ``..v3p0``) and their
files, as TAO and other tools export them. What an item may hold here:

* the stem: paragraphs, headings, ``<br/>``, lists (kept as lines) and
  ``<pre>`` (kept with its spacing); inline markup is kept as its text and said
  so; a layout table (``role="presentation"``) is read as its cells' text;
* at most one data ``<table>`` and at most one figure (``<img>`` or an
  ``<object>`` of an image type, in the body or the prompt), a file of the
  package with its text alternative; visually hidden text beside a figure
  becomes part of its alternative;
* one ``choiceInteraction`` with ``maxChoices="1"`` and as many text choices as
  the program's options, its ``prompt`` ending the stem; the ``shuffle`` flag,
  ``fixed`` choices and the choice identifiers are kept;
* a shared stimulus (passage): QTI 3.0 ``qti-assessment-stimulus-ref``, or in
  QTI 2.x an XInclude of shared content, kept as text and shown with the item;
* ``rubricBlock``: for the candidate, instructions shown with the item; for
  scorers and tutors (and authors), the rationale; feedback (``modalFeedback``,
  ``feedbackBlock``, ``feedbackInline``) is kept in the rationale, and said so;
* the title, the language (``xml:lang``) and, in a package of this engine, the
  item code (IEEE LOM ``general/identifier`` in the manifest).

What cannot be kept is refused with its reason; what is kept in another form is
listed per item in the report (:class:`~itembank.exchange.ItemOutcome`).

The syllabus category travels in the manifest as IEEE LOM classification, read
only from a taxon path whose source names this program's syllabus; an item
without one takes the category the importer gives, or is refused.

Every XML document is parsed by defusedxml with DTDs forbidden, so entity
expansion ("billion laughs") and external entities are refused; the zip's
size, member count and paths are checked before anything is read. Exports are
deterministic: the same bank gives the same zip, byte for byte.
"""
from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import io
import posixpath
import re
import zipfile
import zlib
from dataclasses import dataclass
from xml.etree.ElementTree import Element, SubElement, tostring

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from sqlalchemy import select
from sqlalchemy.orm import Session

from itembank.bank import BankEntry, browse, check_content_for_program
from itembank.content import FIGURE_TYPES, IDENTIFIER, ContentError, ItemContent, LanguageVersion
from itembank.exchange import ImportReport, ItemOutcome, Rejected, check_mode, create_draft
from itembank.models import Item
from itembank.program import ExamProgram
from persistence import audit
from persistence.errors import DomainError, InvalidInput, NotFound


@dataclass(frozen=True)
class QtiVersion:
    number: str
    namespace: str
    item_type: str
    cp_namespace: str
    schema: str  # the manifest's <schema>
    schema_version: str
    match_correct: str


VERSIONS = {v.number: v for v in (
    QtiVersion("2.1", "http://www.imsglobal.org/xsd/imsqti_v2p1", "imsqti_item_xmlv2p1",
               "http://www.imsglobal.org/xsd/imscp_v1p1", "QTIv2.1 Package", "1.0.0",
               "http://www.imsglobal.org/question/qti_v2p1/rptemplates/match_correct"),
    QtiVersion("2.2", "http://www.imsglobal.org/xsd/imsqti_v2p2", "imsqti_item_xmlv2p2",
               "http://www.imsglobal.org/xsd/imscp_v1p1", "QTIv2.2 Package", "1.0.0",
               "http://www.imsglobal.org/question/qti_v2p2/rptemplates/match_correct"),
    QtiVersion("3.0", "http://www.imsglobal.org/xsd/imsqtiasi_v3p0", "imsqti_item_xmlv3p0",
               "http://www.imsglobal.org/xsd/qti/qtiv3p0/imscp_v1p1", "QTI Package", "3.0.0",
               "https://purl.imsglobal.org/spec/qti/v3p0/rptemplates/match_correct.xml"),
)}
ITEM_NAMESPACES = {v.namespace: v.number for v in VERSIONS.values()}
ITEM_TYPES = {v.item_type: v.number for v in VERSIONS.values()}
# Versions this engine does not read, named so that their items are refused, never skipped.
OLD_NAMESPACES = {"http://www.imsglobal.org/xsd/imsqti_v2p0": "QTI 2.0",
                  "http://www.imsglobal.org/xsd/ims_qtiasiv1p2": "QTI 1.2"}
OLD_ITEM_TYPES = {"imsqti_item_xmlv2p0": "QTI 2.0", "imsqti_xmlv1p2": "QTI 1.2", "imsqti_item_xmlv1p2": "QTI 1.2",
                  "imsqti_xmlv1p1": "QTI 1.1"}
# Resources that serve items (media, shared stimuli, response templates): no note when not items.
SUPPORT_TYPES = ("webcontent", "associatedcontent", "controlfile", "imsqti_stimulus_xml", "imsqti_rptemplate",
                 "imsqti_responseprocessing", "imsqti_fragment", "imsqti_outcomes", "imsqti_metadata")
STIMULUS_TYPE = "imsqti_stimulus_xmlv3p0"
LOM = "http://ltsc.ieee.org/xsd/LOM"
XINCLUDE = "http://www.w3.org/2001/XInclude"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
MATCH_CORRECT = {number: v.match_correct for number, v in VERSIONS.items()}

MAX_PACKAGE_BYTES = 50 * 1024 * 1024  # uncompressed
MAX_MEMBERS = 5000
MAX_XML_BYTES = 2 * 1024 * 1024
MAX_XML_DEPTH = 100  # elements inside one another; real items nest a dozen deep
MAX_RESOURCES = 2000  # item resources one manifest may list
READ_CHUNK = 64 * 1024
MAX_CODE = 32  # Item.code
EXTENSION_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
                   ".svg": "image/svg+xml"}
TYPE_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/svg+xml": ".svg"}
NCNAME = IDENTIFIER
# Inline elements read as their text; those whose look or meaning the bank cannot keep are named in the report.
INLINE_PLAIN = {"span", "abbr", "cite", "dfn", "bdi", "bdo", "label", "time", "data"}
INLINE_FORMATTING = {"b", "strong", "i", "em", "u", "s", "mark", "small", "big", "tt", "del", "ins", "sub", "sup",
                     "code", "kbd", "samp", "var", "a", "q"}
INLINE = INLINE_PLAIN | INLINE_FORMATTING | {"ruby"}
BLOCK_TEXT = {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "address", "section", "article",
              "header", "footer", "aside", "nav", "figure", "figcaption", "contentBody", "stimulusBody", "caption"}
# Classes that hide text on screen but leave it to screen readers (HTML, Bootstrap, QTI 3.0 shared vocabulary).
VISUALLY_HIDDEN = {"visually-hidden", "visuallyhidden", "sr-only", "qti-visually-hidden", "screen-reader-only"}
HIDDEN = {"qti-hidden", "hidden"}
HTML_SPACE = re.compile(r"[ \t\n\r\f]+")  # HTML collapses these, not U+3000 or no-break spaces


class QTIError(InvalidInput):
    """A package or item that cannot be taken; the message says why."""


def _local(tag: str) -> str:
    """The canonical QTI 2 name of an element or attribute of any version.

    QTI 3.0 writes ``qti-choice-interaction`` and ``max-choices`` where QTI 2
    writes ``choiceInteraction`` and ``maxChoices``.
    """
    name = tag.rsplit("}", 1)[-1]
    if name.startswith("qti-"):
        name = name[4:]
    if "-" in name:
        head, *rest = name.split("-")
        name = head + "".join(part[:1].upper() + part[1:] for part in rest)
    return name


def _namespace(tag: str) -> str:
    return tag[1:].split("}")[0] if tag.startswith("{") else ""


def _attr(element: Element, name: str) -> str | None:
    for key, value in element.attrib.items():
        if _local(key) == name:
            return value
    return None


def _children(element: Element, name: str) -> list[Element]:
    return [child for child in element if _local(child.tag) == name]


def _find(element: Element, name: str) -> Element | None:
    for child in element.iter():
        if _local(child.tag) == name:
            return child
    return None


def _classes(element: Element) -> set[str]:
    return set((element.get("class") or "").split())


def collapse(text: str) -> str:
    """Text as HTML lays it out: runs of spaces, tabs and newlines become one space."""
    return HTML_SPACE.sub(" ", text).strip(" ")


def parse_xml(data: bytes, where: str) -> Element:
    """Parse untrusted XML: no DTD (hence no entity expansion, no external entities)."""
    if len(data) > MAX_XML_BYTES:
        raise QTIError("{where}: {count} KiB of XML is more than the {max_xml_bytes} KiB allowed", where=where,
                       count=len(data) // 1024, max_xml_bytes=MAX_XML_BYTES // 1024)
    data = _as_utf8(data, where)
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as error:
        raise QTIError("{where}: refused unsafe XML ({name}: DTDs and entities are not allowed)", where=where,
                       name=type(error).__name__) from None
    except Exception as error:  # ElementTree.ParseError and expat errors
        raise QTIError("{where}: not well-formed XML ({error})", where=where, error=error) from None
    _check_depth(root, where)
    return root


# The XML declaration's encoding, e.g. <?xml version="1.0" encoding="Shift_JIS"?>.
DECLARED_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
EXPAT_ENCODINGS = {"utf-8", "utf8", "utf-16", "utf16", "us-ascii", "ascii", "iso-8859-1", "latin-1", "latin1"}


def _as_utf8(data: bytes, where: str) -> bytes:
    """The document in UTF-8 with its declaration saying so, when it declares an encoding the XML
    parser cannot read by itself (Shift_JIS, EUC-JP and ISO-2022-JP, common in Japanese tools)."""
    declared = DECLARED_ENCODING.match(data)
    if declared is None or declared.group(1).decode().lower() in EXPAT_ENCODINGS:
        return data
    name = declared.group(1).decode()
    try:
        text = data.decode(name)
    except LookupError:
        raise QTIError("{where}: the encoding {name} is not one this server reads", where=where, name=name) from None
    except UnicodeDecodeError as error:
        raise QTIError("{where}: the document is not valid {name} (byte {start})", where=where, name=name,
                       start=error.start) from None
    start, end = declared.span(1)
    return (data[:start].decode("ascii", "replace") + "UTF-8" + text[len(data[:end].decode(name)):]).encode("utf-8")


def _check_depth(root: Element, where: str) -> None:
    """Refuse elements nested deeper than :data:`MAX_XML_DEPTH` (the readers below recurse)."""
    level, depth = [root], 1
    while level:
        if depth > MAX_XML_DEPTH:
            raise QTIError("{where}: elements are nested more than {max_xml_depth} deep", where=where,
                           max_xml_depth=MAX_XML_DEPTH)
        level = [child for element in level for child in element]
        depth += 1


@dataclass(frozen=True)
class ParsedItem:
    identifier: str
    content: ItemContent
    version: str
    kept: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()


class _Reader:
    """Reads one item document's content into the bank's form, noting what it kept and changed.

    Text is read as lines: an inline run collapses its spacing as HTML does and
    breaks at ``<br/>``; ``<pre>`` keeps its spacing and line breaks.
    """

    def __init__(self, where: str, read_file):
        self.where, self.read_file = where, read_file
        self.kept: list[str] = []
        self.changed: list[str] = []
        self.stem: list[str] = []
        self.rationale: list[str] = []
        self.instructions: list[str] = []
        self.hidden: list[str] = []
        self.table: dict | None = None
        self.figure: dict | None = None
        self.figure_at: int | None = None  # stem lines read before the figure
        self.stimulus: dict | None = None
        self.interaction: Element | None = None
        self.formatting: set[str] = set()

    def note(self, text: str, *, kept: bool = False) -> None:
        target = self.kept if kept else self.changed
        if text not in target:
            target.append(text)

    # ---- text ----------------------------------------------------------------------------------

    def flow(self, element: Element, sink: list[str], context: str) -> None:
        """The mixed content of ``element`` as lines appended to ``sink``.

        ``context`` says what may occur: "body" (the item body), "prompt" and "cell" (of a
        layout table) may hold the figure; only "body" holds tables, interactions and rubric.
        """
        segments: list[list[str]] = [[]]  # the open inline run, split at <br/>
        figures = context in ("body", "prompt", "cell")

        def flush() -> None:
            lines = [collapse("".join(parts)) for parts in segments]
            while lines and not lines[0]:
                lines.pop(0)
            while lines and not lines[-1]:
                lines.pop()
            sink.extend(lines)
            segments[:] = [[]]

        def walk(node: Element, inline_only: bool, ruby: bool = False) -> None:
            if node.text:
                segments[-1].append(node.text)
            for child in node:
                name = _local(child.tag)
                if self._hidden(child):
                    pass
                elif name == "br":
                    segments.append([])
                elif name == "rt" and ruby:
                    segments[-1].append("(" + collapse("".join(child.itertext())) + ")")
                    self.note("ruby kept as text with its reading in parentheses")
                elif name in INLINE or name in ("rt", "rp"):
                    if name in INLINE_FORMATTING:
                        self.formatting.add(name)
                    quote = name == "q"
                    if quote:
                        segments[-1].append("\u201c")
                    walk(child, True, name == "ruby" and not _children(child, "rp"))
                    if quote:
                        segments[-1].append("\u201d")
                elif name in ("img", "object") and figures:
                    flush()
                    self.take_figure(child, len(sink) if sink is self.stem else None)
                elif name == "feedbackInline":
                    self.feedback(child, "feedbackInline")
                elif inline_only:
                    raise QTIError(self._unsupported(name, context))
                else:
                    flush()
                    self.block(child, sink, context)
                if child.tail:
                    segments[-1].append(child.tail)

        walk(element, False)
        flush()

    def block(self, element: Element, sink: list[str], context: str) -> None:
        name = _local(element.tag)
        if name == "pre":
            text = "".join(self._pre_text(element))
            if text.startswith("\n"):  # HTML drops a newline right after <pre>
                text = text[1:]
            sink.extend(text.split("\n"))
            self.note("preformatted text, with its spacing", kept=True)
        elif name in BLOCK_TEXT:
            self.flow(element, sink, context)
        elif name in ("ul", "ol"):
            number = 0
            for entry in element:
                if _local(entry.tag) != "li":
                    raise QTIError("<{tag}> in a list is not supported", tag=_local(entry.tag))
                number += 1
                lines: list[str] = []
                self.flow(entry, lines, "text" if context not in ("body", "prompt") else context)
                if lines:
                    lines[0] = (f"{number}. " if name == "ol" else "\u2022 ") + lines[0]
                    sink.extend(lines)
            self.note("a list kept as lines of text")
        elif name == "dl":
            for entry in element:
                lines = []
                self.flow(entry, lines, "text")
                sink.extend(lines)
            self.note("a definition list kept as lines of text")
        elif name == "hr":
            self.note("a horizontal rule left out")
        elif name == "table":
            if (element.get("role") or "").lower() in ("presentation", "none"):
                for row in element.iter():
                    if _local(row.tag) in ("td", "th"):
                        self.flow(row, sink, "cell" if context == "body" else context)
                self.note("a layout table (role=presentation) read as the text of its cells, in reading order")
            elif context != "body":
                raise QTIError("a table {where_in} is not supported", where_in=self._where_name(context))
            else:
                if self.table is not None:
                    raise QTIError("more than one table in the stem")
                self.table = self._data_table(element)
                self.note("table", kept=True)
        elif name in ("img", "object"):
            if context not in ("body", "prompt", "cell"):
                raise QTIError("a figure {where_in} is not supported", where_in=self._where_name(context))
            self.take_figure(element, len(sink) if sink is self.stem else None)
        elif name == "choiceInteraction" and context == "body":
            if self.interaction is not None:
                raise QTIError("more than one choiceInteraction")
            self.interaction = element
            for prompt in _children(element, "prompt"):
                self.flow(prompt, sink, "prompt")
        elif name == "rubricBlock" and context == "body":
            self.rubric(element)
        elif name == "feedbackBlock":
            self.feedback(element, "feedbackBlock")
        elif name == "include" and _namespace(element.tag) == XINCLUDE and context == "body":
            self.include(element)
        elif name == "stylesheet":
            self.note(f"stylesheet {element.get('href')} not used")
        else:
            raise QTIError(self._unsupported(name, context))

    def _pre_text(self, element: Element):
        yield element.text or ""
        for child in element:
            name = _local(child.tag)
            if name == "br":
                yield "\n"
            elif name in INLINE or name in ("rt", "rp"):
                yield from self._pre_text(child)
            else:
                raise QTIError("<{name}> inside <pre> is not supported", name=name)
            yield child.tail or ""

    def _hidden(self, element: Element) -> bool:
        classes = _classes(element)
        if classes & VISUALLY_HIDDEN:
            text = collapse("".join(element.itertext()))
            if text:
                self.hidden.append(text)
            return True
        if classes & HIDDEN:
            if collapse("".join(element.itertext())):
                self.note("text hidden from everyone (class " + ", ".join(sorted(classes & HIDDEN)) + ") left out")
            return True
        return False

    @staticmethod
    def _where_name(context: str) -> str:
        return {"choice": "in a choice", "rubric": "in a rubric block", "stimulus": "in a shared stimulus",
                "feedback": "in feedback", "prompt": "in the prompt", "cell": "in a layout table",
                "text": "in a list", "table cell": "in a table cell"}.get(context, "here")

    def _unsupported(self, name: str, context: str) -> str:
        if name == "math":
            return "MathML (<math>) is not supported"
        if name in ("templateBlock", "templateInline", "printedVariable"):
            return f"<{name}> (template items) is not supported"
        if name.endswith("Interaction"):
            return f"only items with exactly one choiceInteraction can be taken (found {name})"
        if context == "body":
            return f"<{name}> in the item body is not supported"
        return f"<{name}> {self._where_name(context)} is not supported"

    def _data_table(self, element: Element) -> dict:
        rows, header = [], None
        for tr in element.iter():
            if _local(tr.tag) != "tr":
                continue
            cells = [cell for cell in tr if _local(cell.tag) in ("th", "td")]
            if any(cell.get("colspan", "1") != "1" or cell.get("rowspan", "1") != "1" for cell in cells):
                raise QTIError("a table with merged cells (colspan, rowspan) is not supported")
            values = []
            for cell in cells:
                lines: list[str] = []
                self.flow(cell, lines, "table cell")
                values.append("\n".join(lines))
            if header is None and not rows and cells and all(_local(c.tag) == "th" for c in cells):
                header = values
            else:
                rows.append(values)
        for caption in _children(element, "caption"):
            lines = []
            self.flow(caption, lines, "table cell")
            if lines:
                self.stem.extend(lines)
                self.note("the table's caption kept as a line of the stem")
        if header is None:
            if not rows:
                raise QTIError("an empty table")
            header, rows = rows[0], rows[1:]
            self.note("the table's first row taken as its header")
        if any(len(r) != len(header) for r in rows):
            raise QTIError("a table whose rows differ in length is not supported")
        return {"header": header, "rows": rows}

    # ---- figure, rubric, feedback, stimulus -----------------------------------------------------

    def take_figure(self, element: Element, stem_lines: int | None) -> None:
        if self.figure is not None:
            raise QTIError("more than one figure in the stem")
        img = _local(element.tag) == "img"
        href = _attr(element, "src") if img else _attr(element, "data")
        if img:
            alt = collapse(_attr(element, "alt") or "")
        else:  # an object's content is its fallback text
            alt = collapse("".join(element.itertext()))
        if not href:
            raise QTIError("a figure without a source file")
        media_type = EXTENSION_TYPES.get(posixpath.splitext(href.lower())[1])
        if media_type is None:
            stated = _attr(element, "type") or "this type"
            raise QTIError("figure {href}: only {figure_types} figures are supported, not {stated}", href=href,
                           figure_types=', '.join(FIGURE_TYPES), stated=stated)
        if not alt and not self.hidden:
            raise QTIError("figure {href} has no text alternative (alt)", href=href)
        data = self.read_file(posixpath.normpath(posixpath.join(posixpath.dirname(self.where), href)))
        self.figure = {"media_type": media_type, "data": base64.b64encode(data).decode(), "alt": alt}
        self.figure_at = stem_lines
        self.note("figure", kept=True)

    def rubric(self, element: Element) -> None:
        views = set((_attr(element, "view") or "").split())
        lines: list[str] = []
        self.flow(element, lines, "rubric")
        if not lines:
            return
        if "candidate" in views:
            self.instructions.extend(lines)
            self.note("instructions for the candidate (rubric block), shown with the item", kept=True)
            if views - {"candidate"}:
                self.note("a rubric block for the candidate and " + ", ".join(sorted(views - {"candidate"}))
                          + " kept as instructions for the candidate")
        else:
            self.rationale.extend(lines)
            self.note("rationale (rubric block)", kept=True)
            if views - {"scorer", "tutor"}:
                self.note("a rubric block for " + (", ".join(sorted(views)) or "no stated view")
                          + " kept in the rationale")

    def feedback(self, element: Element, kind: str) -> None:
        lines: list[str] = []
        self.flow(element, lines, "feedback")
        if lines:
            outcome, value = _attr(element, "outcomeIdentifier"), _attr(element, "identifier")
            self.rationale.extend(lines)
            self.note(f"feedback ({kind} {outcome or ''}={value or ''}) kept in the rationale, which candidates "
                      "do not see")

    def include(self, element: Element) -> None:
        """QTI 2.x shared content: an XInclude of a package file holding the passage."""
        href = element.get("href")
        if not href:
            raise QTIError("an xi:include without href")
        if (element.get("parse") or "xml") != "xml":
            raise QTIError("an xi:include with parse=\"text\" is not supported")
        path = posixpath.normpath(posixpath.join(posixpath.dirname(self.where), href))
        root = parse_xml(self.read_file(path), path)
        body = root
        if _local(root.tag) == "assessmentStimulus":
            body = _find(root, "stimulusBody")
            if body is None:
                raise QTIError("shared stimulus {path} has no stimulus body", path=path)
        identifier = _attr(root, "identifier") or root.get("id") or posixpath.splitext(posixpath.basename(path))[0]
        title = _attr(root, "title") or root.get("label") or ""
        self.take_stimulus(identifier, title, body, path)

    def take_stimulus(self, identifier: str, title: str, body: Element, path: str) -> None:
        if self.stimulus is not None:
            raise QTIError("more than one shared stimulus")
        lines: list[str] = []
        self.flow(body, lines, "stimulus")
        if not lines:
            raise QTIError("shared stimulus {path} has no text", path=path)
        if not NCNAME.match(identifier):
            derived = re.sub(r"[^A-Za-z0-9_.-]", "_", identifier)
            derived = derived if NCNAME.match(derived) else "s_" + derived
            self.note(f"stimulus identifier {identifier!r} is not a QTI identifier: kept as {derived!r}")
            identifier = derived
        self.stimulus = {"identifier": identifier, "title": collapse(title), "text": "\n".join(lines)}
        self.note(f"shared stimulus {identifier}, shown with the item", kept=True)

    def stimulus_ref(self, element: Element) -> None:
        href = _attr(element, "href")
        if not href:
            raise QTIError("a stimulus reference without href")
        path = posixpath.normpath(posixpath.join(posixpath.dirname(self.where), href))
        root = parse_xml(self.read_file(path), path)
        if _local(root.tag) != "assessmentStimulus":
            raise QTIError("{path} is not an assessment stimulus (root <{tag}>)", path=path, tag=_local(root.tag))
        body = _find(root, "stimulusBody")
        if body is None:
            raise QTIError("shared stimulus {path} has no stimulus body", path=path)
        self.take_stimulus(_attr(element, "identifier") or _attr(root, "identifier") or "",
                           _attr(element, "title") or _attr(root, "title") or "", body, path)


def parse_item(data: bytes, where: str, read_file, option_count: int,
               default_choice_ids: tuple[str, ...] = ()) -> ParsedItem:
    """One QTI item document as content; ``read_file(path)`` gives the bytes of a package file.

    ``default_choice_ids`` are the identifiers this engine writes (kept as ``()``).
    """
    root = parse_xml(data, where)
    namespace = _namespace(root.tag)
    if namespace in OLD_NAMESPACES:
        raise QTIError("{standard} items are not supported (QTI 2.1, 2.2 and 3.0 are)",
                       standard=OLD_NAMESPACES[namespace])
    version = ITEM_NAMESPACES.get(namespace)
    if _local(root.tag) != "assessmentItem" or version is None:
        raise QTIError("not a QTI 2.1, 2.2 or 3.0 assessment item (root <{tag}>)", tag=root.tag)
    identifier = (_attr(root, "identifier") or "").strip()
    if not identifier:
        raise QTIError("the item has no identifier")
    reader = _Reader(where, read_file)
    body = None
    for child in root:
        name = _local(child.tag)
        if name == "itemBody":
            body = child
        elif name in ("responseDeclaration", "outcomeDeclaration", "responseProcessing", "contextDeclaration"):
            pass
        elif name == "assessmentStimulusRef":
            reader.stimulus_ref(child)
        elif name == "modalFeedback":
            reader.feedback(child, "modalFeedback")
        elif name in ("templateDeclaration", "templateProcessing"):
            raise QTIError("<{name}> (template items) is not supported", name=name)
        elif name == "stylesheet":
            reader.note(f"stylesheet {child.get('href')} not used")
        elif name == "companionMaterialsInfo":
            reader.note("companion materials (calculator, rule, reference) not kept: the program provides none")
        elif name == "catalogInfo":
            reader.note("accessibility catalog (qti-catalog-info) not kept")
        else:
            reader.note(f"<{name}> left out")
    if body is None:
        raise QTIError("the item has no itemBody")
    others = sorted({_local(e.tag) for e in body.iter() if _local(e.tag).endswith("Interaction")
                     and _local(e.tag) != "choiceInteraction"})
    if others:
        raise QTIError("only items with exactly one choiceInteraction can be taken (found: {others})",
                       others=', '.join(others))
    reader.flow(body, reader.stem, "body")
    interaction = reader.interaction
    if interaction is None:
        raise QTIError("only items with exactly one choiceInteraction can be taken (found: none)")
    if (_attr(interaction, "maxChoices") or "1") != "1":
        raise QTIError("maxChoices is {given}: only single-response items can be taken",
                       given=_attr(interaction, 'maxChoices'))

    response_id = _attr(interaction, "responseIdentifier")
    declaration = next((d for d in root if _local(d.tag) == "responseDeclaration"
                        and _attr(d, "identifier") == response_id), None)
    if declaration is None:
        raise QTIError("no responseDeclaration for {response_id!r}", response_id=response_id)
    if _attr(declaration, "cardinality") != "single" or _attr(declaration, "baseType") != "identifier":
        raise QTIError("the response must have cardinality single and baseType identifier")
    correct = _find(declaration, "correctResponse")
    values = [collapse("".join(v.itertext())) for v in (correct if correct is not None else [])
              if _local(v.tag) == "value"]
    if len(values) != 1:
        raise QTIError("the item needs exactly one correct response value, found {count}", count=len(values))
    _check_processing(root, reader)

    choices = _children(interaction, "simpleChoice")
    if len(choices) != option_count:
        raise QTIError("the program's items have {option_count} options; this one has {count}",
                       option_count=option_count, count=len(choices))
    choice_ids = tuple((_attr(c, "identifier") or "").strip() for c in choices)
    if values[0] not in choice_ids:
        raise QTIError("the correct response {given!r} is not one of the choices", given=values[0])
    options = []
    for choice in choices:
        lines: list[str] = []
        try:
            reader.flow(choice, lines, "choice")
        except QTIError as error:
            raise QTIError("choice {identifier}: {error}", identifier=_attr(choice, 'identifier'), error=error) from None
        options.append("\n".join(lines))
    shuffle = (_attr(interaction, "shuffle") or "false").strip() == "true"
    fixed = tuple(i for i, c in enumerate(choices) if (_attr(c, "fixed") or "false").strip() == "true")
    if shuffle:
        reader.note("options shuffled in a sitting" + (", except the fixed " + ", ".join(
            choice_ids[i] for i in fixed) if fixed else ""), kept=True)
    else:
        reader.note("options in their given order (shuffle=\"false\")", kept=True)

    if reader.hidden:
        if reader.figure is None:
            raise QTIError("visually hidden text with no figure to describe is not supported")
        alt = " ".join(filter(None, [reader.figure["alt"], *reader.hidden]))
        reader.figure = {**reader.figure, "alt": alt}
        reader.note("visually hidden text kept as the figure's text alternative (alt)")
    if reader.figure_at is not None and any(line.strip() for line in reader.stem[reader.figure_at:]):
        reader.note("text after the figure is shown before it (the figure follows the stem)")
    if reader.formatting:
        reader.note("inline formatting kept as plain text: " + ", ".join(f"<{n}>" for n in sorted(reader.formatting)))
    stem = "\n".join(reader.stem).strip("\n")
    if not stem.strip():
        raise QTIError("the item has no stem text")
    title = collapse(_attr(root, "title") or "")
    language = (root.get(XML_LANG) or "").strip()
    if language:
        reader.note(f"language {language}", kept=True)
    try:
        content = ItemContent(
            stem=stem, options=tuple(options), key=choice_ids.index(values[0]),
            rationale="\n".join(reader.rationale).strip("\n"), table=reader.table, figure=reader.figure,
            stimulus=reader.stimulus, instructions="\n".join(reader.instructions).strip("\n"), title=title,
            language=language, choice_ids=() if choice_ids == default_choice_ids else choice_ids,
            shuffle=shuffle, fixed=fixed)
    except ContentError as error:
        raise QTIError(error.template, field=error.field, **error.params) from None
    return ParsedItem(identifier, content, version, tuple(reader.kept), tuple(reader.changed))


def _check_processing(root: Element, reader: _Reader) -> None:
    processing = _children(root, "responseProcessing")
    if not processing:
        reader.note("no response processing: scored as match correct (the key scores 1)")
        return
    template = _attr(processing[0], "template") or ""
    if template:
        name = template.rstrip("/").rsplit("/", 1)[-1].removesuffix(".xml")
        if name == "match_correct":
            return
        reader.note(f"response processing template {name} replaced by match correct (the key scores 1)")
    elif len(processing[0]):
        reader.note("the item's own response processing replaced by match correct (the key scores 1)")


class Package:
    """A zip content package, checked before any member is read, and read with hard limits.

    Nothing the zip declares is trusted: a member is inflated in chunks and refused as soon as
    it outgrows its declared size or the package's budget of inflated bytes, so a zip bomb
    costs at most :data:`MAX_PACKAGE_BYTES` of memory; every read counts against the budget,
    so a manifest that names one large file many times runs out of it too.
    """

    def __init__(self, data: bytes, name: str = "package"):
        self.name = name
        self.inflated = 0
        try:
            self.zip = zipfile.ZipFile(io.BytesIO(data))
            members = self.zip.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as error:
            raise QTIError("{name}: not a zip file, or a damaged one ({error})", name=name, error=error) from None
        if len(members) > MAX_MEMBERS:
            raise QTIError("{name}: {count} files is more than the {max_members} allowed", name=name,
                           count=len(members), max_members=MAX_MEMBERS)
        if sum(m.file_size for m in members) > MAX_PACKAGE_BYTES:
            raise QTIError("{name}: more than {max_package_bytes} MiB uncompressed", name=name,
                           max_package_bytes=MAX_PACKAGE_BYTES // (1024 * 1024))
        self.files = {}
        for member in members:
            path = posixpath.normpath(member.filename)
            if member.filename.startswith("/") or path.startswith("..") or "\\" in member.filename:
                raise QTIError("{name}: unsafe path {filename!r} in the zip", name=name, filename=member.filename)
            if member.flag_bits & 0x1:
                raise QTIError("{name}: {filename} is encrypted; packages must not be", name=name,
                               filename=member.filename)
            if member.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise QTIError("{name}: {filename} uses compression method {compress_type}; only stored and deflated "
                               "members are read", name=name, filename=member.filename,
                               compress_type=member.compress_type)
            if member.is_dir():
                continue
            if path in self.files:
                raise QTIError("{name}: {path} is in the zip twice; which one is meant cannot be told", name=name,
                               path=path)
            self.files[path] = member

    def read(self, path: str) -> bytes:
        path = posixpath.normpath(path)
        member = self.files.get(path)
        if member is None:
            raise QTIError("file {path} is not in the package", path=path)
        budget = MAX_PACKAGE_BYTES - self.inflated
        limit = min(member.file_size, budget)
        chunks, size = [], 0
        try:
            with self.zip.open(member) as stream:
                while chunk := stream.read(min(READ_CHUNK, limit - size + 1)):
                    size += len(chunk)
                    if size > limit:
                        if size > budget:
                            raise QTIError("{name}: more than {max_package_bytes} MiB would be inflated; the package is refused",
                                           name=self.name, max_package_bytes=MAX_PACKAGE_BYTES // (1024 * 1024))
                        raise QTIError("file {path}: it inflates to more than the size the zip declares", path=path)
                    chunks.append(chunk)
        except QTIError:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, RuntimeError, NotImplementedError,
                OSError) as error:
            raise QTIError("file {path}: the zip member is corrupt ({error})", path=path, error=error) from None
        self.inflated += size
        if size != member.file_size:
            raise QTIError("file {path}: its size does not match the zip directory", path=path)
        return b"".join(chunks)


@dataclass(frozen=True)
class ItemResource:
    href: str
    version: str
    category: int | None
    code: str | None = None  # the item code, in a package of this engine
    notes: tuple[str, ...] = ()


@dataclass
class Manifest:
    items: list[ItemResource]
    refused: list[Rejected]
    notes: list[str]


def manifest_resources(package: Package, program: ExamProgram | None = None) -> Manifest:
    """The manifest's item resources, the items it lists that cannot be read, and notes on what was skipped."""
    if "imsmanifest.xml" not in package.files:
        raise QTIError("{name}: no imsmanifest.xml at the top of the package", name=package.name)
    root = parse_xml(package.read("imsmanifest.xml"), "imsmanifest.xml")
    if _local(root.tag) != "manifest":
        raise QTIError("imsmanifest.xml: the root element is not <manifest>")
    manifest = Manifest([], [], [])
    listed: set[str] = set()
    for resource in root.iter():
        if _local(resource.tag) != "resource":
            continue
        kind = _attr(resource, "type") or ""
        ident = _attr(resource, "identifier")
        href = _attr(resource, "href")
        if kind in OLD_ITEM_TYPES:
            manifest.refused.append(Rejected(href or f"resource {ident}", f"{OLD_ITEM_TYPES[kind]} items are not "
                                             "supported (QTI 2.1, 2.2 and 3.0 are)"))
            continue
        if kind not in ITEM_TYPES:
            if kind.startswith(("imsqti_test", "imsqti_assessment", "imsqti_section")):
                manifest.notes.append(f"skipped {kind} resource {ident}: only items are imported "
                                      "(the test's parts, order and rules are not)")
            elif not kind.startswith(SUPPORT_TYPES):
                manifest.notes.append(f"skipped resource {ident} of type {kind or 'none'}: not a QTI item")
            continue
        if not href:
            manifest.refused.append(Rejected(f"resource {ident}", "the item resource has no href"))
            continue
        href = posixpath.normpath(href)
        if href in listed:
            raise QTIError("imsmanifest.xml lists {href} more than once", href=href)
        listed.add(href)
        category, code, notes = _lom(resource, program)
        manifest.items.append(ItemResource(href, ITEM_TYPES[kind], category, code, tuple(notes)))
        if len(manifest.items) > MAX_RESOURCES:
            raise QTIError("imsmanifest.xml lists more than {max_resources} items; split the package",
                           max_resources=MAX_RESOURCES)
    if not manifest.items and not manifest.refused:
        raise QTIError("imsmanifest.xml lists no QTI 2.1, 2.2 or 3.0 item")
    return manifest


def syllabus_source(program: ExamProgram) -> str:
    return f"{program.code} syllabus"


def code_catalog(program: ExamProgram) -> str:
    return f"{program.code} item code"


def _string(element: Element | None) -> str:
    """A LOM CharacterString or LangString's text."""
    if element is None:
        return ""
    strings = [e for e in element.iter() if _local(e.tag) == "string"]
    return collapse("".join((strings[0] if strings else element).itertext()))


def _lom(resource: Element, program: ExamProgram | None) -> tuple[int | None, str | None, list[str]]:
    """The syllabus category, the item code and notes, from the resource's LOM metadata.

    A taxon is a category only under a taxon path whose source names this program's syllabus.
    """
    category, code, notes = None, None, []
    sources = {syllabus_source(program).casefold(), f"{program.name} syllabus".casefold()} if program else set()
    for element in resource.iter():
        name = _local(element.tag)
        if name == "taxonPath":
            source = _string(next((c for c in element if _local(c.tag) == "source"), None))
            for taxon in (t for t in element if _local(t.tag) == "taxon"):
                ident = _string(next((c for c in taxon if _local(c.tag) == "id"), None))
                if not ident:
                    continue
                if source.casefold() in sources and ident.isdigit():
                    category = int(ident)
                else:
                    notes.append(f"LOM taxon {ident!r} of {source or 'an unnamed source'!r} is not a category of "
                                 "this program's syllabus: not read as one")
        elif name == "identifier" and program is not None:
            catalog = _string(next((c for c in element if _local(c.tag) == "catalog"), None))
            if catalog == code_catalog(program):
                code = _string(next((c for c in element if _local(c.tag) == "entry"), None)) or None
    return category, code, notes


def _derived_code(identifier: str, taken: set[str]) -> str:
    """A code of at most 32 characters for ``identifier``, not in ``taken``."""
    base = identifier
    if len(base) > MAX_CODE:
        base = base[:MAX_CODE - 9] + "-" + hashlib.sha256(identifier.encode()).hexdigest()[:8]
    if base not in taken:
        return base
    number = 2
    while True:
        suffix = f"-{number}"
        candidate = base[:MAX_CODE - len(suffix)] + suffix
        if candidate not in taken:
            return candidate
        number += 1


def choice_labels(program: ExamProgram) -> tuple[str, ...]:
    """The labels whose names the choice identifiers take: the first language's that make QTI
    identifiers (choice_A rather than choice_1 for ア), so that they are the same in every language."""
    return next((labels for labels in (program.option_labels, *program.other_labels.values())
                 if all(NCNAME.match(f"choice_{label}") for label in labels)), program.option_labels)


def _unique(name: str, taken: set[str]) -> str:
    """``name``, or ``name-2``, ``name-3``... the first not in ``taken`` (without case); taken then."""
    candidate, number = name, 1
    while candidate.casefold() in taken:
        number += 1
        candidate = f"{name}-{number}"
    taken.add(candidate.casefold())
    return candidate


def default_choice_ids(labels: tuple[str, ...]) -> tuple[str, ...]:
    """The choice identifiers written for content that holds none: choice_A, choice_B, ..."""
    return tuple(f"choice_{label}" if NCNAME.match(f"choice_{label}") else f"choice_{i + 1}"
                 for i, label in enumerate(labels))


def import_package(session: Session, program: ExamProgram, data: bytes, *, actor: str, actor_role: str,
                   now: dt.datetime, mode: str = "all", category: int | None = None,
                   name: str = "package") -> ImportReport:
    """Import a QTI package's choice items as draft items (one transaction; the caller commits).

    mode "all": if any item is refused, nothing lands; "valid": the good ones land.
    ``category`` is the syllabus category for items whose manifest entry names none.
    The report lists every item: refused with the reason, or what it kept and changed.
    """
    check_mode(mode)
    report = ImportReport(mode)
    try:
        package = Package(data, name)
        manifest = manifest_resources(package, program)
    except QTIError as error:
        report.rejected.append(Rejected(name, str(error)))
        return report
    report.notes = manifest.notes
    report.rejected.extend(manifest.refused)
    existing = set(session.scalars(select(Item.code)))
    parsed_items: list[tuple[ItemResource, ParsedItem]] = []
    for resource in manifest.items:
        try:
            parsed = parse_item(package.read(resource.href), resource.href, package.read,
                                len(program.option_labels), default_choice_ids(choice_labels(program)))
            if parsed.version != resource.version:
                raise QTIError("the manifest says QTI {version} but the item is QTI {item_version}",
                               version=resource.version, item_version=parsed.version)
        except (QTIError, ContentError) as error:
            report.rejected.append(Rejected(resource.href, str(error)))
            continue
        parsed_items.append((resource, parsed))
    parsed_items = _merge_languages(parsed_items, report)

    # Codes: this engine's own (from the manifest), else the identifier; derived, from the package
    # alone (so that a second import meets the same codes), where too long or shared.
    sharing: dict[str, int] = {}
    for resource, parsed in parsed_items:
        if not resource.code:
            sharing[parsed.identifier] = sharing.get(parsed.identifier, 0) + 1
    assigned = {r.code for r, _ in parsed_items if r.code} | set(sharing)
    given: set[str] = set()  # identifiers already taken as codes by an item before
    good: list[tuple[ParsedItem, str, int, list[str]]] = []
    seen: set[str] = set()
    for resource, parsed in parsed_items:
        changed = list(resource.notes) + list(parsed.changed)
        try:
            if resource.code:
                code = resource.code
                if len(code) > MAX_CODE:
                    raise QTIError("item code {code!r} of the manifest has more than {max_code} characters", code=code,
                                   max_code=MAX_CODE)
            else:
                code, why = parsed.identifier, None
                if len(code) > MAX_CODE:
                    why = f"has more than {MAX_CODE} characters"
                elif code in given:
                    why = f"is shared by {sharing[code]} items of the package"
                given.add(parsed.identifier)
                if why:
                    code = _derived_code(parsed.identifier, assigned)
                    assigned.add(code)
                    changed.insert(0, f"identifier {parsed.identifier!r} {why}: imported as code {code}")
            if code in existing:
                raise QTIError("item {code} is already in the bank", code=code)
            if code in seen:
                raise QTIError("item {code} appears twice in the package", code=code)
            number = resource.category or category
            if number is None:
                raise QTIError("no syllabus category (none in the manifest; give one for the import)")
            try:
                program.category(number)
            except KeyError:
                raise QTIError("category {number} is not in the syllabus", number=number) from None
            content = parsed.content
            kept = ("stem", "options", "key") + parsed.kept
            if any(t.title == code for t in content.translations):
                content = dataclasses.replace(content, translations=tuple(
                    dataclasses.replace(t, title="") if t.title == code else t for t in content.translations))
            if content.title == code:
                content = dataclasses.replace(content, title="")
            elif content.title:
                kept += ("title",)
            check_content_for_program(program, code, content)
        except (QTIError, ContentError, DomainError) as error:
            report.rejected.append(Rejected(resource.href, str(error)))
            continue
        seen.add(code)
        good.append((dataclasses.replace(parsed, content=content), code, number, changed))
        report.items.append(ItemOutcome(resource.href, code, kept, tuple(changed)))
    if report.rejected and mode == "all":
        return report
    for parsed, code, number, _changed in good:
        create_draft(session, program, code=code, category=number, content=parsed.content,
                     actor=actor, actor_role=actor_role, now=now, audited=False,
                     note=f"imported from QTI {parsed.version} package {name}")
        report.accepted.append(code)
    report.landed = bool(good)
    audit.record(session, actor=actor, actor_role=actor_role, action="bank.import", subject="bank",
                 details={"format": "qti", "package": name, "accepted": report.accepted,
                          "rejected": len(report.rejected)}, at=now)
    return report


def _merge_languages(parsed_items: list[tuple[ItemResource, ParsedItem]], report: ImportReport
                     ) -> list[tuple[ItemResource, ParsedItem]]:
    """One item of each set of documents that are one item in several languages: the same code
    (this engine's manifest code, else the identifier), each with its own xml:lang. The first is
    the item's own language, the others its language versions; a version that is not the same
    item (another key, other choices, another figure) is refused."""
    groups: dict[str, list[int]] = {}
    for index, (resource, parsed) in enumerate(parsed_items):
        groups.setdefault(resource.code or parsed.identifier, []).append(index)
    merged: dict[int, tuple[ItemResource, ParsedItem]] = {}
    for indices in groups.values():
        languages = [parsed_items[i][1].content.language.casefold() for i in indices]
        if len(indices) == 1 or not all(languages) or len(set(languages)) != len(languages):
            merged.update({i: parsed_items[i] for i in indices})
            continue
        resource, parsed = parsed_items[indices[0]]
        content, kept = parsed.content, list(parsed.kept)
        for index in indices[1:]:
            other_resource, other = parsed_items[index]
            try:
                content = content.with_translation(_language_version(content, other.content, resource.href))
            except (QTIError, ContentError) as error:
                report.rejected.append(Rejected(other_resource.href, str(error)))
                continue
            kept.append(f"language version {other.content.language} ({other_resource.href})")
        merged[indices[0]] = (resource, dataclasses.replace(parsed, content=content, kept=tuple(kept)))
    return [merged[i] for i in sorted(merged)]


def _language_version(own: ItemContent, other: ItemContent, own_href: str) -> LanguageVersion:
    """``other`` (the same item in another language) as a language version of ``own``."""
    same = {"key": own.key == other.key, "choice identifiers": own.choice_ids == other.choice_ids,
            "shuffling": (own.shuffle, own.fixed) == (other.shuffle, other.fixed),
            "figure": (own.figure or {}).get("data") == (other.figure or {}).get("data")}
    differing = [name for name, equal in same.items() if not equal]
    if differing:
        raise QTIError("the {language} version is not the same item as {href} ({what} differ)",
                       language=other.language, href=own_href, what=", ".join(differing))
    if other.stimulus is not None and own.stimulus is None:
        raise QTIError("the {language} version has a passage that {href} does not have",
                       language=other.language, href=own_href)
    return LanguageVersion(
        language=other.language, stem=other.stem, options=other.options, rationale=other.rationale,
        table=other.table, figure_alt=other.figure["alt"] if other.figure else "",
        stimulus={"title": other.stimulus["title"], "text": other.stimulus["text"]} if other.stimulus else None,
        instructions=other.instructions, title=other.title)


# Export ---------------------------------------------------------------------------------------

def export_identifiers(codes: list[str]) -> dict[str, str]:
    """A QTI identifier (an NCName of at most 32 characters, distinct ignoring case) for each code.

    A code that is one already is kept; others are derived (the code itself travels in the manifest).
    """
    out: dict[str, str] = {}
    used: set[str] = set()
    for code in codes:
        ident = code
        if not NCNAME.match(ident) or len(ident) > MAX_CODE:
            ident = re.sub(r"[^A-Za-z0-9_.-]", "_", code)
            if not NCNAME.match(ident):
                ident = "i" + ident
        ident = _derived_code(ident, used) if ident.casefold() in used or len(ident) > MAX_CODE else ident
        while ident.casefold() in used:
            ident = _derived_code(ident + "_", used)
        used.add(ident.casefold())
        out[code] = ident
    return out


def _plain(line: str) -> bool:
    """Whether a line reads back the same from an HTML paragraph (no spacing that layout would collapse)."""
    return bool(line) and collapse(line) == line


def write_text(parent: Element, text: str, block: str | None = "p") -> None:
    """``text`` as XML content that :class:`_Reader` reads back unchanged.

    Lines whose spacing matters (indentation, runs of spaces, empty lines) go in
    ``<pre>``; the others are paragraphs (``block``), or the parent's own text when
    ``block`` is None and the text is one plain line.
    """
    lines = text.split("\n")
    if block is None and len(lines) == 1 and (_plain(lines[0]) or lines[0] == ""):
        parent.text = lines[0]
        return
    run: list[str] = []

    def flush_pre() -> None:
        if run:
            body = "\n".join(run)
            SubElement(parent, "pre").text = ("\n" + body) if body.startswith("\n") or run[0] == "" else body
            run.clear()

    for line in lines:
        if _plain(line):
            flush_pre()
            SubElement(parent, block or "p").text = line
        else:
            run.append(line)
    flush_pre()


def item_document(entry: BankEntry, version: str, labels: tuple[str, ...], figure_href: str | None,
                  identifier: str | None = None, stimulus_href: str | None = None,
                  content: ItemContent | None = None) -> bytes:
    """One item as a QTI ``version`` document: in its own language, or as ``content`` shows it
    (one of its language versions, :meth:`ItemContent.in_language`)."""
    namespace = VERSIONS[version].namespace
    v3 = version == "3.0"

    def name(qti2: str) -> str:
        if not v3:
            return qti2
        return "qti-" + re.sub(r"(?<!^)([A-Z])", lambda m: "-" + m.group(1).lower(), qti2)

    def attr(qti2: str) -> str:
        return re.sub(r"(?<!^)([A-Z])", lambda m: "-" + m.group(1).lower(), qti2) if v3 else qti2

    content = content or entry.content
    ident = identifier or export_identifiers([entry.item.code])[entry.item.code]
    attributes = {"xmlns": namespace}
    if stimulus_href and not v3:
        attributes["xmlns:xi"] = XINCLUDE
    attributes.update({"identifier": ident, "title": content.title or entry.item.code,
                       attr("timeDependent"): "false", "adaptive": "false"})
    if content.language:
        attributes["xml:lang"] = content.language
    root = Element(name("assessmentItem"), attributes)
    choice_ids = content.choice_ids or default_choice_ids(labels)
    declaration = SubElement(root, name("responseDeclaration"), {"identifier": "RESPONSE", "cardinality": "single",
                                                                 attr("baseType"): "identifier"})
    SubElement(SubElement(declaration, name("correctResponse")), name("value")).text = choice_ids[content.key]
    SubElement(root, name("outcomeDeclaration"), {"identifier": "SCORE", "cardinality": "single",
                                                  attr("baseType"): "float"})
    if content.stimulus and stimulus_href and v3:
        reference = {"identifier": content.stimulus["identifier"], "href": stimulus_href}
        if content.stimulus["title"]:
            reference["title"] = content.stimulus["title"]
        SubElement(root, name("assessmentStimulusRef"), reference)
    body = SubElement(root, name("itemBody"))
    if content.instructions:
        _rubric(body, content.instructions, "candidate", v3)
    if content.stimulus and stimulus_href and not v3:
        SubElement(body, "xi:include", {"href": stimulus_href})
    write_text(body, content.stem)
    if content.table:
        _table(body, content.table)
    if content.figure and figure_href:
        SubElement(SubElement(body, "p"), "img", {"src": figure_href, "alt": content.figure["alt"]})
    interaction = SubElement(body, name("choiceInteraction"), {
        attr("responseIdentifier"): "RESPONSE", "shuffle": "true" if content.shuffle else "false",
        attr("maxChoices"): "1"})
    for index, (ident_choice, option) in enumerate(zip(choice_ids, content.options)):
        choice = {"identifier": ident_choice}
        if index in content.fixed:
            choice["fixed"] = "true"
        write_text(SubElement(interaction, name("simpleChoice"), choice), option, None)
    if content.rationale:
        _rubric(body, content.rationale, "scorer", v3)
    SubElement(root, name("responseProcessing"), {"template": MATCH_CORRECT[version]})
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + tostring(root, encoding="unicode").encode()


def _rubric(body: Element, text: str, view: str, v3: bool) -> None:
    if v3:
        rubric = SubElement(body, "qti-rubric-block", {"use": "instructions" if view == "candidate" else "scoring",
                                                       "view": view})
        write_text(SubElement(rubric, "qti-content-body"), text)
    else:
        write_text(SubElement(body, "rubricBlock", {"view": view}), text)


def _table(body: Element, table: dict) -> None:
    element = SubElement(body, "table")
    if table["rows"]:
        head_row = SubElement(SubElement(element, "thead"), "tr")
        rows = table["rows"]
    else:  # QTI requires a tbody with a row: a header-only table is that row, of th cells
        head_row = None
        rows = []
    tbody = SubElement(element, "tbody")
    if head_row is None:
        head_row = SubElement(tbody, "tr")
    for cell in table["header"]:
        write_text(SubElement(head_row, "th"), str(cell), None)
    for row in rows:
        tr = SubElement(tbody, "tr")
        for cell in row:
            write_text(SubElement(tr, "td"), str(cell), None)


def stimulus_document(stimulus: dict, version: str, language: str) -> bytes:
    """A shared stimulus: a QTI 3.0 assessment stimulus, or QTI 2.x shared content (a div) to XInclude."""
    if version == "3.0":
        attributes = {"xmlns": VERSIONS[version].namespace, "identifier": stimulus["identifier"],
                      "title": stimulus["title"] or stimulus["identifier"]}
        if language:
            attributes["xml:lang"] = language
        root = Element("qti-assessment-stimulus", attributes)
        write_text(SubElement(root, "qti-stimulus-body"), stimulus["text"])
    else:
        attributes = {"xmlns": VERSIONS[version].namespace, "id": stimulus["identifier"]}
        if stimulus["title"]:
            attributes["label"] = stimulus["title"]
        root = Element("div", attributes)
        write_text(root, stimulus["text"])
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + tostring(root, encoding="unicode").encode()


def _write(package: zipfile.ZipFile, name: str, data: bytes) -> None:
    """A member with a fixed date, so that the same bank exports to the same bytes."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    package.writestr(info, data)


def export_package(session: Session, program: ExamProgram, *, version: str, actor: str, actor_role: str,
                   now: dt.datetime, codes: list[str] | None = None, status: str | None = None) -> bytes:
    """The chosen items (default: the whole bank, or those in ``status``) as a QTI package zip."""
    if version not in VERSIONS:
        raise InvalidInput("QTI version must be one of {versions}", versions=', '.join(VERSIONS))
    entries = browse(session, status=status)
    if codes:
        wanted = set(codes)
        entries = [e for e in entries if e.item.code in wanted]
        missing = wanted - {e.item.code for e in entries}
        if missing:
            raise NotFound("no such item(s): {missing}", missing=', '.join(sorted(missing)))
    qti = VERSIONS[version]
    identifiers = export_identifiers([e.item.code for e in entries])
    stimulus_files = _stimulus_files(entries)
    members: list[tuple[str, bytes]] = []
    resources = Element("resources")
    written_stimuli: set[str] = set()
    labels = choice_labels(program)
    # File and resource names in use: a language version's must not be another item's.
    taken = {ident.casefold() for ident in identifiers.values()} | {
        stimulus_id.casefold() for stimulus_id, _ in stimulus_files.values()}
    for entry in entries:
        ident = identifiers[entry.item.code]
        href = f"items/{ident}.xml"
        figure_href = None
        files = [href]
        if entry.content.figure:
            figure_name = f"{ident}{TYPE_EXTENSIONS[entry.content.figure['media_type']]}"
            figure_href = f"images/{figure_name}"
            members.append((f"items/{figure_href}", base64.b64decode(entry.content.figure["data"])))
            files.append(f"items/{figure_href}")
        stimulus_href = stimulus_id = None
        if entry.content.stimulus:
            stimulus_id, stimulus = stimulus_files[entry.item.code]
            stimulus_href = f"stimuli/{stimulus_id}.xml"
            if stimulus_id not in written_stimuli:
                written_stimuli.add(stimulus_id)
                members.append((f"items/{stimulus_href}", stimulus_document(stimulus, version,
                                                                            entry.content.language)))
                resource = SubElement(resources, "resource", {
                    "identifier": f"stimulus-{stimulus_id}",
                    "type": STIMULUS_TYPE if version == "3.0" else "webcontent",
                    "href": f"items/{stimulus_href}"})
                SubElement(resource, "file", {"href": f"items/{stimulus_href}"})
        members.append((href, item_document(entry, version, labels, figure_href, ident, stimulus_href)))
        resource = Element("resource", {"identifier": f"item-{ident}", "type": qti.item_type, "href": href})
        _lom_metadata(resource, program, entry.item.code, entry.item.category)
        for file in files:
            SubElement(resource, "file", {"href": file})
        if stimulus_id:
            SubElement(resource, "dependency", {"identifierref": f"stimulus-{stimulus_id}"})
        resources.append(resource)
        # Each other language: an item document of its own (xml:lang), the same code in the manifest,
        # the same figure file; a passage of its own where the version has one.
        for translation in entry.content.translations:
            shown = entry.content.in_language(translation.language)
            suffix = _unique(f"{ident}--{translation.language}", taken)
            t_href, t_files = f"items/{suffix}.xml", [f"items/{suffix}.xml", *files[1:]]
            t_stimulus_href, t_dependency = stimulus_href, stimulus_id
            if translation.stimulus is not None and stimulus_id:
                t_stimulus_href = f"stimuli/{suffix}.xml"
                t_dependency = f"{suffix}"
                members.append((f"items/{t_stimulus_href}", stimulus_document(shown.stimulus, version,
                                                                              translation.language)))
                stimulus_resource = SubElement(resources, "resource", {
                    "identifier": f"stimulus-{suffix}", "type": STIMULUS_TYPE if version == "3.0" else "webcontent",
                    "href": f"items/{t_stimulus_href}"})
                SubElement(stimulus_resource, "file", {"href": f"items/{t_stimulus_href}"})
            members.append((t_href, item_document(entry, version, labels, figure_href, ident, t_stimulus_href,
                                                  content=shown)))
            resource = Element("resource", {"identifier": f"item-{suffix}", "type": qti.item_type, "href": t_href})
            _lom_metadata(resource, program, entry.item.code, entry.item.category)
            for file in t_files:
                SubElement(resource, "file", {"href": file})
            if t_dependency:
                SubElement(resource, "dependency", {"identifierref": f"stimulus-{t_dependency}"})
            resources.append(resource)
    digest = hashlib.sha256()
    for member, data in members:
        digest.update(member.encode() + b"\0" + data)
    manifest = Element("manifest", {"xmlns": qti.cp_namespace, "identifier": f"cbt-export-{digest.hexdigest()[:16]}"})
    metadata = SubElement(manifest, "metadata")
    SubElement(metadata, "schema").text = qti.schema
    SubElement(metadata, "schemaversion").text = qti.schema_version
    SubElement(manifest, "organizations")
    manifest.append(resources)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as package:
        _write(package, "imsmanifest.xml", b'<?xml version="1.0" encoding="UTF-8"?>\n'
               + tostring(manifest, encoding="unicode").encode())
        for member, data in members:
            _write(package, member, data)
    audit.record(session, actor=actor, actor_role=actor_role, action="bank.export", subject="bank",
                 details={"format": f"qti {version}", "items": len(entries)}, at=now)
    return buffer.getvalue()


def _stimulus_files(entries: list[BankEntry]) -> dict[str, tuple[str, dict]]:
    """Per item code, the file name (and resource identifier) of its stimulus: one file per distinct stimulus.

    Items sharing a stimulus with the same text share the file; a different
    stimulus under a used identifier (a passage edited in one item only) gets a
    file of its own and keeps its identifier.
    """
    used = {e.content.stimulus["identifier"] for e in entries if e.content.stimulus}
    variants: dict[str, list[tuple[str, dict]]] = {}
    out: dict[str, tuple[str, dict]] = {}
    for entry in entries:
        stimulus = entry.content.stimulus
        if not stimulus:
            continue
        known = variants.setdefault(stimulus["identifier"], [])
        ident = next((i for i, s in known if s == stimulus), None)
        if ident is None:
            ident = stimulus["identifier"] if not known else _derived_code(stimulus["identifier"], used)
            used.add(ident)
            known.append((ident, stimulus))
        out[entry.item.code] = (ident, stimulus)
    return out


def _lom_metadata(resource: Element, program: ExamProgram, code: str, category: int) -> None:
    lom = SubElement(SubElement(resource, "metadata"), "lom", {"xmlns": LOM})
    identifier = SubElement(SubElement(lom, "general"), "identifier")
    SubElement(identifier, "catalog").text = code_catalog(program)
    SubElement(identifier, "entry").text = code
    classification = SubElement(lom, "classification")
    purpose = SubElement(classification, "purpose")
    SubElement(purpose, "source").text = "LOMv1.0"
    SubElement(purpose, "value").text = "discipline"
    path = SubElement(classification, "taxonPath")
    SubElement(SubElement(path, "source"), "string", {"language": "en"}).text = syllabus_source(program)
    taxon = SubElement(path, "taxon")
    SubElement(taxon, "id").text = str(category)
    SubElement(SubElement(taxon, "entry"), "string", {"language": "en"}).text = program.category(category).name
