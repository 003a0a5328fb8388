"""CSV files of responses, item parameters and scores.

RESPONSES.csv  header ``examinee_id,<item ids>``; cells 1, 0 or empty (not presented).
PARAMS.csv     header ``item_id,a,b,c`` then optional columns (``upper``: the 4PL's
               upper asymptote, standard errors ``se_a,se_b,se_c[,se_upper]``, ``converged`` and anything else, which is ignored
               on reading); empty a, b and c: an item that could not be estimated.
SCORES.csv     header ``examinee_id,theta,se``.

A malformed file raises ``CSVFormatError`` naming the file, the row (1-based,
the header is row 1) and the column at fault.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.models import ItemParameters


class CSVFormatError(ValueError):
    """A CSV file that does not follow its format; the message names row and column."""


@dataclass(frozen=True)
class ResponseTable:
    """examinee_ids (n,), item_ids (n_items,) and responses int8 (n, n_items) with -1 for empty."""

    examinee_ids: list[str]
    item_ids: list[str]
    responses: np.ndarray


@dataclass(frozen=True)
class ParameterTable:
    """item_ids and their parameters (se: standard errors if the file has them, else None).

    converged: (n_items,) bool, False where the file's ``converged`` column says 0
    (all True without the column). An item whose a, b and c cells are all empty is one
    calibration could not estimate: its parameters are NaN.
    """

    item_ids: list[str]
    items: ItemParameters
    se: ItemParameters | None = None
    converged: np.ndarray | None = None


def _fail(path, row: int, message: str, column: int | None = None, name: str | None = None):
    where = f"{path}: row {row}"
    if column is not None:
        where += f", column {column}" + (f" ({name})" if name else "")
    raise CSVFormatError(f"{where}: {message}")


def _read_header(path, line: str, first: str) -> list[str]:
    header = next(csv.reader([line]))
    if not header or header[0].strip().lower() != first:
        _fail(path, 1, f"the header must start with '{first}', found {header[0] if header else 'nothing'!r}", 1)
    seen: dict[str, int] = {}
    for column, name in enumerate(header[1:], start=2):
        name = name.strip()  # ' i1' and 'i1' are one item
        if not name:
            _fail(path, 1, "empty column name", column)
        if name in seen:
            _fail(path, 1, f"column name {name!r} repeats column {seen[name]}", column, name)
        seen[name] = column
    return header


def _lines(path) -> list[str]:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise CSVFormatError(f"{path}: not UTF-8 text ({error})") from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise CSVFormatError(f"{path}: row 1: the file is empty")
    return lines


def _response_row_error(path, row: int, line: str, header: list[str]) -> None:
    cells = next(csv.reader([line]))
    if len(cells) != len(header):
        _fail(path, row, f"expected {len(header)} cells (examinee_id and {len(header) - 1} items), found {len(cells)}")
    if not cells[0].strip():
        _fail(path, row, "empty examinee_id", 1, header[0])
    for column, cell in enumerate(cells[1:], start=2):
        if cell not in ("", "0", "1"):
            _fail(path, row, f"value {cell!r} is not 1, 0 or empty", column, header[column - 1])


def read_responses(path) -> ResponseTable:
    """Read RESPONSES.csv; 1 correct, 0 wrong, empty cell = not presented (-1).

    Cells are decoded a whole row at a time with string replacement (',1' -> 2,
    ',0' -> 1, ',' -> 0 as bytes) instead of one Python call per cell; any row that
    does not decode cleanly is re-read with the csv module for the error message.
    """
    lines = _lines(path)
    header = _read_header(path, lines[0], "examinee_id")
    n_items = len(header) - 1
    ids: list[str] = []
    coded: list[str] = []
    if len(lines) < 2:
        raise CSVFormatError(f"{path}: row 2: no examinees (the file has only its header)")
    for row, line in enumerate(lines[1:], start=2):
        ident, _, rest = line.partition(",")
        if '"' in line:  # quoted cells are legal CSV: decode the row with the csv module
            cells = next(csv.reader([line]))
            ident, rest = cells[0], ",".join(cells[1:])
        code = ("," + rest).replace(",1", "\x02").replace(",0", "\x01").replace(",", "\x00")
        if len(code) != n_items or not ident.strip():
            _response_row_error(path, row, line, header)
        ids.append(ident.strip())
        coded.append(code)
    buffer = np.frombuffer("".join(coded).encode("latin-1", errors="replace"), dtype=np.uint8)
    codes = buffer.reshape(len(coded), n_items)
    bad = codes > 2
    if bad.any():
        row = int(np.flatnonzero(bad.any(axis=1))[0])
        _response_row_error(path, row + 2, lines[row + 1], header)
    first_row: dict[str, int] = {}
    for row, ident in enumerate(ids, start=2):
        if ident in first_row:
            _fail(path, row, f"examinee_id {ident!r} repeats row {first_row[ident]}", 1, header[0])
        first_row[ident] = row
    return ResponseTable(ids, [name.strip() for name in header[1:]], codes.astype(np.int8) - 1)


def write_responses(path, examinee_ids, item_ids, responses: np.ndarray) -> None:
    """Write RESPONSES.csv (empty cells for -1)."""
    symbols = np.array(["", "0", "1"])
    with open(path, "w", newline="", encoding="utf-8") as f:
        f.write(",".join(["examinee_id", *item_ids]) + "\n")
        cells = symbols[np.asarray(responses) + 1]
        f.writelines(f"{ident}," + ",".join(row) + "\n" for ident, row in zip(examinee_ids, cells))


def read_parameters(path) -> ParameterTable:
    """Read PARAMS.csv (item_id,a,b,c[,se_a,se_b,se_c,...])."""
    lines = _lines(path)
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    header = [name.strip() for name in _read_header(path, lines[0], "item_id")]
    if header[1:4] != ["a", "b", "c"]:
        _fail(path, 1, f"the header must be item_id,a,b,c (then optional columns), found {','.join(header[:4])}")
    se_columns = [header.index(name) if name in header else None for name in ("se_a", "se_b", "se_c")]
    converged_column = header.index("converged") if "converged" in header else None
    upper_column = header.index("upper") if "upper" in header else None
    uppers = []
    ids, values, errors, flags = [], [], [], []
    seen: dict[str, int] = {}
    for row, cells in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            _fail(path, row, f"expected {len(header)} cells, found {len(cells)}")
        ident = cells[0].strip()
        if not ident:
            _fail(path, row, "empty item_id", 1, "item_id")
        if ident in seen:
            _fail(path, row, f"item_id {ident!r} repeats row {seen[ident]}", 1, "item_id")
        seen[ident] = row
        numbers = []
        if not any(cells[column].strip() for column in (1, 2, 3)):
            numbers = [math.nan] * 3  # an item calibration could not estimate
        for column in (1, 2, 3) if not numbers else ():
            try:
                value = float(cells[column])
            except ValueError:
                _fail(path, row, f"{cells[column]!r} is not a number", column + 1, header[column])
            if not math.isfinite(value):
                _fail(path, row, f"{cells[column]!r} is not finite", column + 1, header[column])
            numbers.append(value)
        if numbers[0] <= 0:
            _fail(path, row, f"a must be positive, found {numbers[0]}", 2, "a")
        if not 0 <= numbers[2] < 1 and not math.isnan(numbers[2]):
            _fail(path, row, f"c must lie in [0, 1), found {numbers[2]}", 4, "c")
        se = []
        for se_column in se_columns:
            cell = cells[se_column].strip() if se_column is not None else ""
            try:
                se.append(float(cell) if cell else float("nan"))
            except ValueError:
                assert se_column is not None  # an absent column gives "", which parses
                _fail(path, row, f"{cell!r} is not a number", se_column + 1, header[se_column])
        ids.append(ident)
        values.append(numbers)
        errors.append(se)
        if upper_column is not None:
            cell = cells[upper_column].strip()
            try:
                upper = float(cell) if cell else math.nan
            except ValueError:
                _fail(path, row, f"{cell!r} is not a number", upper_column + 1, "upper")
            if not math.isnan(numbers[0]) and not numbers[2] < upper <= 1:
                _fail(path, row, f"the upper asymptote must lie in (c, 1], found {cell!r}", upper_column + 1, "upper")
            uppers.append(upper)
        flag = cells[converged_column].strip() if converged_column is not None else ""
        flags.append(flag != "0")
    if not ids:
        raise CSVFormatError(f"{path}: row 2: no items")
    value_table = np.array(values)
    se_table = None
    if any(column is not None for column in se_columns):
        error_table = np.array(errors)
        se_table = ItemParameters(error_table[:, 0], error_table[:, 1], error_table[:, 2])
    upper_array = np.array(uppers) if upper_column is not None else None
    return ParameterTable(ids, ItemParameters(value_table[:, 0], value_table[:, 1], value_table[:, 2], upper_array),
                          se_table, np.array(flags))


def write_parameters(path, item_ids, items: ItemParameters, se: ItemParameters | None = None,
                     extra: dict[str, np.ndarray] | None = None) -> None:
    """Write PARAMS.csv: item_id,a,b,c[,se_a,se_b,se_c][,extra columns]."""
    columns = {"a": items.a, "b": items.b, "c": items.c}
    if items.d is not None:
        columns["upper"] = items.d
    if se is not None:
        columns.update({"se_a": se.a, "se_b": se.b, "se_c": se.c})
        if se.d is not None:
            columns["se_upper"] = se.d
    columns.update(extra or {})
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["item_id", *columns])
        for index, ident in enumerate(item_ids):
            writer.writerow([ident, *(_format(values[index]) for values in columns.values())])


def write_scores(path, examinee_ids, theta: np.ndarray, se: np.ndarray) -> None:
    """Write SCORES.csv: examinee_id,theta,se (empty cells for NaN)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        f.write("examinee_id,theta,se\n")
        f.writelines(f"{ident},{_format(t)},{_format(s)}\n" for ident, t, s in zip(examinee_ids, theta, se))


def _format(value) -> str:
    if isinstance(value, (bool, np.bool_, int, np.integer)):
        return str(int(value))
    if isinstance(value, (str, np.str_)):
        return str(value)
    value = float(value)
    return "" if math.isnan(value) else f"{value:.6f}"
