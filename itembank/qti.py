"""IMS QTI content packages: single-response choice items in QTI 2.1, 2.2 and 3.0.

A package is a zip with ``imsmanifest.xml`` (IMS Content Packaging) listing
item resources (``imsqti_item_xmlv2p1``, ``..v2p2``, ``..v3p0``) and their
files, as TAO and other tools export them. What an item may hold here:

* itemBody paragraphs (the stem; inline markup is kept as text, ``<br/>`` as
  a line break), at most one ``<table>`` and at most one ``<img>`` (the figure,
  a file of the package, with its ``alt`` text);
* one ``choiceInteraction`` with ``maxChoices="1"`` and as many text choices as
  the program's options, its ``prompt`` ending the stem;
* ``responseDeclaration`` cardinality single, baseType identifier, with one
  correct value;
* ``rubricBlock`` (view scorer or tutor): the rationale.

The syllabus category travels in the manifest as IEEE LOM classification
(taxon id = middle category number under the program's syllabus as source);
an item without one takes the category the importer gives, or is refused.

Every XML document is parsed by defusedxml with DTDs forbidden, so entity
expansion ("billion laughs") and external entities are refused; the zip's
size, member count and paths are checked before anything is read.
"""
from __future__ import annotations

import base64
import datetime as dt
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
from itembank.content import FIGURE_TYPES, ContentError, ItemContent
from itembank.exchange import ImportReport, Rejected, check_mode, create_draft
from itembank.models import Item
from itembank.program import ExamProgram
from persistence import audit
from persistence.errors import DomainError, InvalidInput, NotFound

VERSIONS = {
    "2.1": ("http://www.imsglobal.org/xsd/imsqti_v2p1", "imsqti_item_xmlv2p1",
            "http://www.imsglobal.org/xsd/imscp_v1p1", "QTIv2.1 Package"),
    "2.2": ("http://www.imsglobal.org/xsd/imsqti_v2p2", "imsqti_item_xmlv2p2",
            "http://www.imsglobal.org/xsd/imscp_v1p1", "QTIv2.2 Package"),
    "3.0": ("http://www.imsglobal.org/xsd/imsqtiasi_v3p0", "imsqti_item_xmlv3p0",
            "http://www.imsglobal.org/xsd/qti/qtiv3p0/imscp_v1p1", "QTI Package"),
}
ITEM_NAMESPACES = {ns: version for version, (ns, *_rest) in VERSIONS.items()}
ITEM_TYPES = {kind: version for version, (_ns, kind, *_rest) in VERSIONS.items()}
LOM = "http://ltsc.ieee.org/xsd/LOM"
MATCH_CORRECT = {
    "2.1": "http://www.imsglobal.org/question/qti_v2p1/rptemplates/match_correct",
    "2.2": "http://www.imsglobal.org/question/qti_v2p2/rptemplates/match_correct",
    "3.0": "https://purl.imsglobal.org/spec/qti/v3p0/rptemplates/match_correct.xml",
}

MAX_PACKAGE_BYTES = 50 * 1024 * 1024  # uncompressed
MAX_MEMBERS = 5000
MAX_XML_BYTES = 2 * 1024 * 1024
MAX_XML_DEPTH = 100  # elements inside one another; real items nest a dozen deep
MAX_RESOURCES = 2000  # item resources one manifest may list
READ_CHUNK = 64 * 1024
EXTENSION_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
                   ".svg": "image/svg+xml"}
TYPE_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/svg+xml": ".svg"}
NCNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
INLINE = {"span", "b", "strong", "i", "em", "u", "sub", "sup", "code", "kbd", "abbr", "cite", "q", "small",
          "big", "tt", "var", "dfn", "samp", "a"}
BLOCK_TEXT = {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "address"}


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


