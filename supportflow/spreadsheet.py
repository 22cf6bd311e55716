"""CSV that spreadsheets open safely: a cell starting like a formula (= + - @ tab CR) is prefixed with ``'``
so it shows as text and never runs (CSV injection). Used by every CSV export (analytics, the ticket list)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable
from decimal import Decimal

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> str:
    """A CSV cell a spreadsheet shows as text: formulas (= + - @ tab CR at the start) get a leading '.
    Numbers are never formulas: a negative one stays a number (a loss on the savings page)."""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return str(value)
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_lines(rows: Iterable[Iterable]) -> str:
    """Rows as CSV text (``\\r\\n`` line ends), every cell through ``safe_cell``; times in ISO 8601,
    booleans as yes/no."""
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        writer.writerow([safe_cell(_plain(value)) for value in row])
    return out.getvalue()


def _plain(value):
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    return value
