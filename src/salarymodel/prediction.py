"""Score a CSV of jobs: one output row per input row, in order, never dropped.

The file may be in any configured source format or the canonical one. A row
that cannot be scored keeps its place with an ``error`` naming its line and
column; the others get ``estimate_usd``, the ``view`` (which pay the number
describes: the source the model treated the row as), the calibrated range
``low_usd``/``high_usd`` with its ``coverage``, the ``support`` (training
records sharing role family, experience level and country), ``thin_support``
and any ``warnings``.

When the file has the configured salary column (``prediction.salary_column``,
the person's own pay; with optional currency and period columns), the output
also has ``percentile``: where that pay falls in the job's predicted
distribution (``Estimate.percentile``). A pay that cannot be used (not a
number, not positive, outside ``validation``'s bounds once converted to yearly
USD, an unknown currency or period) leaves the percentile empty and says why
in ``error``, with its line and column; the row's estimate stands.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from salarymodel.config import Settings, SourcesConfig
from salarymodel.csv_output import write_csv
from salarymodel.currency import USD, CurrencyTable, PayError, pay_in_usd
from salarymodel.model import Estimate, SalaryModel
from salarymodel.sources import CANONICAL_SOURCE, adapt, detect_source, read_csv, record_lines
from salarymodel.validation import validate_records


def predict_frame(
    raw: pd.DataFrame,
    model: SalaryModel,
    settings: Settings,
    sources: SourcesConfig,
    source: str | None = None,
    lines: np.ndarray | None = None,
) -> pd.DataFrame:
    """Estimates for a raw frame; the result has one row per input row.

    ``lines``: where each row starts in its file (see ``record_lines``), for messages.
    """
    name = source or detect_source(list(raw.columns), sources)
    adapted = adapt(raw.reset_index(drop=True), name, sources.sources[name], settings, lines)
    records = adapted.records
    view = records["source"].where(records["source"] != CANONICAL_SOURCE, None)
    records["source"] = view.fillna(settings.serving.default_source)
    # A salary in the file is not an input: its bounds must not block an estimate.
    records["salary_usd"] = None
    result = validate_records(
        records,
        settings,
        require_salary=False,
        labels=adapted.labels,
        file_problems=adapted.file_problems,
    )
    out = pd.DataFrame(index=range(len(raw)))
    for column in ("estimate_usd", "low_usd", "high_usd", "coverage", "support"):
        out[column] = np.nan
    out["thin_support"] = None
    out["view"] = None
    out["warnings"] = ""
    out["error"] = ""
    kept = result.kept
    positions = kept["row_number"].astype(int).to_numpy() - 2
    estimates = [model.estimate_job(job) for job in kept.to_dict("records")]
    if len(kept):
        for column in ("estimate_usd", "low_usd", "high_usd"):
            values = [getattr(e, column) for e in estimates]
            out.loc[positions, column] = [None if v is None else round(v, 2) for v in values]
        out.loc[positions, "coverage"] = [e.coverage for e in estimates]
        out.loc[positions, "support"] = [e.support for e in estimates]
        out.loc[positions, "thin_support"] = [e.thin_support for e in estimates]
        out.loc[positions, "view"] = kept["source"].to_numpy()
        out.loc[positions, "warnings"] = ["; ".join(e.warnings) for e in estimates]
    for row in result.quarantined.to_dict("records"):
        out.loc[int(row["row_number"]) - 2, "error"] = f"line {int(row['line'])}: {row['reason']}"
    if settings.prediction.salary_column in raw.columns:
        years = pd.to_numeric(kept["year"], errors="coerce").tolist()
        rows = zip(positions.tolist(), estimates, years, strict=True)
        out.insert(3, "percentile", np.nan)
        for position, estimate, year in rows:
            line = int(lines[position]) if lines is not None else position + 2
            value, problem = row_percentile(raw.iloc[position], estimate, year, model, settings)
            out.loc[position, "percentile"] = value
            if problem:
                before = out.loc[position, "error"]
                problem = f"line {line}: {problem}"
                out.loc[position, "error"] = f"{before}; {problem}" if before else problem
    return out


def _cell(row: pd.Series, column: str) -> str | None:
    value = row.get(column)
    text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
    return text.strip() or None


def row_percentile(
    row: pd.Series, estimate: Estimate, year: object, model: SalaryModel, settings: Settings
) -> tuple[float | None, str]:
    """Where a row's own pay falls in its estimate's distribution: (percentile, "") when
    the row has a usable pay, (None, "column = value: why") when not, (None, "") when blank.

    The pay is read from the configured salary column, in the row's currency
    and period (configured columns; USD and year when absent or blank), and
    converted with the model's exchange rates for the row's year.
    """
    names = settings.prediction
    given = _cell(row, names.salary_column)
    if given is None:
        return None, ""
    pay = {
        names.salary_column: given,
        names.currency_column: _cell(row, names.currency_column) or USD,
        names.period_column: (_cell(row, names.period_column) or "year").lower(),
    }
    year_of_pay = (
        int(year) if isinstance(year, int | float) and not np.isnan(year) else date.today().year
    )
    try:
        amount = float(given.replace(",", ""))
    except ValueError:
        return None, f"{names.salary_column} = {given!r}: not a number"
    try:
        usd, _ = pay_in_usd(
            amount, pay[names.currency_column], pay[names.period_column],
            year_of_pay, model.currency or CurrencyTable(),
            settings.validation,
        )  # fmt: skip
    except PayError as error:
        column = {"current_salary": names.salary_column, "currency": names.currency_column,
                  "period": names.period_column}[error.field]  # fmt: skip
        return None, f"{column} = {pay[column]!r}: {error}"
    percentile = estimate.percentile(usd)
    if percentile is None:
        return None, "no calibrated range: no percentile"
    return round(percentile, 1), ""


def predict_file(
    input_path: Path,
    output_path: Path,
    model: SalaryModel,
    settings: Settings,
    sources: SourcesConfig,
    source: str | None = None,
) -> pd.DataFrame:
    """Score ``input_path`` and write the input columns plus estimates to ``output_path``."""
    raw = read_csv(input_path)
    lines = record_lines(input_path, len(raw))
    scored = predict_frame(raw, model, settings, sources, source, lines)
    combined = pd.concat([raw.reset_index(drop=True), scored], axis=1)
    write_csv(combined, output_path, index=False)  # formula-like cells neutralised
    return combined
