"""What each section of the report shows: its figures, tables and the numbers its text cites.

One function per section, in page order; each returns the values its
template (``templates/sections/<name>.html``) reads. The wording is in the
templates; the numbers come from ``statistics``, the figures from
``figures`` (saved as PNGs by ``FigureFolder``), the tables from ``tables``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from salarymodel.config.settings import Settings, load_sources
from salarymodel.data.geography import country_name
from salarymodel.report import figures, statistics, tables
from salarymodel.report import premiums as premium_rows
from salarymodel.report.statistics import period, sources_of
from salarymodel.report.tables import Table
from salarymodel.report.text import (
    accuracy_sentence,
    employment_name,
    level_name,
    role_name,
    size_name,
    source_label,
)
from salarymodel.vocabulary import COMPANY_SIZES, EXPERIENCE_LEVELS

Section = dict[str, object]
# Salary levels: (column, header, names of its values, order or None to sort by median, what).
LEVEL_DIMENSIONS: tuple[tuple[str, str, Callable[[str], str], Sequence[str] | None, str], ...] = (
    ("role_family", "Role family", role_name, None, "by role family"),
    ("experience_level", "Experience level", level_name, EXPERIENCE_LEVELS, "by experience level"),
    ("company_size", "Company size", size_name, COMPANY_SIZES, "by company size"),
)


class FigureFolder:
    """Saves each figure of the report as ``<name>.png`` in its folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def show(self, figure: Figure | None, name: str) -> str | None:
        """The figure as a data URI for the page (after saving it), or None if it is None."""
        if figure is None:
            return None
        return figures.png_uri(figures.save_png(figure, self.folder / f"{name}.png"))

    def copy(self, plot: Path) -> str | None:
        """A PNG made elsewhere, copied in as ``model_<name>``; None if it does not exist."""
        if not plot.is_file():
            return None
        target = self.folder / f"model_{plot.name}"
        if plot.resolve() != target.resolve():
            shutil.copyfile(plot, target)
        return figures.png_uri(plot.read_bytes())


def provenance(records: pd.DataFrame) -> str:
    """Per source: its label, number of records and period ('...: n=2,660 records, 2020-2024')."""
    return "; ".join(
        f"{source_label(s)}: n={int((records['source'] == s).sum()):,} records, "
        f"{period(records.loc[records['source'] == s, 'year'])}"
        for s in sources_of(records)
    )


def overview(records: pd.DataFrame) -> Section:
    """About the data: one row per source."""
    return {"table": Table.of(tables.overview_table(statistics.data_overview(records)))}


def levels(records: pd.DataFrame, min_n: int, folder: FigureFolder) -> Section:
    """Salary levels by role family, experience and company size, then medians by year."""
    dimensions = []
    for dimension, header, names, order, what in LEVEL_DIMENSIONS:
        stats = statistics.salary_levels(records, dimension, min_n, order)
        figure = figures.dot_whisker_figure(
            stats, records, dimension, f"Yearly salary {what}", names, order is not None
        )
        dimensions.append(
            {
                "what": what,
                "header": header,
                "missing": [
                    source_label(s) for s in sources_of(records) if s not in set(stats["source"])
                ],
                "figure": folder.show(figure, f"salary_by_{dimension}"),
                "provenance": provenance(records.dropna(subset=[dimension])),
                "table": Table.of(tables.levels_table(stats, dimension, names, header)),
                "suppressed": tables.suppressed_groups(stats, names),
            }
        )
    by_year = statistics.medians_by_year(records, min_n)
    return {
        "dimensions": dimensions,
        "year_figure": folder.show(figures.year_figure(by_year), "median_by_year"),
        "year_tables": [(label, Table.of(t)) for label, t in tables.year_tables(by_year)],
    }


def geography(records: pd.DataFrame, min_n: int, top: int, folder: FigureFolder) -> Section:
    """Top countries by records and by median salary; the US against the rest."""
    counts = statistics.country_counts(records, top)
    medians = statistics.country_medians(records, top, min_n)
    us_rest = statistics.us_vs_rest(records, min_n)
    title = f"Top countries by median salary (n ≥ {min_n})"
    return {
        "top": top,
        "counts_figure": folder.show(
            figures.country_count_figure(counts, records), "top_countries_by_records"
        ),
        "medians_figure": folder.show(
            figures.dot_whisker_figure(medians, records, "country", title, country_name),
            "top_countries_by_median",
        ),
        # Local money at the rate of the data's latest year (most of its records).
        "medians_table": Table.of(tables.country_median_table(medians, int(records["year"].max()))),
        "us_figure": folder.show(figures.us_rest_figure(us_rest, records), "us_vs_rest"),
        "us_table": Table.of(tables.us_rest_table(us_rest)),
        "with_country": provenance(records.dropna(subset=["country"])),
    }


