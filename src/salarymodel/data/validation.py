"""Schema check of canonical records; bad rows are set aside with their reasons.

Rows in = rows kept + rows quarantined, always. A quarantined row keeps its
source, its line in the file and every reason it failed, written as
``column = value: what is wrong``, the column being the file's own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pandera.pandas as pa

from salarymodel.config.data import InputLimitsConfig, ValidationConfig
from salarymodel.config.settings import Settings
from salarymodel.data.csv_output import formula_mask, write_csv
from salarymodel.data.derivations import RowError
from salarymodel.vocabulary import (
    COMPANY_SIZES,
    EMPLOYMENT_TYPES,
    EXPERIENCE_LEVELS,
    MAX_SKILLS,
    MAX_TITLE_LENGTH,
    REMOTE_RATIOS,
)

_CODE_COLUMNS = (
    "experience_level",
    "company_size",
    "employment_type",
    "country",
    "company_country",
)
_NUMERIC_COLUMNS = ("remote_ratio", "year", "month", "salary_usd")
# Bytes that are not UTF-8 are read as the replacement character, so the rows
# holding them can be named and set aside instead of failing the whole file.
UNDECODABLE = "\ufffd"
FORMULA_PROBLEM = "looks like a spreadsheet formula (starts with =, +, -, @, tab or CR)"


def cell_problems(raw: pd.DataFrame, limits: InputLimitsConfig) -> dict[int, list[Reason]]:
    """Rows of a file as read (index = ``row_number`` - 2) holding a formula-like cell, a
    cell longer than ``max_cell_chars`` or a row longer than ``max_row_chars``, with a
    reason per cell. Every column counts: the rows are kept as delivered and may be
    written out again."""
    problems: dict[int, list[Reason]] = {}
    row_chars = pd.Series(0, index=raw.index)
    for column in raw.columns:
        text = raw[column].astype("string")
        lengths = text.str.len().fillna(0).astype(int)
        row_chars += lengths
        too_long = lengths > limits.max_cell_chars
        for idx in raw.index[too_long.to_numpy()]:
            problems.setdefault(int(idx) + 2, []).append(
                Reason(
                    column,
                    f"{lengths[idx]:,} characters, more than {limits.max_cell_chars:,} "
                    "(input_limits.max_cell_chars)",
                )
            )
        for idx in raw.index[(formula_mask(text) & ~too_long).to_numpy()]:
            problems.setdefault(int(idx) + 2, []).append(
                Reason(column, FORMULA_PROBLEM, str(text[idx]))
            )
    for idx in raw.index[(row_chars > limits.max_row_chars).to_numpy()]:
        problems.setdefault(int(idx) + 2, []).append(
            Reason(
                "line",
                f"{row_chars[idx]:,} characters in its cells, more than "
                f"{limits.max_row_chars:,} (input_limits.max_row_chars)",
            )
        )
    return problems


@dataclass
class ValidationResult:
    """Kept records, quarantined rows with reasons, and the reason counts."""

    kept: pd.DataFrame
    quarantined: pd.DataFrame
    reason_counts: Counter = field(default_factory=Counter)

    @property
    def rows_in(self) -> int:
        return len(self.kept) + len(self.quarantined)


def _is_skill_list(value: object) -> bool:
    return value is None or (
        isinstance(value, list)
        and len(value) <= MAX_SKILLS
        and all(isinstance(s, str) and s for s in value)
    )


def _is_title(value: object) -> bool:
    return isinstance(value, str) and len(value.strip()) > 0 and len(value) <= MAX_TITLE_LENGTH


def _one_of(values: tuple) -> str:
    return "not one of " + ", ".join(map(str, values))


def canonical_schema(settings: Settings, require_salary: bool) -> pa.DataFrameSchema:
    """The pandera schema every canonical record must pass.

    Each check's ``error`` is the sentence a person reads in the quarantine
    file and the CLI, so it says what is allowed, not which check failed.
    """
    limits = settings.validation
    return pa.DataFrameSchema(
        {
            "job_title": pa.Column(
                checks=pa.Check(
                    lambda s: s.map(_is_title),
                    error=f"must be non-empty text of at most {MAX_TITLE_LENGTH} characters",
                ),
                nullable=False,
            ),
            "experience_level": _one_of_column(EXPERIENCE_LEVELS),
            "company_size": _one_of_column(COMPANY_SIZES),
            "employment_type": _one_of_column(EMPLOYMENT_TYPES),
            "country": _country_column(),
            "company_country": _country_column(),
            "remote_ratio": _one_of_column(REMOTE_RATIOS, float),
            "year": pa.Column(
                float,
                [
                    _whole_number(),
                    pa.Check.in_range(
                        limits.year_min,
                        limits.year_max,
                        error=f"outside {limits.year_min}-{limits.year_max} "
                        "(validation.year_min/max)",
                    ),
                ],
                nullable=True,
            ),
            "month": pa.Column(
                float,
                [_whole_number(), pa.Check.in_range(1, 12, error="outside 1-12")],
                nullable=True,
            ),
            "salary_usd": _salary_column(limits, require_salary),
            "skills": pa.Column(
                checks=pa.Check(
                    lambda s: s.map(_is_skill_list),
                    error=f"must be a list of at most {MAX_SKILLS} skill names",
                ),
                nullable=True,
            ),
            "source": pa.Column(
                checks=pa.Check.str_length(1, 50, error="must be text of 1-50 characters"),
                nullable=False,
            ),
        },
        strict=False,
    )


def _whole_number() -> pa.Check:
    """A year or month is a whole number: the trees would read 2024.5 as a year between
    two, and HTTP refuses it."""
    return pa.Check(lambda s: s % 1 == 0, error="not a whole number")


def _one_of_column(values: tuple, dtype: type | None = None) -> pa.Column:
    """A column whose values must be one of ``values`` (missing allowed)."""
    return pa.Column(dtype, pa.Check.isin(values, error=_one_of(values)), nullable=True)


def _country_column() -> pa.Column:
    """A column of two-letter country codes (missing allowed)."""
    return pa.Column(
        checks=pa.Check.str_matches(r"^[A-Z]{2}$", error="not a country"), nullable=True
    )


def _salary_column(limits: ValidationConfig, require_salary: bool) -> pa.Column:
    """Salary in USD a year within the configured bounds; missing only when not required."""
    salary_min, salary_max = limits.salary_usd_min, limits.salary_usd_max
    return pa.Column(
        float,
        [
            pa.Check.ge(
                salary_min,
                error=f"below the configured minimum of {salary_min:,.0f} USD a year "
                "(validation.salary_usd_min)",
            ),
            pa.Check.le(
                salary_max,
                error=f"above the configured maximum of {salary_max:,.0f} USD a year "
                "(validation.salary_usd_max)",
            ),
        ],
        nullable=not require_salary,
    )


@dataclass(frozen=True)
class Reason:
    """Why a row is set aside: the file's column, what is wrong, and the value found."""

    column: str
    problem: str
    value: object = None

    @property
    def kind(self) -> str:
        """The reason without its value: what the counts group by."""
        return f"{self.column}: {self.problem}"

    def __str__(self) -> str:
        if self.value is None:
            return self.kind
        return f"{self.column} = {_shown(self.value)}: {self.problem}"