def parse_xml(data: bytes, where: str) -> Element:
    """Parse untrusted XML: no DTD (hence no entity expansion, no external entities)."""
    if len(data) > MAX_XML_BYTES:
        raise QTIError(f"{where}: {len(data) // 1024} KiB of XML is more than the {MAX_XML_BYTES // 1024} KiB allowed")
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as error:
        raise QTIError(f"{where}: refused unsafe XML ({type(error).__name__}: DTDs and entities are not "
                       "allowed)") from None
    except Exception as error:  # ElementTree.ParseError and expat errors
        raise QTIError(f"{where}: not well-formed XML ({error})") from None
    _check_depth(root, where)
    return root


def _check_depth(root: Element, where: str) -> None:
    """Refuse elements nested deeper than :data:`MAX_XML_DEPTH` (the readers below recurse)."""
    level, depth = [root], 1
    while level:
        if depth > MAX_XML_DEPTH:
            raise QTIError(f"{where}: elements are nested more than {MAX_XML_DEPTH} deep")
        level = [child for element in level for child in element]
        depth += 1


def _text(element: Element) -> str:
    """The text of an element with inline markup flattened and <br/> as a line break."""
    parts = [element.text or ""]
    for child in element:
        name = _local(child.tag)
        if name == "br":
            parts.append("\n")
        elif name in INLINE:
            parts.append(_text(child))
        else:
            raise QTIError(f"<{name}> inside text is not supported")
        parts.append(child.tail or "")
    return re.sub(r"[ \t\r\f\v]*\n[ \t\r\f\v]*", "\n", re.sub(r"[ \t\r\f\v]+", " ", "".join(parts))).strip()


def _table(element: Element) -> dict:
    rows = []
    header = None
    for tr in element.iter():
        if _local(tr.tag) != "tr":
            continue
        cells = [cell for cell in tr if _local(cell.tag) in ("th", "td")]
        values = [_text(cell) for cell in cells]
        if header is None and cells and all(_local(c.tag) == "th" for c in cells):
            header = values
        else:
            rows.append(values)
    if header is None:
        if not rows:
            raise QTIError("an empty table")
        header, rows = rows[0], rows[1:]
    if any(len(r) != len(header) for r in rows):
        raise QTIError("a table whose rows differ in length (merged cells are not supported)")
    return {"header": header, "rows": rows}


@dataclass(frozen=True)
class ParsedItem:
    identifier: str
    content: ItemContent
    version: str


