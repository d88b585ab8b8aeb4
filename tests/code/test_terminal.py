"""What the CLI prints: tables that fit 80 columns without cutting, strict JSON."""

from __future__ import annotations

import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.trained_once import train_in_process, trained_copy
from rich.console import Console
from typer.testing import CliRunner

from salarymodel.cli.app import app
from salarymodel.cli.terminal import column_widths, fitted_table, json_text, pieces, wrap

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


# ----- every table the CLI prints, from a small trained project, at 80 columns in a pipe ------
ROOT = Path(__file__).resolve().parents[2]
# A line holding nothing but small whole numbers, indented: the tail of a cell of
# figures wrapped into a column of digits ("83 81" over "83 79" over "81").
DIGIT_TAIL = re.compile(r"\s+(\d{1,3} ?)+")


def _piped(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SALARYMODEL_ROOT": str(root), "COLUMNS": "80"}
    command = [str(Path(sys.executable).parent / "salarymodel"), *args]
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode in (0, 1), done.stderr[-3000:]  # retrain: 1 = champion kept
    return done


def _printed_by(root: Path, *args: str) -> str:
    """What the CLI prints on stdout, run in this process with COLUMNS=80: its stdout is
    not a terminal, as in a pipe (Rich reads COLUMNS when it prints)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SALARYMODEL_ROOT", str(root))
        patch.setenv("COLUMNS", "80")
        patch.chdir(root)
        result = CliRunner().invoke(app, list(args))
    assert result.exit_code in (0, 1), result.output[-3000:]  # retrain: 1 = champion kept
    return result.stdout


def _readable(text: str) -> list[str]:
    """The printed lines, checked: at most 80 columns, no trailing space, no digit tails."""
    lines = text.splitlines()
    assert lines
    for line in lines:
        assert len(line) <= 80, line
        assert line == line.rstrip(), repr(line)
        assert not DIGIT_TAIL.fullmatch(line), line
    assert "…" not in text
    return lines


def _on_one_line(figure: str, lines: list[str]) -> bool:
    return any(figure in line for line in lines)


@pytest.fixture(scope="module")
def printed(tmp_path_factory, aijobs_raw) -> dict[str, str]:
    """What train, evaluate, versions, explain and retrain print on stdout, and the JSON.

    Train is the session's champion (helpers/trained_once.py: ``train --sample 1500
    --no-baselines`` on the real configs and data), with what it printed at 80 columns.
    """
    root = tmp_path_factory.mktemp("cli80")
    shutil.copytree(ROOT / "configs", root / "configs")
    (root / "data").symlink_to(ROOT / "data")
    trained_copy(root, tmp_path_factory, train_in_process)
    out = {"train": (root / "train.stdout").read_text()}
    for command in ("evaluate", "versions", "explain"):
        out[command] = _printed_by(root, command)
    out["evaluate --json"] = _printed_by(root, "evaluate", "--json")
    out["versions --json"] = _printed_by(root, "versions", "--json")
    # One command through a real pipe: what a pipe shows is what is checked in-process.
    out["versions, piped"] = _piped(root, "versions").stdout
    aijobs_raw.sample(300, random_state=3).to_csv(root / "new.csv", index=False)
    out["retrain"] = _printed_by(root, "retrain", "--data", str(root / "new.csv"),
                                 "--sample", "1500")  # fmt: skip
    return out


@pytest.mark.slow
@pytest.mark.parametrize("command", ["train", "evaluate", "versions", "explain", "retrain"])
def test_every_table_reads_at_80_columns_in_a_pipe(printed, command: str) -> None:
    _readable(printed[command])
    if command == "versions":
        assert printed["versions, piped"] == printed[command]


@pytest.mark.slow
def test_figures_stay_whole_on_one_line(printed) -> None:
    lines = _readable(printed["evaluate"])
    payload = json.loads(printed["evaluate --json"])
    fifths = [r["coverage_by_pay_fifth"] for r in payload["ranges"]
              if isinstance(r.get("coverage_by_pay_fifth"), list)]  # fmt: skip
    assert fifths
    for values in fifths:
        assert _on_one_line(" ".join(f"{100 * v:.0f}" for v in values), lines)
    for row in payload["table"]:
        assert _on_one_line(f"{row['mae_usd']:,.0f}", lines)
    assert payload["bls_reality_check"] and payload["groups"]
    for row in payload["bls_reality_check"]:
        assert _on_one_line(f"${row['bls_median_usd']:,.0f}", lines)
    for split in ("cv", "backtest"):  # the per-group tables evaluate prints
        for row in payload["groups"][split]["groups"]:
            assert _on_one_line(f"{row['mae_usd']:,.0f}", lines)
    versions = _readable(printed["versions"])
    for row in json.loads(printed["versions --json"]):
        assert _on_one_line(row["created"][:16].replace("T", " "), versions)  # date and time
    assert "Retrain gate" in printed["retrain"]


def test_a_table_too_wide_splits_repeating_its_labels_then_turns_to_records() -> None:
    left = ("split", "method", "source")
    lines = _render(fitted_table("Ranges", HEADERS, ROWS, 80, left), 80)
    assert [line for line in lines if line.startswith("Ranges")] == ["Ranges (1/2)", "Ranges (2/2)"]
    assert sum(line.startswith("backtest") for line in lines) == 2  # labels in both parts
    assert any(line.rstrip().endswith("86 80 72 68 64") for line in lines)
    assert all(line == line.rstrip() and len(line) <= 80 for line in lines)
    # 40 columns: one value beside the three labels does not fit: a block per row.
    narrow = _render(fitted_table("Ranges", HEADERS, ROWS, 40, left), 40)
    assert "method: calibrated_in_time" in narrow and "n: 31,362" in narrow
    assert "  86 80 72 68 64" in narrow  # too long beside its name: whole, on the next line
    assert max(len(line) for line in narrow) <= 40
    assert all(line == line.rstrip() for line in narrow)


def test_help_lists_every_command_on_one_clean_line() -> None:
    env = {**os.environ, "COLUMNS": "80"}
    command = [str(Path(sys.executable).parent / "salarymodel"), "--help"]
    text = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60).stdout
    assert "``" not in text and "Typer" not in text
    names = [c.name or c.callback.__name__ for c in app.registered_commands if c.callback]
    assert {"explain", "report", "train", "evaluate", "retrain", "versions"} <= set(names)
    for info in app.registered_commands:
        name = info.name or info.callback.__name__ if info.callback else ""
        assert info.short_help, name  # a one-line help of its own
        line = next(line for line in text.splitlines() if line.strip("│ ").startswith(f"{name} "))
        assert info.short_help in line and len(line) <= 80, line  # on one line, whole
