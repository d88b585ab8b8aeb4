"""What the CLI prints: tables that fit 80 columns without cutting, strict JSON."""

from __future__ import annotations

import io
import json
import math
import re

import pytest
from rich.console import Console

from salarymodel.terminal import column_widths, fitted_table, json_text, pieces, wrap

# The ranges table as `evaluate` prints it (the widest the CLI has: ten columns, the
# backtest's folds named by source and months, methods with underscores).
HEADERS = ("split", "method", "source", "n", "in range", "below", "above", "mean width (USD)",
           "width at target (USD)", "in range by pay fifth (%)")  # fmt: skip
ROWS = [
    ("cv", "calibrated", "postings", "20,973", "0.806", "0.098", "0.094", "77,342", "76,137", ""),
    ("postings 2023-04..2023-06", "calibrated_in_time", "postings", "5,723", "0.803", "0.088",
     "0.109", "82,029", "81,628", ""),
    ("backtest", "constant_usd", "all", "31,362", "0.739", "0.067", "0.214", "119,144",
     "140,101", "86 80 72 68 64"),
]  # fmt: skip


def _shown(word: str, tokens: set[str]) -> bool:
    """The word is on screen whole, or in consecutive parts cut at its break points."""
    if word in tokens:
        return True
    parts = pieces(word)
    return any(
        "".join(parts[:k]) in tokens and _shown("".join(parts[k:]), tokens)
        for k in range(1, len(parts))
    )


def _render(table, width: int) -> list[str]:
    out = io.StringIO()
    Console(file=out, width=width, force_terminal=False, color_system=None).print(table)
    return out.getvalue().splitlines()


@pytest.mark.parametrize("width", [80, 120])
def test_a_wide_table_fits_without_cutting_a_header_or_a_value(width: int) -> None:
    lines = _render(fitted_table("Ranges", HEADERS, ROWS, width, ("split", "method")), width)
    assert max(len(line) for line in lines) <= width
    assert "…" not in "\n".join(lines)
    shown = {token for line in lines for token in line.split()}
    for cell in [*HEADERS, *(c for row in ROWS for c in row)]:
        for word in cell.split():
            # Whole, or (a long word in a narrow column) cut only after "_" or "..".
            assert _shown(word, shown), word
            if re.fullmatch(r"[\d.,]+", word):
                assert word in shown  # a number is never broken
    if width == 120:  # room enough: nothing is broken
        assert "calibrated_in_time" in shown and "2023-04..2023-06" in shown


def test_long_words_break_after_underscores_and_ranges_only() -> None:
    assert pieces("calibrated_in_time") == ["calibrated_", "in_", "time"]
    assert pieces("2023-04..2023-06") == ["2023-04..", "2023-06"]
    assert pieces("145,508") == ["145,508"] and pieces("0.805") == ["0.805"]
    assert wrap("postings 2023-04..2023-06", 9) == "postings\n2023-04..\n2023-06"
    assert wrap("calibrated_in_time", 11) == "calibrated_\nin_time"
    assert wrap("87 82 80 77 74", 5) == "87 82\n80 77\n74"


def test_widths_keep_each_longest_piece_and_give_up_room_where_there_is_most() -> None:
    columns = [["method", "constant_usd"], ["width at target (USD)", "140,101"]]
    assert column_widths(columns, 100) == [12, 21]  # room enough: one line each
    assert column_widths(columns, 24) == [12, 10]  # the header wraps, the method stays whole
    assert column_widths(columns, 5) == [9, 7]  # too narrow: the longest pieces kept anyway


def test_json_is_strict() -> None:
    text = json_text({"mae": 1.5, "fifths": math.nan, "rows": [math.inf, 2]})

    def refuse(name: str) -> None:
        raise ValueError(name)

    assert json.loads(text, parse_constant=refuse) == {"mae": 1.5, "fifths": None,
                                                       "rows": [None, 2]}  # fmt: skip