def parse_item(data: bytes, where: str, read_file, option_count: int) -> ParsedItem:
    """One QTI item document as content; ``read_file(href)`` gives the bytes of a package file."""
    root = parse_xml(data, where)
    namespace = root.tag[1:].split("}")[0] if root.tag.startswith("{") else ""
    version = ITEM_NAMESPACES.get(namespace)
    if _local(root.tag) != "assessmentItem" or version is None:
        raise QTIError(f"not a QTI 2.1, 2.2 or 3.0 assessment item (root <{root.tag}>)")
    identifier = _attr(root, "identifier") or ""
    if not identifier or len(identifier) > 32:
        raise QTIError(f"item identifier {identifier!r} must have 1 to 32 characters")
    body = _find(root, "itemBody")
    if body is None:
        raise QTIError("the item has no itemBody")
    interactions = [e for e in body.iter() if _local(e.tag).endswith("Interaction")]
    if len(interactions) != 1 or _local(interactions[0].tag) != "choiceInteraction":
        kinds = ", ".join(sorted({_local(e.tag) for e in interactions})) or "none"
        raise QTIError(f"only items with exactly one choiceInteraction can be taken (found: {kinds})")
    interaction = interactions[0]
    if (_attr(interaction, "maxChoices") or "1") != "1":
        raise QTIError(f"maxChoices is {_attr(interaction, 'maxChoices')}: only single-response items can be taken")
    response_id = _attr(interaction, "responseIdentifier")
    declaration = next((d for d in root if _local(d.tag) == "responseDeclaration"
                        and _attr(d, "identifier") == response_id), None)
    if declaration is None:
        raise QTIError(f"no responseDeclaration for {response_id!r}")
    if _attr(declaration, "cardinality") != "single" or _attr(declaration, "baseType") != "identifier":
        raise QTIError("the response must have cardinality single and baseType identifier")
    correct = _find(declaration, "correctResponse")
    values = [(_text(v) or "") for v in (correct if correct is not None else []) if _local(v.tag) == "value"]
    if len(values) != 1:
        raise QTIError(f"the item needs exactly one correct response value, found {len(values)}")

    choices = _children(interaction, "simpleChoice")
    if len(choices) != option_count:
        raise QTIError(f"the program's items have {option_count} options; this one has {len(choices)}")
    choice_ids = [_attr(c, "identifier") for c in choices]
    if values[0] not in choice_ids:
        raise QTIError(f"the correct response {values[0]!r} is not one of the choices")
    try:
        options = tuple(_text(c) for c in choices)
    except QTIError as error:
        raise QTIError(f"a choice holds more than text: {error}") from None

    stem_parts: list[str] = []
    table = figure = None
    rationale: list[str] = []

    def take(element: Element) -> None:
        nonlocal table, figure
        name = _local(element.tag)
        if name == "choiceInteraction":
            prompt = _children(element, "prompt")
            if prompt:
                stem_parts.append(_text(prompt[0]))
        elif name == "rubricBlock":
            blocks = [child for child in element if _local(child.tag) in BLOCK_TEXT]
            rationale.append("\n".join(_text(b) for b in blocks) if blocks else _text(element))
        elif name == "table":
            if table is not None:
                raise QTIError("more than one table in the stem")
            table = _table(element)
        elif name in ("img", "object"):
            if figure is not None:
                raise QTIError("more than one figure in the stem")
            figure = _figure(element, where, read_file)
        elif name in BLOCK_TEXT:
            if all(_local(child.tag) in INLINE | {"br"} for child in element):
                text = _text(element)
                if text:
                    stem_parts.append(text)
            else:
                # A container (TAO wraps its layout in divs): its own text, then each child.
                if (element.text or "").strip():
                    stem_parts.append(element.text.strip())
                for child in element:
                    take(child)
                    if (child.tail or "").strip():
                        stem_parts.append(child.tail.strip())
        elif name in ("feedbackBlock", "modalFeedback", "templateBlock"):
            raise QTIError(f"<{name}> is not supported")
        else:
            raise QTIError(f"<{name}> in the item body is not supported")

    for child in body:
        take(child)
    stem = "\n".join(part for part in stem_parts if part)
    if not stem:
        raise QTIError("the item has no stem text")
    content = ItemContent(stem=stem, options=options, key=choice_ids.index(values[0]),
                          rationale="\n".join(r for r in rationale if r), table=table, figure=figure)
    return ParsedItem(identifier, content, version)


