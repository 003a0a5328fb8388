"""Reading and writing an item version's content.

Content is the part of an item that must stay secret until it is shown: the
stem, an optional table, the options, the key and the rationale. Every read and
write of ``ItemVersion.content`` goes through :func:`pack` and :func:`unpack`.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass


class ContentError(ValueError):
    """Item content that cannot be used as given."""


@dataclass(frozen=True)
class ItemContent:
    stem: str
    options: tuple[str, ...]
    key: int  # index into options
    rationale: str = ""
    table: dict | None = None  # {"header": [...], "rows": [[...], ...]}

    def __post_init__(self) -> None:
        if not self.stem.strip():
            raise ContentError("the stem is empty")
        if len(self.options) < 2 or any(not o.strip() for o in self.options):
            raise ContentError("an item needs at least two non-empty options")
        if len(set(self.options)) != len(self.options):
            raise ContentError("two options are the same")
        if not 0 <= self.key < len(self.options):
            raise ContentError(f"key {self.key} is not an option index")
        if self.table is not None:
            header, rows = self.table.get("header"), self.table.get("rows")
            if not isinstance(header, list) or not isinstance(rows, list) or any(
                not isinstance(r, list) or len(r) != len(header) for r in rows
            ):
                raise ContentError("a table needs a header and rows of the header's length")


def pack(content: ItemContent) -> str:
    data = asdict(content)
    data["options"] = list(content.options)
    return json.dumps(data, ensure_ascii=False, sort_keys=True)


def unpack(stored: str) -> ItemContent:
    data = json.loads(stored)
    return ItemContent(
        stem=data["stem"],
        options=tuple(data["options"]),
        key=int(data["key"]),
        rationale=data.get("rationale", ""),
        table=data.get("table"),
    )
