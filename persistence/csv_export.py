"""CSV files that leave the system: every field quoted, no cell a spreadsheet runs as a formula.

Every export that a person may open in a spreadsheet (responses and anchors for
calibration, the operation's statistics) is written here, so that:

* every field is quoted (``csv.QUOTE_ALL``): a header or cell holding a comma, a
  quote or a line break stays one column;
* a text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
  gets a leading apostrophe (OWASP's advice against CSV injection), so that
  ``=HYPERLINK(...)`` in an item code or a centre name is shown, never evaluated.
  Numbers are given as numbers (int, float) and written as they are: ``-0.25`` stays
  a number for R, ``cbt calibrate`` and the spreadsheet alike.

The readers of these files (``engine.io``, R's ``read.csv``, spreadsheets) all read
quoted fields.
"""
from __future__ import annotations

import csv
import io
import math
import numbers
from typing import Iterable

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: object) -> str:
    """One cell as text: numbers as they are (floats to 6 decimals, NaN and None empty), text
    that a spreadsheet would take for a formula behind an apostrophe."""
    if cell is None:
        return ""
    if isinstance(cell, bool):
        return str(int(cell))
    if isinstance(cell, numbers.Integral):
        return str(int(cell))
    if isinstance(cell, numbers.Real):
        value = float(cell)
        return "" if math.isnan(value) else f"{value:.6f}"
    text = str(cell)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def csv_text(header: Iterable[object], rows: Iterable[Iterable[object]]) -> str:
    """The CSV document of ``header`` and ``rows``: quoted, neutralised, ``\\n`` line ends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow([neutralise(cell) for cell in header])
    writer.writerows([neutralise(cell) for cell in row] for row in rows)
    return buffer.getvalue()