def _figure(element: Element, where: str, read_file) -> dict:
    href = _attr(element, "src") if _local(element.tag) == "img" else _attr(element, "data")
    alt = (_attr(element, "alt") or "").strip() if _local(element.tag) == "img" else _text(element)
    if not href:
        raise QTIError("a figure without a source file")
    media_type = EXTENSION_TYPES.get(posixpath.splitext(href.lower())[1])
    if media_type is None:
        raise QTIError(f"figure {href}: only {', '.join(FIGURE_TYPES)} figures are supported")
    if not alt:
        raise QTIError(f"figure {href} has no text alternative (alt)")
    data = read_file(posixpath.normpath(posixpath.join(posixpath.dirname(where), href)))
    return {"media_type": media_type, "data": base64.b64encode(data).decode(), "alt": alt}


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
            raise QTIError(f"{name}: not a zip file, or a damaged one ({error})") from None
        if len(members) > MAX_MEMBERS:
            raise QTIError(f"{name}: {len(members)} files is more than the {MAX_MEMBERS} allowed")
        if sum(m.file_size for m in members) > MAX_PACKAGE_BYTES:
            raise QTIError(f"{name}: more than {MAX_PACKAGE_BYTES // (1024 * 1024)} MiB uncompressed")
        self.files = {}
        for member in members:
            path = posixpath.normpath(member.filename)
            if member.filename.startswith("/") or path.startswith("..") or "\\" in member.filename:
                raise QTIError(f"{name}: unsafe path {member.filename!r} in the zip")
            if member.flag_bits & 0x1:
                raise QTIError(f"{name}: {member.filename} is encrypted; packages must not be")
            if member.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise QTIError(f"{name}: {member.filename} uses compression method {member.compress_type}; "
                               "only stored and deflated members are read")
            if member.is_dir():
                continue
            if path in self.files:
                raise QTIError(f"{name}: {path} is in the zip twice; which one is meant cannot be told")
            self.files[path] = member

    def read(self, path: str) -> bytes:
        path = posixpath.normpath(path)
        member = self.files.get(path)
        if member is None:
            raise QTIError(f"file {path} is not in the package")
        budget = MAX_PACKAGE_BYTES - self.inflated
        limit = min(member.file_size, budget)
        chunks, size = [], 0
        try:
            with self.zip.open(member) as stream:
                while chunk := stream.read(min(READ_CHUNK, limit - size + 1)):
                    size += len(chunk)
                    if size > limit:
                        if size > budget:
                            raise QTIError(f"{self.name}: more than {MAX_PACKAGE_BYTES // (1024 * 1024)} MiB "
                                           "would be inflated; the package is refused")
                        raise QTIError(f"file {path}: it inflates to more than the size the zip declares")
                    chunks.append(chunk)
        except QTIError:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, RuntimeError, NotImplementedError,
                OSError) as error:
            raise QTIError(f"file {path}: the zip member is corrupt ({error})") from None
        self.inflated += size
        if size != member.file_size:
            raise QTIError(f"file {path}: its size does not match the zip directory")
        return b"".join(chunks)


@dataclass(frozen=True)
class ItemResource:
    href: str
    version: str
    category: int | None


def manifest_resources(package: Package) -> tuple[list[ItemResource], list[str]]:
    """The item resources of the manifest, and notes on what was skipped."""
    if "imsmanifest.xml" not in package.files:
        raise QTIError(f"{package.name}: no imsmanifest.xml at the top of the package")
    root = parse_xml(package.read("imsmanifest.xml"), "imsmanifest.xml")
    if _local(root.tag) != "manifest":
        raise QTIError("imsmanifest.xml: the root element is not <manifest>")
    resources, notes, listed = [], [], set()
    for resource in root.iter():
        if _local(resource.tag) != "resource":
            continue
        kind = _attr(resource, "type") or ""
        if kind not in ITEM_TYPES:
            if kind.startswith("imsqti_test") or kind.startswith("imsqti_assessment"):
                notes.append(f"skipped {kind} resource {_attr(resource, 'identifier')}: only items are imported")
            continue
        href = _attr(resource, "href")
        if not href:
            raise QTIError(f"imsmanifest.xml: item resource {_attr(resource, 'identifier')} has no href")
        href = posixpath.normpath(href)
        if href in listed:
            raise QTIError(f"imsmanifest.xml lists {href} more than once")
        listed.add(href)
        resources.append(ItemResource(href, ITEM_TYPES[kind], _lom_category(resource)))
        if len(resources) > MAX_RESOURCES:
            raise QTIError(f"imsmanifest.xml lists more than {MAX_RESOURCES} items; split the package")
    if not resources:
        raise QTIError("imsmanifest.xml lists no QTI 2.1, 2.2 or 3.0 item")
    return resources, notes


def _lom_category(resource: Element) -> int | None:
    for taxon in resource.iter():
        if _local(taxon.tag) == "taxon":
            ident = _find(taxon, "id")
            if ident is not None and (ident.text or "").strip().isdigit():
                return int(ident.text.strip())
    return None


