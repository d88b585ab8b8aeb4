"""Score a CSV of jobs: one output row per input row, in order, never dropped.

The file may be in any configured source format or the canonical one. A row
that cannot be scored keeps its place with an ``error`` naming its line and
column; the others get ``estimate_usd``, the ``view`` (which pay the number
describes: the source the model treated the row as), the calibrated range
``low_usd``/``high_usd`` with its ``coverage``, the ``support`` (training
records sharing role family, experience level and country), ``thin_support``
and any ``warnings``; for a US job, ``reference``: BLS OEWS May 2025's median and
P10-P90 of its occupation in its metro, else state, else the nation (a
``location`` column, "Austin, TX", places it); for a Chinese job in one of
its six roles, ``market_reference``: the Maimai 2023 AIGC talent report's
average pay (CNY and USD; ``china_reference``), with how few Chinese records
the model has.

A row is a job a person describes: what its columns leave out (a column
missing or a cell empty) gets the defaults HTTP gives a request
(``job_defaults.complete_job``), and a country the resolver does not know is
scored as missing with a warning, as over HTTP, not set aside. The kept rows
are scored in one batch, through the service's batch encoding.

When the file has the configured salary column (``prediction.salary_column``,
the person's own pay; with optional currency and period columns), the output
also has ``percentile``: where that pay falls in the job's predicted
distribution (``Estimate.percentile``). A pay that cannot be used (not a
number, not positive, outside ``validation``'s bounds once converted to yearly
USD, an unknown currency or period) leaves the percentile empty and says why
in ``error``, with its line and column; the row's estimate stands.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from salarymodel.config.settings import Settings
from salarymodel.config.sources import SourceConfig, SourcesConfig
from salarymodel.core.china_reference import market_reference
from salarymodel.core.currency import USD, PayError, exchange_rates, pay_in_usd
from salarymodel.core.job_defaults import complete_job, default_view, job_defaults
from salarymodel.core.model import Estimate, SalaryModel
from salarymodel.data.csv_output import write_csv
from salarymodel.data.derivations import RowError
from salarymodel.data.reading import SourceFormatError, read_csv, record_lines
from salarymodel.data.sources import (
    CANONICAL_SOURCE,
    adapt,
    detect_source,
    for_scoring,
    source_config,
)
from salarymodel.data.validation import validate_records


@dataclass(frozen=True)
class FrameRequest:
    """A raw frame to score and what scores it: what every step of the CSV path reads."""

    raw: pd.DataFrame
    model: SalaryModel
    settings: Settings
    sources: SourcesConfig
    source: str | None = None  # the file's format; None: detected from its columns
    lines: np.ndarray | None = None  # where each row starts in its file (``record_lines``)
    today: date | None = None  # the day whose year a job without one is taken in

    def line(self, position: int) -> int:
        """The file line a row (0-based position) starts on, for messages."""
        return int(self.lines[position]) if self.lines is not None else position + 2


# The output's estimate columns, in order, before any per-row value is filled in.
_OUTPUT_COLUMNS: dict[str, object] = {
    **dict.fromkeys(("estimate_usd", "low_usd", "high_usd", "coverage", "support"), np.nan),
    "thin_support": None,
    "view": None,
    "warnings": "",
    "track_record": "",  # how the job's pay-level group's estimates fared on a later year
    "reference": "",  # BLS OEWS wages of a US job's occupation and place
    "market_reference": "",  # Maimai 2023's pay of a Chinese job's role (china_reference)
    "estimate_local": "",  # in the job country's own money, its way ("₹1,00,40,147")
    "error": "",
}


def predict_frame(
    raw: pd.DataFrame,
    model: SalaryModel,
    settings: Settings,
    sources: SourcesConfig,
    source: str | None = None,
    lines: np.ndarray | None = None,
    today: date | None = None,
) -> pd.DataFrame:
    """Estimates for a raw frame; the result has one row per input row.

    ``lines``: where each row starts in its file (see ``record_lines``), for messages.
    ``today``: the day whose year a job without one is taken in (default: today).
    """
    request = FrameRequest(raw, model, settings, sources, source, lines, today)
    kept, quarantined, jobs = person_jobs(request)
    out = pd.DataFrame(index=range(len(raw)))
    for column, empty in _OUTPUT_COLUMNS.items():
        out[column] = empty
    positions = kept["row_number"].astype(int).to_numpy() - 2
    # One batch, through the service's batch encoding (``estimate_many``'s).
    estimates = model.estimate_jobs(jobs)
    if len(kept):
        _fill_estimates(out, positions, estimates, jobs, request)
    for row in quarantined.to_dict("records"):
        out.loc[int(row["row_number"]) - 2, "error"] = f"line {int(row['line'])}: {row['reason']}"
    if settings.prediction.salary_column in raw.columns:
        _fill_percentiles(out, positions, estimates, jobs, request)
    return out


def _fill_estimates(
    out: pd.DataFrame,
    positions: np.ndarray,
    estimates: list[Estimate],
    jobs: list[dict],
    request: FrameRequest,
) -> None:
    """The kept rows' estimates, ranges, warnings and references, at their positions."""
    model = request.model
    for column in ("estimate_usd", "low_usd", "high_usd"):
        values = [getattr(e, column) for e in estimates]
        out.loc[positions, column] = [None if v is None else round(v, 2) for v in values]
    out.loc[positions, "coverage"] = [e.coverage for e in estimates]
    out.loc[positions, "support"] = [e.support for e in estimates]
    out.loc[positions, "thin_support"] = [e.thin_support for e in estimates]
    out.loc[positions, "view"] = [e.view for e in estimates]
    out.loc[positions, "warnings"] = ["; ".join(e.warnings) for e in estimates]
    tracks = [e.track_record for e in estimates]
    out.loc[positions, "track_record"] = [t.text() if t else "" for t in tracks]
    references = [model.builder.reference(job) for job in jobs]
    out.loc[positions, "reference"] = [r["text"] if r else "" for r in references]
    config = request.settings.china_reference
    markets = [market_reference(job, model.builder, config) for job in jobs]
    out.loc[positions, "market_reference"] = [m["text"] if m else "" for m in markets]
    out.loc[positions, "estimate_local"] = local_estimates(estimates, jobs)


