"""The drift report written out: ``drift.json`` and the self-contained ``drift.html``.

The figures are ``evaluation.drift``'s; the page's markup is the template
``salarymodel/report/templates/drift.html``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from salarymodel.evaluation.drift import PSI_MAJOR, PSI_MODERATE, DriftReport


# ----- output --------------------------------------------------------------------------
def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _safe(value: object) -> object:
    # JSON has no NaN: undefined numbers are null.
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_safe(v) for v in value]
    return value


def write_drift_report(report: DriftReport, folder: Path) -> tuple[Path, Path]:
    """Write ``drift.json`` and ``drift.html`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    json_path, html_path = folder / "drift.json", folder / "drift.html"
    payload = _safe(report.to_dict())
    json_path.write_text(json.dumps(payload, indent=1, default=_json_default))
    html_path.write_text(drift_html(report))
    return json_path, html_path


_COLOURS = {"stable": "#2e7d32", "moderate": "#ef6c00", "major": "#c62828"}


def drift_html(report: DriftReport) -> str:
    """A self-contained page: headline, PSI per feature, unseen categories, salary shift."""
    from salarymodel.report.render import render

    return render(
        "drift.html",
        report=report,
        head=report.headline(),
        colours=_COLOURS,
        psi_moderate=PSI_MODERATE,
        psi_major=PSI_MAJOR,
    )
