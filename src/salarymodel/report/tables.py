"""The report's tables as shown: the frames of ``statistics`` with every cell worded.

Each function returns a DataFrame of strings (column headers as the page
shows them); ``Table.of`` hands one to the template, which escapes every cell.
A suppressed or missing value reads as an em dash.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from salarymodel.data.geography import country_name
from salarymodel.report.statistics import sources_of
from salarymodel.report.text import (
    ALL,
    WORK_MODEL_ORDER,
    count,
    level_name,
    pct,
    premium_value_name,
    signed_pct,
    signed_usd,
    source_label,
    source_short,
    usd,
    usd_range,
)
from salarymodel.vocabulary import EXPERIENCE_LEVELS


@dataclass(frozen=True)
class Table:
    """Header and rows of cell texts, as the template lays them out."""

    columns: list[str]
    rows: list[list[str]]

    @classmethod
    def of(cls, frame: pd.DataFrame) -> Table:
        """The cells of ``frame`` as text (missing ones as an em dash), index left out."""
        rows = [
            ["—" if pd.isna(cell) else str(cell) for cell in row]
            for row in frame.itertuples(index=False, name=None)
        ]
        return cls([str(c) for c in frame.columns], rows)


def overview_table(overview: pd.DataFrame) -> pd.DataFrame:
    """One row per source: records, copies, period, countries, skills, median."""
    return pd.DataFrame(
        {
            "source": overview["source"].map(source_label),
            "records": overview["records"].map(count),
            "rows before collapsing copies": overview["rows_with_copies"].map(count),
            "period": overview["period"],
            "countries": overview["countries"].map(count),
            "records listing skills": overview["with_skills"].map(count),
            "median salary": overview["median"].map(usd),
        }
    )


def levels_table(
    stats: pd.DataFrame, dimension: str, names: Callable[[str], str], header: str
) -> pd.DataFrame:
    """Wide display table: one row per group, n / median / IQR per source."""
    groups = list(dict.fromkeys(stats[dimension]))
    out = pd.DataFrame({header: [names(g) for g in groups]})
    for source in sources_of(stats):
        part = stats[stats["source"] == source].set_index(dimension).reindex(groups)
        short = source_short(source)
        # A group absent from a source has 0 records there, not a suppressed count.
        out[f"{short} n"] = part["n"].fillna(0).map(count).to_numpy()
        out[f"{short} median"] = part["median"].map(usd).to_numpy()
        iqr = [usd_range(a, b) for a, b in zip(part["q1"], part["q3"], strict=True)]
        out[f"{short} middle 50%"] = iqr
    return out


def year_tables(by_year: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Per source (its label): one row per year, one 'median (n=...)' column per level."""
    cells = by_year.assign(
        cell=[
            "—" if pd.isna(m) else f"{usd(m)} (n={n:,})"
            for m, n in zip(by_year["median"], by_year["n"], strict=True)
        ]
    )
    levels = [c for c in [ALL, *EXPERIENCE_LEVELS] if c in set(cells["experience_level"])]
    tables = []
    for source in sources_of(cells):
        wide = (
            cells[cells["source"] == source]
            .pivot(index="year", columns="experience_level", values="cell")
            .reindex(columns=levels)
            .fillna("—")
        )
        wide.columns = [level_name(c) for c in wide.columns]
        tables.append((source_label(source), wide.reset_index()))
    return tables


def country_median_table(medians: pd.DataFrame, year: int) -> pd.DataFrame:
    """The ranking of countries by median salary, per source; the median also in each
    country's own money (at the ECB's ``year`` average, written as the country does)."""
    from salarymodel.core.money_format import in_local_money

    local = [in_local_money(m, c, year) for m, c in zip(medians["median"], medians["country"],
                                                          strict=True)]  # fmt: skip
    return pd.DataFrame(
        {
            "source": medians["source"].map(source_label),
            "country": medians["country"].map(country_name),
            "n": medians["n"].map(count),
            "median": medians["median"].map(usd),
            f"median in local money ({year} rate)": local,
            "middle 50%": [
                usd_range(a, b) for a, b in zip(medians["q1"], medians["q3"], strict=True)
            ],
        }
    )


def us_rest_table(table: pd.DataFrame) -> pd.DataFrame:
    """US against the rest of the world per source and experience level."""
    return pd.DataFrame(
        {
            "source": table["source"].map(source_label),
            "experience": table["experience_level"].map(level_name),
            "US n": table["n_us"].map(count),
            "US median": table["median_us"].map(usd),
            "rest n": table["n_rest"].map(count),
            "rest median": table["median_rest"].map(usd),
            "US premium": table["us_premium_pct"].map(lambda v: signed_pct(v, 0)),
        }
    )


