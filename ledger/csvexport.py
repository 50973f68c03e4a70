"""CSV files ARM serves (today the cost report's export, ``ledger.api.costs``), written through
``csv_lines`` so that no cell can become a spreadsheet formula.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read as a formula by
Excel, LibreOffice and Google Sheets (CSV or formula injection); names in ARM's exports come from
runtimes and users (a model reported as ``=HYPERLINK(...)``). Such a cell is written with a leading
single quote, as OWASP's CSV injection guidance recommends; the csv module quotes the rest (commas,
quotes, line breaks). Only text cells are touched: numbers are written as they are.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Mapping

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """``value`` as a CSV cell a spreadsheet shows as text: a string starting like a formula gets a
    leading ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


class _Echo:
    """A file-like object whose ``write`` returns the line, so a writer's rows can be streamed."""

    def write(self, value: str) -> str:
        return value


def csv_lines(fieldnames: Iterable[str], rows: Iterable[Mapping]) -> Iterator[str]:
    """The header and one line per row (a mapping by field name), every cell through ``safe_cell``."""
    fieldnames = list(fieldnames)
    writer = csv.DictWriter(_Echo(), fieldnames=fieldnames)
    yield writer.writerow({name: safe_cell(name) for name in fieldnames})
    for row in rows:
        yield writer.writerow({key: safe_cell(value) for key, value in row.items()})


__all__ = ["FORMULA_PREFIXES", "csv_lines", "safe_cell"]
