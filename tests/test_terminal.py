"""What the CLI prints: tables that fit 80 columns without cutting, strict JSON."""

from __future__ import annotations

import io
import json
import math

import pytest
from rich.console import Console

from salarymodel.terminal import column_widths, fitted_table, json_text

# A ranges table as `evaluate` prints it (the widest table the CLI has).
HEADERS = ("split", "method", "source", "n", "coverage", "mean width (USD)",
           "width at target (USD)", "coverage by pay fifth (%)")  # fmt: skip
ROWS = [
    ("cv", "calibrated", "postings", "20,973", "0.806", "77,342", "76,137", ""),
    ("time", "constant_usd", "all", "31,362", "0.739", "119,144", "140,101", "86 80 72 68 64"),
]


def _render(table, width: int) -> list[str]:
    out = io.StringIO()
    Console(file=out, width=width, force_terminal=False, color_system=None).print(table)
    return out.getvalue().splitlines()


@pytest.mark.parametrize("width", [80, 100])
def test_a_wide_table_fits_without_cutting_a_header_or_a_value(width: int) -> None:
    lines = _render(fitted_table("Ranges", HEADERS, ROWS, width, ("split", "method")), width)
    text = "\n".join(lines)
    assert max(len(line) for line in lines) <= width
    assert "…" not in text
    words = {w for row in ROWS for cell in row for w in cell.split()}
    words |= {w for header in HEADERS for w in header.split()}
    for word in words:  # every word whole, on one line
        assert any(word in line.split() for line in lines), word


def test_widths_keep_each_longest_word_and_give_up_room_where_there_is_most() -> None:
    columns = [["method", "constant_usd"], ["width at target (USD)", "140,101"]]
    assert column_widths(columns, 100) == [12, 21]  # room enough: one line each
    assert column_widths(columns, 24) == [12, 10]  # the header wraps; "constant_usd" stays whole
    assert column_widths(columns, 5) == [12, 7]  # too narrow: longest words kept anyway


def test_json_is_strict() -> None:
    text = json_text({"mae": 1.5, "fifths": math.nan, "rows": [math.inf, 2]})

    def refuse(name: str) -> None:
        raise ValueError(name)

    assert json.loads(text, parse_constant=refuse) == {"mae": 1.5, "fifths": None,
                                                       "rows": [None, 2]}  # fmt: skip
