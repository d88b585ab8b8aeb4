"""The report's numbers: canonical records in, plain DataFrames out.

Every function here is tested against direct pandas computations; none
formats text or draws. Rules they follow (the page states them too):

- The two sources measure pay differently (the survey reports pay earned,
  postings advertise pay), so they are never pooled: every statistic is per
  source.
- Counts are distinct records (copies collapsed by the dataset stage).
- A group with fewer than ``min_n`` records keeps its count but has its salary
  statistics blanked (``suppressed``): a median of a handful of reports is an
  anecdote.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from salarymodel.report.text import ALL, DASH, WORK_MODEL_ORDER
from salarymodel.vocabulary import EMPLOYMENT_TYPES, EXPERIENCE_LEVELS, REMOTE_NAMES, SOURCE_NAMES


def period(years: pd.Series) -> str:
    """'2020-2024' (en dash) or '2023' for a series of (float) years; '' when empty."""
    years = years.dropna()
    if years.empty:
        return ""
    low, high = int(years.min()), int(years.max())
    return str(low) if low == high else f"{low}{DASH}{high}"


def sources_of(frame: pd.DataFrame) -> list[str]:
    """The sources present in ``frame``: known ones first in a fixed order, so panels never
    swap places, then any other in alphabetical order."""
    present = [str(s) for s in frame["source"].dropna().unique()]
    return [s for s in SOURCE_NAMES if s in present] + sorted(
        s for s in present if s not in SOURCE_NAMES
    )


def work_model(remote_ratio: pd.Series) -> pd.Series:
    """'on-site', 'hybrid' or 'remote' for a remote ratio of 0, 50 or 100."""
    return remote_ratio.map({float(ratio): name for ratio, name in REMOTE_NAMES.items()})


def group_stats(records: pd.DataFrame, keys: list[str], min_n: int) -> pd.DataFrame:
    """Records, median and quartiles of ``salary_usd`` per group of ``keys``.

    Rows with a missing key are left out. Groups with fewer than ``min_n``
    records keep their count but have median and quartiles blanked
    (``suppressed`` is True).
    """
    known = records.dropna(subset=keys)
    columns = [*keys, "n", "median", "q1", "q3", "suppressed"]
    if known.empty:
        return pd.DataFrame(columns=columns)
    grouped = known.groupby(keys, observed=True, sort=True)["salary_usd"]
    stats = grouped.size().rename("n").to_frame()
    stats["median"] = grouped.median()
    stats["q1"] = grouped.quantile(0.25)
    stats["q3"] = grouped.quantile(0.75)
    stats = stats.reset_index()
    stats["suppressed"] = stats["n"] < min_n
    stats.loc[stats["suppressed"], ["median", "q1", "q3"]] = np.nan
    return stats[columns]


def _order_groups(stats: pd.DataFrame, dimension: str, order: Sequence[str] | None) -> pd.DataFrame:
    # Ordinal dimensions keep their natural order; the others sort by median.
    if order is not None:
        rank = {value: i for i, value in enumerate(order)}
        key = stats[dimension].map(lambda v: rank.get(v, len(rank)))
        return stats.assign(_k=key).sort_values(["source", "_k"]).drop(columns="_k")
    return stats.sort_values(["source", "median"], ascending=[True, False], na_position="last")


# ----- section computations (DataFrames) ------------------------------------
def data_overview(records: pd.DataFrame) -> pd.DataFrame:
    """Per source: distinct records, rows before collapsing copies, period, countries."""
    rows = []
    for source in sources_of(records):
        frame = records[records["source"] == source]
        skills = frame["skills"].map(lambda s: isinstance(s, list) and len(s) > 0)
        rows.append(
            {
                "source": source,
                "records": len(frame),
                "rows_with_copies": int(frame["n_repeats"].sum())
                if "n_repeats" in frame
                else len(frame),
                "period": period(frame["year"]),
                "countries": int(frame["country"].nunique()),
                "with_skills": int(skills.sum()),
                "median": float(frame["salary_usd"].median()),
            }
        )
    return pd.DataFrame(rows)


def salary_levels(
    records: pd.DataFrame, dimension: str, min_n: int, order: Sequence[str] | None = None
) -> pd.DataFrame:
    """Median and interquartile range of salary per source and ``dimension`` value."""
    stats = group_stats(records, ["source", dimension], min_n)
    return _order_groups(stats, dimension, order).reset_index(drop=True)


def medians_by_year(records: pd.DataFrame, min_n: int) -> pd.DataFrame:
    """Median salary per source and year, overall (``experience_level == 'all'``) and per level."""
    overall = group_stats(records, ["source", "year"], min_n).assign(experience_level=ALL)
    per_level = group_stats(records, ["source", "year", "experience_level"], min_n)
    stats = pd.concat([overall, per_level], ignore_index=True)
    stats["year"] = stats["year"].astype(int)
    order = {level: i for i, level in enumerate([ALL, *EXPERIENCE_LEVELS])}
    stats["_k"] = stats["experience_level"].map(lambda v: order.get(v, len(order)))
    return stats.sort_values(["source", "_k", "year"]).drop(columns="_k").reset_index(drop=True)


def country_counts(records: pd.DataFrame, top: int) -> pd.DataFrame:
    """The ``top`` countries by number of records, per source, with their share."""
    frames = []
    for source in sources_of(records):
        frame = records[records["source"] == source]
        counts = frame["country"].value_counts().head(top)
        frames.append(
            pd.DataFrame(
                {
                    "source": source,
                    "country": counts.index,
                    "n": counts.to_numpy(),
                    "share": counts.to_numpy() / len(frame) * 100,
                }
            )
        )
    if not frames:
        return pd.DataFrame(columns=["source", "country", "n", "share"])
    return pd.concat(frames, ignore_index=True)


def country_medians(records: pd.DataFrame, top: int, min_n: int) -> pd.DataFrame:
    """The ``top`` countries by median salary per source, among those with ``min_n`` records."""
    stats = group_stats(records, ["source", "country"], min_n)
    stats = stats[~stats["suppressed"]].sort_values(["source", "median"], ascending=[True, False])
    return stats.groupby("source", sort=False).head(top).reset_index(drop=True)


def us_vs_rest(records: pd.DataFrame, min_n: int) -> pd.DataFrame:
    """US against every other country, per source, overall and per experience level."""
    known = records.dropna(subset=["country"])
    known = known.assign(area=np.where(known["country"] == "US", "us", "rest"))
    overall = group_stats(known, ["source", "area"], min_n).assign(experience_level=ALL)
    per_level = group_stats(known, ["source", "experience_level", "area"], min_n)
    stats = pd.concat([overall, per_level], ignore_index=True)
    wide = stats.pivot_table(
        index=["source", "experience_level"],
        columns="area",
        values=["n", "median"],
        aggfunc="first",
        dropna=False,
    )
    wide.columns = [f"{stat}_{area}" for stat, area in wide.columns]
    wide = wide.reset_index()
    for column in ("n_us", "n_rest", "median_us", "median_rest"):
        if column not in wide:
            wide[column] = np.nan
    wide[["n_us", "n_rest"]] = wide[["n_us", "n_rest"]].fillna(0).astype(int)
    wide["us_premium_pct"] = (wide["median_us"] / wide["median_rest"] - 1) * 100
    order = {level: i for i, level in enumerate([ALL, *EXPERIENCE_LEVELS])}
    wide["_k"] = wide["experience_level"].map(lambda v: order.get(v, len(order)))
    wide = wide.sort_values(["source", "_k"]).drop(columns="_k").reset_index(drop=True)
    return wide[
        [
            "source",
            "experience_level",
            "n_us",
            "median_us",
            "n_rest",
            "median_rest",
            "us_premium_pct",
        ]
    ]


def work_model_shares(records: pd.DataFrame, min_n: int) -> pd.DataFrame:
    """Share of on-site, hybrid and remote records per source and year (%)."""
    known = records.dropna(subset=["remote_ratio", "year"])
    known = known.assign(
        work_model=work_model(known["remote_ratio"]), year=known["year"].astype(int)
    )
    counts = known.groupby(["source", "year", "work_model"]).size().rename("n").reset_index()
    totals = counts.groupby(["source", "year"])["n"].transform("sum")
    counts["year_total"] = totals
    counts["share"] = counts["n"] / totals * 100
    # A year with few records gives shares that swing on a handful of answers.
    counts["suppressed"] = totals < min_n
    return counts


def pay_gap(
    records: pd.DataFrame, dimension: str, baseline: str, min_n: int, order: Sequence[str]
) -> pd.DataFrame:
    """Salary levels per source and ``dimension`` with the median gap to ``baseline`` (%)."""
    stats = salary_levels(records, dimension, min_n, order)
    base = stats[stats[dimension] == baseline].set_index("source")["median"]
    stats["gap_pct"] = (stats["median"] / stats["source"].map(base) - 1) * 100
    return stats


def work_model_pay(records: pd.DataFrame, min_n: int) -> pd.DataFrame:
    """Salary by work model (on-site, hybrid, remote) per source, with the gap to on-site."""
    frame = records.assign(work_model=work_model(records["remote_ratio"]))
    return pay_gap(frame, "work_model", "on-site", min_n, WORK_MODEL_ORDER)


def employment_pay(records: pd.DataFrame, min_n: int) -> pd.DataFrame:
    """Salary by employment type per source, with the gap to full-time."""
    return pay_gap(records, "employment_type", "FT", min_n, EMPLOYMENT_TYPES)


def postings_with_skills(records: pd.DataFrame) -> pd.DataFrame:
    """Records that list at least one skill (an empty list means none was captured): the
    postings, as only a source whose adapter maps ``skills`` has any."""
    posts = records
    listed = posts["skills"].map(lambda s: isinstance(s, list) and len(s) > 0)
    return posts.loc[listed.to_numpy(dtype=bool)]


def skill_matrix(posts: pd.DataFrame) -> pd.DataFrame:
    """One boolean column per skill: does the posting ask for it (index as ``posts``)."""
    # Positional one-hot from the exploded lists: pd.crosstab is ~100x slower here.
    lists = posts["skills"].reset_index(drop=True).explode().dropna()
    codes, names = pd.factorize(lists.astype(str))
    matrix = np.zeros((len(posts), len(names)), dtype=bool)
    matrix[lists.index.to_numpy(dtype=int), codes] = True
    return pd.DataFrame(matrix, index=posts.index, columns=list(names))


def skill_demand(records: pd.DataFrame, top: int | None = None) -> pd.DataFrame:
    """Share (%) of postings listing skills that ask for each skill, most asked first."""
    posts = postings_with_skills(records)
    matrix = skill_matrix(posts)
    counts = matrix.sum().sort_values(ascending=False, kind="stable")
    demand = pd.DataFrame(
        {"skill": counts.index, "n_postings": counts.to_numpy().astype(int)},
    )
    demand["share"] = demand["n_postings"] / max(len(posts), 1) * 100
    return demand.head(top).reset_index(drop=True) if top else demand


def _model_skill_premiums(premiums: pd.DataFrame | None) -> pd.DataFrame:
    if premiums is None or premiums.empty:
        return pd.DataFrame(columns=["skill", "model_premium_pct", "model_dollars_at_median"])
    skills = premiums[premiums["concept"] == "skill"]
    return skills.rename(
        columns={
            "value": "skill",
            "mean_premium_pct": "model_premium_pct",
            "dollars_at_median": "model_dollars_at_median",
        }
    )[["skill", "model_premium_pct", "model_dollars_at_median"]]


def skill_pay(
    records: pd.DataFrame,
    skills: Sequence[str],
    min_n: int,
    premiums: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Raw median advertised pay with against without each skill, and its model premium.

    Postings that list no skill at all are left out of both sides (their
    skills are unknown, not absent).
    """
    posts = postings_with_skills(records)
    matrix = skill_matrix(posts)
    salary = posts["salary_usd"]
    rows = []
    for skill in skills:
        has = matrix[skill] if skill in matrix else pd.Series(False, index=posts.index)
        with_, without = salary[has], salary[~has]
        rows.append(
            {
                "skill": skill,
                "n_with": len(with_),
                "median_with": with_.median() if len(with_) >= min_n else np.nan,
                "n_without": len(without),
                "median_without": without.median() if len(without) >= min_n else np.nan,
            }
        )
    table = pd.DataFrame(
        rows, columns=["skill", "n_with", "median_with", "n_without", "median_without"]
    )
    table["suppressed"] = table["median_with"].isna() | table["median_without"].isna()
    table["raw_gap_pct"] = (table["median_with"] / table["median_without"] - 1) * 100
    return table.merge(_model_skill_premiums(premiums), on="skill", how="left")


