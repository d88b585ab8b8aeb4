"""Schema check of canonical records; bad rows are set aside with their reasons.

Rows in = rows kept + rows quarantined, always. A quarantined row keeps its
source, its line in the file and every reason it failed, written as
``column: what is wrong (value)``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pandera.pandas as pa

from salarymodel.config import Settings
from salarymodel.derivations import RowError

EXPERIENCE_LEVELS = ("EN", "MI", "SE", "EX")
COMPANY_SIZES = ("S", "M", "L")
EMPLOYMENT_TYPES = ("FT", "PT", "CT", "FL")
REMOTE_RATIOS = (0, 50, 100)
MAX_TITLE_LENGTH = 200
MAX_SKILLS = 100
_CODE_COLUMNS = (
    "experience_level",
    "company_size",
    "employment_type",
    "country",
    "company_country",
)
_NUMERIC_COLUMNS = ("remote_ratio", "year", "month", "salary_usd")


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


def canonical_schema(settings: Settings, require_salary: bool) -> pa.DataFrameSchema:
    """The pandera schema every canonical record must pass."""
    limits = settings.validation
    return pa.DataFrameSchema(
        {
            "job_title": pa.Column(
                checks=pa.Check(
                    lambda s: (
                        s.map(lambda v: isinstance(v, str) and len(v.strip()) > 0)
                        & s.map(lambda v: isinstance(v, str) and len(v) <= MAX_TITLE_LENGTH)
                    ),
                    error=f"must be non-empty text of at most {MAX_TITLE_LENGTH} characters",
                ),
                nullable=False,
            ),
            "experience_level": pa.Column(checks=pa.Check.isin(EXPERIENCE_LEVELS), nullable=True),
            "company_size": pa.Column(checks=pa.Check.isin(COMPANY_SIZES), nullable=True),
            "employment_type": pa.Column(checks=pa.Check.isin(EMPLOYMENT_TYPES), nullable=True),
            "country": pa.Column(checks=pa.Check.str_matches(r"^[A-Z]{2}$"), nullable=True),
            "company_country": pa.Column(checks=pa.Check.str_matches(r"^[A-Z]{2}$"), nullable=True),
            "remote_ratio": pa.Column(float, pa.Check.isin(REMOTE_RATIOS), nullable=True),
            "year": pa.Column(
                float, pa.Check.in_range(limits.year_min, limits.year_max), nullable=True
            ),
            "month": pa.Column(float, pa.Check.in_range(1, 12), nullable=True),
            "salary_usd": pa.Column(
                float,
                pa.Check.in_range(limits.salary_usd_min, limits.salary_usd_max),
                nullable=not require_salary,
            ),
            "skills": pa.Column(
                checks=pa.Check(
                    lambda s: s.map(_is_skill_list),
                    error=f"must be a list of at most {MAX_SKILLS} skill names",
                ),
                nullable=True,
            ),
            "source": pa.Column(checks=pa.Check.str_length(1, 50), nullable=False),
        },
        strict=False,
    )


def _normalise(records: pd.DataFrame, reasons: dict[int, list[str]]) -> pd.DataFrame:
    """Fold code case, coerce numbers, and note cells a rule could not read."""
    out = records.copy()
    for column in out.columns:
        errors = out[column].map(lambda v: isinstance(v, RowError))
        for idx in out.index[errors]:
            reasons.setdefault(idx, []).append(f"{column}: {out.at[idx, column].message}")
        out.loc[errors, column] = None
    for column in _CODE_COLUMNS:
        out[column] = out[column].map(lambda v: v.strip().upper() if isinstance(v, str) else v)
    for column in _NUMERIC_COLUMNS:
        text = out[column].map(lambda v: v.strip() if isinstance(v, str) else v)
        numbers = pd.to_numeric(text, errors="coerce").astype(float)
        bad = text.notna() & numbers.isna()
        for idx in out.index[bad]:
            reasons.setdefault(idx, []).append(f"{column}: not a number ({text[idx]!r})")
        out[column] = numbers
    return out


def _header_repeats(records: pd.DataFrame, raw_columns: list[str] | None) -> pd.Series:
    if not raw_columns or "job_title" not in records:
        return pd.Series(False, index=records.index)
    header_words = {c.strip().lower() for c in raw_columns}
    return records["job_title"].map(
        lambda v: isinstance(v, str) and v.strip().lower() in header_words
    )


def validate_records(
    records: pd.DataFrame,
    settings: Settings,
    require_salary: bool = True,
    raw_columns: list[str] | None = None,
) -> ValidationResult:
    """Split canonical records into kept and quarantined (with reasons per row)."""
    reasons: dict[int, list[str]] = {}
    header = _header_repeats(records, raw_columns)
    for idx in records.index[header]:
        reasons.setdefault(idx, []).append("row: repeated header line")
    normalised = _normalise(records, reasons)
    try:
        canonical_schema(settings, require_salary).validate(normalised, lazy=True)
    except pa.errors.SchemaErrors as errors:
        for case in errors.failure_cases.itertuples(index=False):
            if pd.isna(case.index):
                continue
            value = case.failure_case
            reasons.setdefault(int(case.index), []).append(
                f"{case.column}: fails {case.check} ({value!r})"
            )
    bad = normalised.index.isin(list(reasons))
    quarantined = records.loc[bad].copy()
    quarantined["reason"] = ["; ".join(dict.fromkeys(reasons[i])) for i in quarantined.index]
    counts = Counter(r.split(" (")[0] for i in quarantined.index for r in dict.fromkeys(reasons[i]))
    return ValidationResult(
        kept=normalised.loc[~bad].reset_index(drop=True),
        quarantined=quarantined.reset_index(drop=True),
        reason_counts=counts,
    )


def write_quarantine(quarantined: pd.DataFrame, path: Path) -> Path:
    """Write quarantined rows (with their reasons) as CSV; skills as ';'-joined text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    out = quarantined.copy()
    if "skills" in out:
        out["skills"] = out["skills"].map(
            lambda v: ";".join(v) if isinstance(v, list) else ("" if v is None else str(v))
        )
    out.to_csv(path, index=False)
    return path
