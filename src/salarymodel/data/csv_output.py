"""Every CSV the project writes, with cells a spreadsheet would run neutralised.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
is run as a formula by Excel, LibreOffice and Google Sheets (OWASP, "CSV
Injection"): ``=HYPERLINK(...)`` phones home, ``=cmd|' /C calc'!A0`` asks to
run a program. ``write_csv`` writes such a cell with a single quote in front,
as OWASP advises, so a spreadsheet shows it as text. A plain number ("-5",
"+1.5e3") is not a formula and is written as it is, and so are numeric
columns. Validation uses the same test to quarantine such cells on the way in
(``validation.cell_problems``); this is the way out: ``predict --output``, the
quarantine files, the reports' tables.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = r"[+-]?(?:\d[\d,]*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
NEUTRALISER = "'"


def is_formula(value: object) -> bool:
    """Whether a cell is text a spreadsheet would run as a formula (not a plain number)."""
    return (
        isinstance(value, str)
        and value[:1] in FORMULA_LEADS
        and re.fullmatch(_PLAIN_NUMBER, value) is None
    )


def formula_mask(values: pd.Series) -> pd.Series:
    """``is_formula`` for a column, vectorised (missing cells are not formulas)."""
    text = values.astype("string")
    plain = text.str.fullmatch(_PLAIN_NUMBER).fillna(False).astype(bool)
    return (text.str[:1].isin(FORMULA_LEADS).fillna(False).astype(bool) & ~plain).astype(bool)


def neutralised(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose formula-like text cells and column names start with a
    single quote; numeric columns are left as they are."""
    out = frame.copy()
    for position in range(frame.shape[1]):
        values = frame.iloc[:, position]
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue
        mask = formula_mask(values)
        if mask.any():
            cells = values.astype(object).copy()
            cells[mask.to_numpy()] = [NEUTRALISER + str(v) for v in values[mask.to_numpy()]]
            out.isetitem(position, cells)
    out.columns = [NEUTRALISER + c if is_formula(c) else c for c in frame.columns]
    return out


def write_csv(frame: pd.DataFrame, path: Path, **options: Any) -> Path:
    """Write ``frame`` as CSV (``DataFrame.to_csv`` options) with formulas neutralised.

    The file appears whole or not at all (an earlier one stays as it was).
    Lines end in CRLF (RFC 4180): with "\\n" alone, Python's csv writer leaves a
    cell holding a carriage return unquoted, and a reader splits the row there.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"lineterminator": "\r\n", **options}
    if path.exists() and not path.is_file():  # a device or a pipe: nothing to replace
        neutralised(frame).to_csv(path, **options)
        return path
    # Written whole beside it, then put in its place: a write that fails (a full
    # disk) leaves an earlier file of that name as it was, not cut short. The
    # name keeps its suffixes, from which pandas infers the compression.
    target = path.resolve() if path.is_symlink() else path  # the file a link names
    partial = target.with_name(f".{uuid.uuid4().hex[:12]}.partial.{target.name}")
    try:
        neutralised(frame).to_csv(partial, **options)
        os.replace(partial, target)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise OSError(error.errno, error.strerror or str(error), str(path)) from error
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path