def gap_table(
    stats: pd.DataFrame, dimension: str, names: Callable[[str], str], header: str, base: str
) -> pd.DataFrame:
    """Salary per group of ``dimension`` with its median gap to the ``base`` group."""
    gap = [
        "baseline" if value == base else signed_pct(gap_pct)
        for value, gap_pct in zip(stats[dimension], stats["gap_pct"], strict=True)
    ]
    return pd.DataFrame(
        {
            "source": stats["source"].map(source_label),
            header: stats[dimension].map(names),
            "n": stats["n"].map(count),
            "median": stats["median"].map(usd),
            "middle 50%": [usd_range(a, b) for a, b in zip(stats["q1"], stats["q3"], strict=True)],
            f"median gap vs {names(base)}": gap,
        }
    )


def work_share_table(shares: pd.DataFrame) -> pd.DataFrame:
    """Share of each work model per source and year."""
    wide = shares.pivot_table(
        index=["source", "year"], columns="work_model", values="share", fill_value=0
    ).reindex(columns=WORK_MODEL_ORDER, fill_value=0)
    totals = shares.groupby(["source", "year"])["year_total"].first()
    # A work model a source never records (hybrid in postings) is unknown there, not 0%.
    seen = shares.groupby("source")["work_model"].agg(set)
    return pd.DataFrame(
        {
            "source": [source_label(s) for s, _ in wide.index],
            "year": [str(y) for _, y in wide.index],
            "n": [f"{totals[i]:,}" for i in wide.index],
            **{
                model: [
                    pct(v) if model in seen[s] else "not recorded"
                    for (s, _), v in zip(wide.index, wide[model], strict=True)
                ]
                for model in WORK_MODEL_ORDER
            },
        }
    )


def skill_pay_table(pay: pd.DataFrame, demand: pd.DataFrame, has_model: bool) -> pd.DataFrame:
    """Per skill: share asking, pay with and without, raw gap (and the model premium)."""
    table = pd.DataFrame(
        {
            "skill": pay["skill"],
            "share asking": pay["skill"].map(demand.set_index("skill")["share"]).map(pct),
            "n with": pay["n_with"].map(count),
            "median with": pay["median_with"].map(usd),
            "n without": pay["n_without"].map(count),
            "median without": pay["median_without"].map(usd),
            "raw gap": pay["raw_gap_pct"].map(signed_pct),
        }
    )
    if has_model:
        table["model premium"] = pay["model_premium_pct"].map(signed_pct)
        table["model $ at median"] = pay["model_dollars_at_median"].map(signed_usd)
    return table


def skill_group_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Per skill group: skills seen, postings asking for any, pay with and without."""
    return pd.DataFrame(
        {
            "group": summary["group"].str.replace("_", " "),
            "skills seen / configured": [
                f"{a} / {b}"
                for a, b in zip(summary["skills_found"], summary["skills_configured"], strict=True)
            ],
            "postings asking for any": summary["n_with_any"].map(count),
            "share": summary["share_any"].map(pct),
            "median with any": summary["median_with"].map(usd),
            "median with none": summary["median_without"].map(usd),
            "raw gap": summary["raw_gap_pct"].map(signed_pct),
            "most asked": summary["top_skills"],
        }
    )


def premiums_shown(table: pd.DataFrame, min_n: int) -> pd.DataFrame:
    """The model's premiums (``statistics.premium_table``) with values named as elsewhere.

    Only groups of at least ``min_n`` records reach here (``premiums.large_enough``).
    """
    if table["few_records"].any():  # the section's one small-group rule was skipped
        raise ValueError(f"a premium row has fewer than {min_n} records")
    names = [
        premium_value_name(c, v) for c, v in zip(table["concept"], table["value"], strict=True)
    ]
    return pd.DataFrame(
        {
            "concept": table["concept"].str.replace("_", " "),
            "value": names,
            "premium": table["mean_premium_pct"].map(signed_pct),
            "dollars at median": table["dollars_at_median"].map(signed_usd),
            "records in the sample": table["count"].map(count),
        }
    )


def suppressed_groups(stats: pd.DataFrame, names: Callable[[str], str]) -> list[str]:
    """The suppressed groups of ``stats`` as 'name in source (n=...)' (the page lists them)."""
    hidden = stats[stats["suppressed"]]
    return [
        f"{names(value)} in {source_short(source).lower()} (n={n})"
        for source, value, n in zip(hidden["source"], hidden.iloc[:, 1], hidden["n"], strict=True)
    ]