def work(records: pd.DataFrame, min_n: int, folder: FigureFolder) -> Section:
    """Work models: their shares by year, the pay gap between them; employment types."""
    shares = statistics.work_model_shares(records, min_n)
    pay = statistics.work_model_pay(records, min_n)
    employment = statistics.employment_pay(records, min_n)
    with_model = records.assign(work_model=statistics.work_model(records["remote_ratio"]))
    return {
        "shares_figure": folder.show(figures.work_share_figure(shares), "work_model_share_by_year"),
        "shares_table": Table.of(tables.work_share_table(shares)),
        "years_left_out": bool(shares["suppressed"].any()),
        "pay_figure": folder.show(
            figures.dot_whisker_figure(
                pay, with_model, "work_model", "Yearly salary by work model", ordinal=True
            ),
            "salary_by_work_model",
        ),
        "pay_table": Table.of(tables.gap_table(pay, "work_model", str, "work model", "on-site")),
        "pay_suppressed": tables.suppressed_groups(pay, str),
        "employment_figure": folder.show(
            figures.dot_whisker_figure(
                employment,
                records,
                "employment_type",
                "Yearly salary by employment type",
                employment_name,
                ordinal=True,
            ),
            "salary_by_employment_type",
        ),
        "employment_table": Table.of(
            tables.gap_table(
                employment, "employment_type", employment_name, "employment type", "FT"
            )
        ),
        "employment_suppressed": tables.suppressed_groups(employment, employment_name),
        "with_employment": provenance(records.dropna(subset=["employment_type"])),
    }


def skill_source() -> str:
    """The source whose adapter reads skills (configs/sources.yaml): the postings."""
    sources = load_sources().sources
    return next((name for name, source in sources.items() if "skills" in source.fields), "")


def skills(
    records: pd.DataFrame,
    settings: Settings,
    premiums: pd.DataFrame | None,
    folder: FigureFolder,
) -> Section:
    """Skills (postings only): demand, pay with against without, skill groups."""
    min_n, top = settings.report.min_group_size, settings.report.top_skills
    source = skill_source()
    posts = statistics.postings_with_skills(records)
    n_posts, years = len(posts), period(posts["year"])
    demand = statistics.skill_demand(records, top)
    pay = statistics.skill_pay(records, list(demand["skill"]), min_n, premiums)
    has_model = bool(pay["model_premium_pct"].notna().any())
    section: Section = {
        "top": top,
        "source": source_label(source),
        "n_all": int((records["source"] == source).sum()),
        "n_posts": n_posts,
        "years": years,
        "has_model": has_model,
        "demand_figure": folder.show(
            figures.demand_figure(demand, n_posts, years, source), "skill_demand"
        ),
        "pay_figure": folder.show(
            figures.skill_pay_figure(pay, n_posts, years, source), "skill_pay"
        ),
        "pay_table": Table.of(tables.skill_pay_table(pay, demand, has_model)),
        "groups": bool(settings.report.skill_groups),
    }
    groups = settings.report.skill_groups
    if groups:
        summary = statistics.skill_group_summary(records, groups, min_n)
        members = statistics.skill_group_members(records, groups)
        section["groups_figure"] = folder.show(
            figures.skill_group_figure(members, summary, n_posts, years, source), "skill_groups"
        )
        section["groups_table"] = Table.of(tables.skill_group_table(summary))
    return section


def model(
    min_n: int,
    premiums: pd.DataFrame | None,
    premium_plots: list[Path] | None,
    accuracy: dict | None,
    folder: FigureFolder,
) -> Section:
    """What the model says: its held-out accuracy, its premiums and their plots.

    One small-group rule (``min_n``) for the table and every premium chart:
    the charts are drawn again from the table rather than copied as made.
    """
    tidy = premium_rows.tidy(premiums) if premiums is not None and not premiums.empty else None
    shown, hidden = premium_rows.large_enough(tidy, min_n) if tidy is not None else (None, 0)
    plots = []
    for plot in premium_plots or []:
        plot = Path(plot)
        uri = None
        if tidy is not None and plot.stem.startswith("premium_") and plot.is_file():
            target = folder.folder / f"model_{plot.name}"
            uri = figures.png_uri(premium_rows.redraw(plot.stem, tidy, target, min_n).read_bytes())
        else:
            uri = folder.copy(plot)
        plots.append({"name": plot.name, "title": premium_rows.caption(plot.stem), "uri": uri})
    return {
        "accuracy": accuracy_sentence(accuracy) if accuracy else None,
        "premiums_table": (
            Table.of(tables.premiums_shown(statistics.premium_table(shown, min_n), min_n))
            if shown is not None and not shown.empty
            else None
        ),
        "hidden": hidden,
        "sample_size": premium_rows.sample_size(tidy) if tidy is not None else None,
        "plots": plots,
        "premiums_given": premiums is not None,
    }