def import_package(session: Session, program: ExamProgram, data: bytes, *, actor: str, actor_role: str,
                   now: dt.datetime, mode: str = "all", category: int | None = None,
                   name: str = "package") -> ImportReport:
    """Import a QTI package's choice items as draft items (one transaction; the caller commits).

    mode "all": if any item is refused, nothing lands; "valid": the good ones land.
    ``category`` is the syllabus category for items whose manifest entry has none.
    """
    check_mode(mode)
    report = ImportReport(mode)
    try:
        package = Package(data, name)
        resources, report.notes = manifest_resources(package)
    except QTIError as error:
        report.rejected.append(Rejected(name, str(error)))
        return report
    existing = set(session.scalars(select(Item.code)))
    good: list[tuple[ParsedItem, int]] = []
    seen: set[str] = set()
    for resource in resources:
        try:
            parsed = parse_item(package.read(resource.href), resource.href, package.read,
                                len(program.option_labels))
            if parsed.version != resource.version:
                raise QTIError(f"the manifest says QTI {resource.version} but the item is QTI {parsed.version}")
            if parsed.identifier in existing:
                raise QTIError(f"item {parsed.identifier} is already in the bank")
            if parsed.identifier in seen:
                raise QTIError(f"item {parsed.identifier} appears twice in the package")
            number = resource.category or category
            if number is None:
                raise QTIError("no syllabus category (none in the manifest; give one for the import)")
            try:
                program.category(number)
            except KeyError:
                raise QTIError(f"category {number} is not in the syllabus") from None
            check_content_for_program(program, parsed.identifier, parsed.content)
        except (QTIError, ContentError, DomainError) as error:
            report.rejected.append(Rejected(resource.href, str(error)))
            continue
        seen.add(parsed.identifier)
        good.append((parsed, number))
    if report.rejected and mode == "all":
        return report
    for parsed, number in good:
        create_draft(session, program, code=parsed.identifier, category=number, content=parsed.content,
                     actor=actor, actor_role=actor_role, now=now, audited=False,
                     note=f"imported from QTI {parsed.version} package {name}")
        report.accepted.append(parsed.identifier)
    report.landed = bool(good)
    audit.record(session, actor=actor, actor_role=actor_role, action="bank.import", subject="bank",
                 details={"format": "qti", "package": name, "accepted": report.accepted,
                          "rejected": len(report.rejected)}, at=now)
    return report


# Export ---------------------------------------------------------------------------------------

def _identifier(code: str) -> str:
    return code if NCNAME.match(code) else "item-" + re.sub(r"[^A-Za-z0-9_.-]", "_", code)


def item_document(entry: BankEntry, version: str, labels: tuple[str, ...], figure_href: str | None) -> bytes:
    """One item as a QTI ``version`` document."""
    namespace = VERSIONS[version][0]
    v3 = version == "3.0"

    def name(qti2: str) -> str:
        if not v3:
            return qti2
        return "qti-" + re.sub(r"(?<!^)([A-Z])", lambda m: "-" + m.group(1).lower(), qti2)

    def attr(qti2: str) -> str:
        return re.sub(r"(?<!^)([A-Z])", lambda m: "-" + m.group(1).lower(), qti2) if v3 else qti2

    content = entry.content
    ident = _identifier(entry.item.code)
    root = Element(name("assessmentItem"), {"xmlns": namespace, "identifier": ident, "title": entry.item.code,
                                            attr("timeDependent"): "false", "adaptive": "false",
                                            "xml:lang": "en"})
    choice_ids = [f"choice_{label}" if NCNAME.match(f"choice_{label}") else f"choice_{i + 1}"
                  for i, label in enumerate(labels)]
    declaration = SubElement(root, name("responseDeclaration"), {"identifier": "RESPONSE", "cardinality": "single",
                                                                 attr("baseType"): "identifier"})
    SubElement(SubElement(declaration, name("correctResponse")), name("value")).text = choice_ids[content.key]
    SubElement(root, name("outcomeDeclaration"), {"identifier": "SCORE", "cardinality": "single",
                                                  attr("baseType"): "float"})
    body = SubElement(root, name("itemBody"))
    for line in content.stem.split("\n"):
        SubElement(body, "p").text = line
    if content.table:
        table = SubElement(body, "table")
        head_row = SubElement(SubElement(table, "thead"), "tr")
        for cell in content.table["header"]:
            SubElement(head_row, "th").text = str(cell)
        tbody = SubElement(table, "tbody")
        for row in content.table["rows"]:
            tr = SubElement(tbody, "tr")
            for cell in row:
                SubElement(tr, "td").text = str(cell)
    if content.figure and figure_href:
        SubElement(SubElement(body, "p"), "img", {"src": figure_href, "alt": content.figure["alt"]})
    interaction = SubElement(body, name("choiceInteraction"), {attr("responseIdentifier"): "RESPONSE",
                                                               "shuffle": "false", attr("maxChoices"): "1"})
    for ident_choice, option in zip(choice_ids, content.options):
        SubElement(interaction, name("simpleChoice"), {"identifier": ident_choice}).text = option
    if content.rationale:
        rubric = SubElement(body, name("rubricBlock"), {"view": "scorer"})
        SubElement(rubric, "p").text = content.rationale
    SubElement(root, name("responseProcessing"), {"template": MATCH_CORRECT[version]})
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + tostring(root, encoding="unicode").encode()