def _shown(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return f"{value:.0f}"
    return repr(value[:80] if isinstance(value, str) else value)


RowReasons = dict[int, list[Reason]]  # row label -> reasons, in the order found


def _normalise(
    records: pd.DataFrame, reasons: RowReasons, label: Callable[[str], str]
) -> pd.DataFrame:
    """Fold code case, coerce numbers, and note cells a rule could not read."""
    out = records.copy()
    for column in out.columns:
        if out[column].dtype != object:
            continue  # a RowError lives only in an object column; half the columns are not
        errors = out[column].map(lambda v: isinstance(v, RowError))
        for idx in out.index[errors]:
            error = out.at[idx, column]
            reasons.setdefault(idx, []).append(Reason(label(column), error.message, error.value))
        out.loc[errors, column] = None
    for column in _CODE_COLUMNS:
        out[column] = out[column].map(lambda v: v.strip().upper() if isinstance(v, str) else v)
    for column in _NUMERIC_COLUMNS:
        text = out[column].map(lambda v: v.strip() if isinstance(v, str) else v)
        numbers = pd.to_numeric(text, errors="coerce").astype(float)
        bad = text.notna() & numbers.isna()
        for idx in out.index[bad]:
            reasons.setdefault(idx, []).append(Reason(label(column), "not a number", text[idx]))
        out[column] = numbers
    return out


def _schema_reasons(
    normalised: pd.DataFrame,
    schema: pa.DataFrameSchema,
    reasons: RowReasons,
    label: Callable[[str], str],
) -> None:
    try:
        schema.validate(normalised, lazy=True)
    except pa.errors.SchemaErrors as errors:
        for case in errors.failure_cases.itertuples(index=False):
            if pd.isna(case.index):
                continue
            idx, column = int(case.index), label(str(case.column))
            if any(r.column == column for r in reasons.get(idx, [])):
                continue  # already said (a cell that was not a number is now missing)
            missing = case.check == "not_nullable"
            reasons.setdefault(idx, []).append(
                Reason(
                    column,
                    "missing" if missing else str(case.check),
                    None if missing else case.failure_case,
                )
            )


def validate_records(
    records: pd.DataFrame,
    settings: Settings,
    require_salary: bool = True,
    labels: Mapping[str, str] | None = None,
    file_problems: Mapping[int, Sequence[Reason]] | None = None,
) -> ValidationResult:
    """Split canonical records into kept and quarantined (with reasons per row).

    ``labels`` names each canonical field by the file column(s) it came from,
    so a reason points at what the user can fix. ``file_problems`` (by
    ``row_number``) are what the adapter found in the file itself: a repeated
    header line, bytes that are not UTF-8. Such a row's other cells cannot be
    trusted, so those are its only reasons.
    """
    names = labels or {}

    def label(column: str) -> str:
        return names.get(column, column)

    reasons: RowReasons = {}
    normalised = _normalise(records, reasons, label)
    _schema_reasons(normalised, canonical_schema(settings, require_salary), reasons, label)
    if file_problems:
        lines = records["row_number"]
        for idx in records.index[lines.isin(list(file_problems))]:
            reasons[idx] = list(file_problems[int(lines[idx])])
    bad = normalised.index.isin(list(reasons))
    quarantined = records.loc[bad].copy()
    quarantined["reason"] = [
        "; ".join(map(str, dict.fromkeys(reasons[i]))) for i in quarantined.index
    ]
    counts = Counter(r.kind for i in quarantined.index for r in dict.fromkeys(reasons[i]))
    return ValidationResult(
        kept=normalised.loc[~bad].reset_index(drop=True),
        quarantined=quarantined.reset_index(drop=True),
        reason_counts=counts,
    )


def quarantine_table(quarantined: pd.DataFrame, delivered: pd.DataFrame) -> pd.DataFrame:
    """The quarantined rows as delivered: ``line``, ``reason``, then the file's own columns.

    ``delivered`` is the file as read (index = ``row_number`` - 2), so a fixed
    copy of this table minus its first two columns can be fed back in.
    """
    rows = delivered.loc[quarantined["row_number"].astype(int).to_numpy() - 2]
    lines = quarantined["line"].astype(int).to_numpy()
    return pd.concat(
        [
            pd.DataFrame({"line": lines, "reason": quarantined["reason"].to_numpy()}),
            rows.reset_index(drop=True),
        ],
        axis=1,
    )


def write_quarantine(table: pd.DataFrame, path: Path) -> Path:
    """Write a quarantine table as UTF-8 CSV (formula-like cells neutralised)."""
    return write_csv(table, path, index=False)
