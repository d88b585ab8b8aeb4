"""Score a CSV of jobs: one output row per input row, in order, never dropped.

The file may be in any configured source format or the canonical one. A row
that cannot be scored keeps its place with an ``error`` naming its line and
column; the others get ``estimate_usd``, the ``view`` (which pay the number
describes: the source the model treated the row as) and any ``warnings``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from salarymodel.config import Settings, SourcesConfig
from salarymodel.model import SalaryModel
from salarymodel.sources import CANONICAL_SOURCE, adapt, detect_source, read_csv
from salarymodel.validation import validate_records


def predict_frame(
    raw: pd.DataFrame,
    model: SalaryModel,
    settings: Settings,
    sources: SourcesConfig,
    source: str | None = None,
) -> pd.DataFrame:
    """Estimates for a raw frame; the result has one row per input row."""
    name = source or detect_source(list(raw.columns), sources)
    adapted = adapt(raw.reset_index(drop=True), name, sources.sources[name], settings)
    records = adapted.records
    view = records["source"].where(records["source"] != CANONICAL_SOURCE, None)
    records["source"] = view.fillna(settings.serving.default_source)
    # A salary in the file is not an input: its bounds must not block an estimate.
    records["salary_usd"] = None
    result = validate_records(records, settings, require_salary=False)
    out = pd.DataFrame(index=range(len(raw)))
    out["estimate_usd"] = np.nan
    out["view"] = None
    out["warnings"] = ""
    out["error"] = ""
    kept = result.kept
    if len(kept):
        positions = kept["row_number"].astype(int).to_numpy() - 2
        estimates, warnings = [], []
        for job in kept.to_dict("records"):
            value, notes = model.estimate(job)
            estimates.append(round(value, 2))
            warnings.append("; ".join(notes))
        out.loc[positions, "estimate_usd"] = estimates
        out.loc[positions, "view"] = kept["source"].to_numpy()
        out.loc[positions, "warnings"] = warnings
    for row in result.quarantined.to_dict("records"):
        line = int(row["row_number"])
        out.loc[line - 2, "error"] = f"line {line}: {row['reason']}"
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
    scored = predict_frame(raw, model, settings, sources, source)
    combined = pd.concat([raw.reset_index(drop=True), scored], axis=1)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    combined.to_csv(output_path, index=False)
    return combined