def export_package(session: Session, program: ExamProgram, *, version: str, actor: str, actor_role: str,
                   now: dt.datetime, codes: list[str] | None = None, status: str | None = None) -> bytes:
    """The chosen items (default: the whole bank, or those in ``status``) as a QTI package zip."""
    if version not in VERSIONS:
        raise InvalidInput(f"QTI version must be one of {', '.join(VERSIONS)}")
    entries = browse(session, status=status)
    if codes:
        wanted = set(codes)
        entries = [e for e in entries if e.item.code in wanted]
        missing = wanted - {e.item.code for e in entries}
        if missing:
            raise NotFound(f"no such item(s): {', '.join(sorted(missing))}")
    _ns, item_type, cp_namespace, schema = VERSIONS[version]
    buffer = io.BytesIO()
    manifest = Element("manifest", {"xmlns": cp_namespace, "identifier": f"cbt-export-{now:%Y%m%d%H%M%S}"})
    metadata = SubElement(manifest, "metadata")
    SubElement(metadata, "schema").text = schema
    SubElement(metadata, "schemaversion").text = "1.0.0" if version != "3.0" else "3.0.0"
    SubElement(manifest, "organizations")
    resources = SubElement(manifest, "resources")
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as package:
        for entry in entries:
            ident = _identifier(entry.item.code)
            href = f"items/{ident}.xml"
            figure_href = None
            if entry.content.figure:
                figure_name = f"{ident}{TYPE_EXTENSIONS[entry.content.figure['media_type']]}"
                figure_href = f"images/{figure_name}"
                package.writestr(f"items/images/{figure_name}", base64.b64decode(entry.content.figure["data"]))
            package.writestr(href, item_document(entry, version, program.option_labels, figure_href))
            resource = SubElement(resources, "resource", {"identifier": f"res-{ident}", "type": item_type,
                                                          "href": href})
            _lom(resource, program, entry.item.category)
            SubElement(resource, "file", {"href": href})
            if figure_href:
                SubElement(resource, "file", {"href": f"items/{figure_href}"})
        package.writestr("imsmanifest.xml", b'<?xml version="1.0" encoding="UTF-8"?>\n'
                         + tostring(manifest, encoding="unicode").encode())
    audit.record(session, actor=actor, actor_role=actor_role, action="bank.export", subject="bank",
                 details={"format": f"qti {version}", "items": len(entries)}, at=now)
    return buffer.getvalue()


def _lom(resource: Element, program: ExamProgram, category: int) -> None:
    lom = SubElement(SubElement(resource, "metadata"), "lom", {"xmlns": LOM})
    classification = SubElement(lom, "classification")
    SubElement(SubElement(classification, "purpose"), "value").text = "discipline"
    path = SubElement(classification, "taxonPath")
    SubElement(SubElement(path, "source"), "string").text = f"{program.code} syllabus"
    taxon = SubElement(path, "taxon")
    SubElement(taxon, "id").text = str(category)
    SubElement(SubElement(taxon, "entry"), "string").text = program.category(category).name