def _fill_percentiles(
    out: pd.DataFrame,
    positions: np.ndarray,
    estimates: list[Estimate],
    jobs: list[dict],
    request: FrameRequest,
) -> None:
    """A ``percentile`` column: where each kept row's own pay falls; why not in ``error``."""
    years = [job["year"] for job in jobs]
    countries = [job["country"] if isinstance(job["country"], str) else None for job in jobs]
    rows = zip(positions.tolist(), estimates, years, countries, strict=True)
    out.insert(3, "percentile", np.nan)
    for position, estimate, year, country in rows:
        value, problem = row_percentile(
            request.raw.iloc[position], estimate, year, request.model, request.settings, country
        )
        out.loc[position, "percentile"] = value
        if problem:
            before = out.loc[position, "error"]
            problem = f"line {request.line(position)}: {problem}"
            out.loc[position, "error"] = f"{before}; {problem}" if before else problem


def local_estimates(estimates: list[Estimate], jobs: list[dict]) -> list[str]:
    """Each estimate in its job country's own currency at the ECB's average for the job's
    year, as that country writes money (Babel); US dollars where the ECB does not quote
    the country's currency or the country is not known."""
    from salarymodel.core.money_format import in_local_money

    return [
        in_local_money(e.estimate_usd, job["country"] if isinstance(job["country"], str) else "",
                       int(job["year"]))
        for e, job in zip(estimates, jobs, strict=True)
    ]  # fmt: skip


# The canonical fields holding a country: a country the resolver does not know
# is not an error for a person's job (HTTP and the page estimate it with a
# warning), so its text goes to the model, which treats it as missing and says so.
_COUNTRY_FIELDS = ("country", "company_country")


