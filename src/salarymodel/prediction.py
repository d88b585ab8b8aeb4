"""Score a CSV of jobs: one output row per input row, in order, never dropped.

The file may be in any configured source format or the canonical one. A row
that cannot be scored keeps its place with an ``error`` naming its line and
column; the others get ``estimate_usd``, the ``view`` (which pay the number
describes: the source the model treated the row as), the calibrated range
``low_usd``/``high_usd`` with its ``coverage``, the ``support`` (training
records sharing role family, experience level and country), ``thin_support``
and any ``warnings``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from salarymodel.config import Settings, SourcesConfig
from salarymodel.model import SalaryModel
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
    if len(kept):
        positions = kept["row_number"].astype(int).to_numpy() - 2
        estimates = [model.estimate_job(job) for job in kept.to_dict("records")]
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
    return out


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
    output_path.parent.mkdir(parents=True, exist_ok=True)
    combined.to_csv(output_path, index=False)
    return combined