def skill_group_summary(
    records: pd.DataFrame, groups: dict[str, list[str]], min_n: int
) -> pd.DataFrame:
    """Per skill group: share of postings asking for any of its skills, and pay with/without."""
    posts = postings_with_skills(records)
    matrix = skill_matrix(posts)
    rows = []
    for group, members in groups.items():
        present = [m for m in members if m in matrix]
        has = matrix[present].any(axis=1) if present else pd.Series(False, index=posts.index)
        with_, without = posts.loc[has, "salary_usd"], posts.loc[~has, "salary_usd"]
        counts = (
            matrix[present].sum().sort_values(ascending=False) if present else pd.Series(dtype=int)
        )
        rows.append(
            {
                "group": group,
                "skills_found": len(present),
                "skills_configured": len(members),
                "n_with_any": int(has.sum()),
                "share_any": has.sum() / max(len(posts), 1) * 100,
                "median_with": with_.median() if len(with_) >= min_n else np.nan,
                "median_without": without.median() if len(without) >= min_n else np.nan,
                "top_skills": ", ".join(counts.index[:3]),
            }
        )
    table = pd.DataFrame(rows)
    if not table.empty:
        table["raw_gap_pct"] = (table["median_with"] / table["median_without"] - 1) * 100
    return table


def skill_group_members(records: pd.DataFrame, groups: dict[str, list[str]]) -> pd.DataFrame:
    """Share (%) of postings asking for each configured skill, by group.

    Configured skills that no posting asks for are left out.
    """
    demand = skill_demand(records).set_index("skill")
    rows = [
        {
            "group": group,
            "skill": skill,
            "n_postings": int(demand.at[skill, "n_postings"]),
            "share": float(demand.at[skill, "share"]),
        }
        for group, members in groups.items()
        for skill in members
        if skill in demand.index
    ]
    return pd.DataFrame(rows, columns=["group", "skill", "n_postings", "share"])


def premium_table(premiums: pd.DataFrame, min_n: int) -> pd.DataFrame:
    """The model's premiums sorted by concept then premium; small groups flagged."""
    table = premiums.sort_values(
        ["concept", "mean_premium_pct"], ascending=[True, False]
    ).reset_index(drop=True)
    table["few_records"] = table["count"] < min_n
    return table