def person_jobs(
    request: FrameRequest,
) -> tuple[pd.DataFrame, pd.DataFrame, list[dict[str, object]]]:
    """A raw frame's rows as the jobs the model scores: (kept records, quarantined
    rows with reasons, one completed job dict per kept record, in order).

    Each job gets the defaults HTTP gives a request (``job_defaults.complete_job``).
    """
    raw, model, settings = request.raw, request.model, request.settings
    sources = for_scoring(request.sources)
    name = request.source or detect_source(list(raw.columns), sources)
    config = source_config(sources, name)
    adapted = adapt(raw.reset_index(drop=True), name, config, settings, request.lines)
    records = adapted.records
    view = default_view(model.metadata, settings)
    records["source"] = records["source"].where(records["source"] != CANONICAL_SOURCE, view)
    # A salary in the file is not an input: its bounds must not block an estimate.
    records["salary_usd"] = None
    unknown = _unknown_countries(records, adapted.raw, config)
    result = validate_records(
        records,
        settings,
        require_salary=False,
        labels=adapted.labels,
        file_problems=adapted.file_problems,
    )
    kept = result.kept
    defaults = job_defaults(settings, view, request.today)
    jobs = []
    for record in kept.to_dict("records"):
        given = unknown.get(int(record["row_number"]), {})
        jobs.append(complete_job({**record, **given}, defaults))
    return kept, result.quarantined, jobs


def _unknown_countries(
    records: pd.DataFrame, raw: pd.DataFrame, config: SourceConfig
) -> dict[int, dict[str, str]]:
    """Countries the adapter could not resolve, as written, by ``row_number``; their
    cells are emptied in ``records`` so validation lets the row through."""
    found: dict[int, dict[str, str]] = {}
    for field in _COUNTRY_FIELDS:
        mapping = config.fields.get(field)
        if mapping is None or mapping.column is None or mapping.column not in raw.columns:
            continue
        bad = records[field].map(lambda v: isinstance(v, RowError)).to_numpy(bool)
        texts = raw[mapping.column].to_numpy()[bad]
        for row, text in zip(records.loc[bad, "row_number"], texts, strict=True):
            found.setdefault(int(row), {})[field] = str(text).strip()
        records.loc[bad, field] = None
    return found


def _cell(row: pd.Series, column: str) -> str | None:
    value = row.get(column)
    text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
    return text.strip() or None


def row_percentile(
    row: pd.Series,
    estimate: Estimate,
    year: object,
    model: SalaryModel,
    settings: Settings,
    country: str | None = None,
) -> tuple[float | None, str]:
    """Where a row's own pay falls in its estimate's distribution: (percentile, "") when
    the row has a usable pay, (None, "column = value: why") when not, (None, "") when blank.

    The pay is read from the configured salary column, in the row's currency
    and period (configured columns; USD and year when absent or blank), and
    converted with the ECB's exchange rates for the row's year (``exchange_rates``).
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
            year_of_pay, exchange_rates(),
            settings.validation,
        )  # fmt: skip
    except PayError as error:
        column = {"current_salary": names.salary_column, "currency": names.currency_column,
                  "period": names.period_column}[error.field]  # fmt: skip
        return None, f"{column} = {pay[column]!r}: {error}"
    percentile = estimate.percentile(usd)
    if percentile is None:
        return None, "no calibrated range: no percentile"
    if model.percentiles is not None:  # the map the service applies too
        percentile = model.percentiles.calibrate(percentile, estimate.view, country)
    return round(percentile, 1), ""


def read_scoring_file(input_path: Path) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The rows of a file to score, as text, and where each starts in the file (for
    messages). Needs no model: `predict` refuses a bad file before loading one,
    and a file of only a header as training's intake does."""
    raw = read_csv(input_path)
    if raw.empty:
        raise SourceFormatError(f"{input_path}: no data rows under the header")
    return raw, record_lines(input_path, len(raw))


def input_names(columns: list[str], written: set[str]) -> list[str]:
    """The input's column names in the output: one the output also writes (a file that
    ``predict`` scored before, an ``error`` column of the user's) is kept as
    ``input_<name>``, so neither is lost nor read for the other."""
    names: list[str] = []
    for column in columns:
        name = column
        while name in written or name in names or (name != column and name in columns):
            name = f"input_{name}"
        names.append(name)
    return names


def write_scored(
    raw: pd.DataFrame,
    lines: np.ndarray | None,
    output_path: Path,
    model: SalaryModel,
    settings: Settings,
    sources: SourcesConfig,
    source: str | None = None,
) -> pd.DataFrame:
    """Score the rows of a file already read (``read_scoring_file``) and write the
    input columns plus estimates to ``output_path``."""
    scored = predict_frame(raw, model, settings, sources, source, lines)
    given = raw.reset_index(drop=True)
    given.columns = input_names(list(given.columns), set(scored.columns))
    combined = pd.concat([given, scored], axis=1)
    write_csv(combined, output_path, index=False)  # formula-like cells neutralised
    return combined
