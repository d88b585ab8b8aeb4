"""Write the market insights report: one self-contained HTML page and its figures as PNGs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from salarymodel.config.settings import Settings
from salarymodel.data.role_family import with_role_family
from salarymodel.report import sections
from salarymodel.report.china import china_section
from salarymodel.report.render import render
from salarymodel.report.text import SECTIONS


def build_report(
    records: pd.DataFrame,
    settings: Settings,
    output_dir: Path,
    premiums: pd.DataFrame | None = None,
    premium_plots: list[Path] | None = None,
    accuracy: dict | None = None,
) -> Path:
    """Write ``report.html`` (and each figure as a PNG next to it) into ``output_dir``.

    ``records`` are canonical job records (``load_training_data(...).records``);
    ``premiums``, ``premium_plots`` and ``accuracy`` come from the model and may
    be None, in which case the report says how to produce them. Returns the
    path of the HTML file.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if "role_family" not in records:
        records = with_role_family(records, settings)
    min_n = settings.report.min_group_size
    folder = sections.FigureFolder(output_dir)
    page = render(
        "report.html",
        stamp=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        n_records=len(records),
        provenance=sections.provenance(records),
        sections=SECTIONS,
        min_n=min_n,
        overview=sections.overview(records),
        levels=sections.levels(records, min_n, folder),
        geography=sections.geography(records, min_n, settings.report.top_countries, folder),
        work=sections.work(records, min_n, folder),
        skills=sections.skills(records, settings, premiums, folder),
        model=sections.model(min_n, premiums, premium_plots, accuracy, folder),
        china=china_section(folder),
    )
    path = output_dir / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
