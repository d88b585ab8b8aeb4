"""Market insights report: one self-contained HTML page from the canonical records.

Each section is computed by a function that returns a plain DataFrame (tested
against direct pandas computations) and rendered separately into tables and
matplotlib figures, embedded as base64 PNGs so the page works offline.

Rules every section follows:

- The two sources measure pay differently (the survey reports pay earned,
  postings advertise pay), so they are never pooled: every statistic is per
  source and every figure names its source(s), its count and its period.
- Counts are distinct records (copies collapsed by the dataset stage).
- A group with fewer than ``settings.report.min_group_size`` records has its
  salary statistics suppressed (a median of a handful of reports is an
  anecdote); the text says so wherever it happens.
"""

from __future__ import annotations

import base64
import html
import io
import re
import shutil
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from salarymodel.config import Settings
from salarymodel.evaluation import with_role_family
from salarymodel.geography import country_name

DASH, MINUS = "\u2013", "\u2212"  # typographic en dash and minus sign
SOURCE_LABELS = {
    "aijobs": "aijobs.net survey (reported pay)",
    "postings": "job postings (advertised pay)",
}
SOURCE_SHORT = {"aijobs": "Survey", "postings": "Postings"}
SOURCE_COLORS = {"aijobs": "#1f6fb4", "postings": "#d9730d"}
EXPERIENCE_ORDER = ["EN", "MI", "SE", "EX"]
EXPERIENCE_NAMES = {"EN": "entry", "MI": "mid", "SE": "senior", "EX": "executive"}
SIZE_ORDER = ["S", "M", "L"]
SIZE_NAMES = {"S": "small (<50)", "M": f"medium (50{DASH}250)", "L": "large (>250)"}
EMPLOYMENT_ORDER = ["FT", "CT", "PT", "FL"]
EMPLOYMENT_NAMES = {"FT": "full-time", "PT": "part-time", "CT": "contract", "FL": "freelance"}
WORK_MODEL_ORDER = ["on-site", "hybrid", "remote"]
WORK_MODEL_COLORS = {"on-site": "#8c8c8c", "hybrid": "#e3a83b", "remote": "#2a9d8f"}
ALL = "all"
DPI = 110
SECTION_TITLES = (
    "About the data",
    "Salary levels",
    "Geography",
    "Work models",
    "Skills",
    "What the model says",
)


# ----- small helpers --------------------------------------------------------
def source_label(source: str) -> str:
    """Readable name of a source, saying which kind of pay it measures."""
    return SOURCE_LABELS.get(source, source)


def period(years: pd.Series) -> str:
    """'2020-2024' (en dash) or '2023' for a series of (float) years; '' when empty."""
    years = years.dropna()
    if years.empty:
        return ""
    low, high = int(years.min()), int(years.max())
    return str(low) if low == high else f"{low}{DASH}{high}"


def _sources(frame: pd.DataFrame) -> list[str]:
    # Known sources first, in a fixed order, so panels never swap places.
    present = [str(s) for s in frame["source"].dropna().unique()]
    return [s for s in SOURCE_LABELS if s in present] + sorted(
        s for s in present if s not in SOURCE_LABELS
    )


def _usd(value: float) -> str:
    return "—" if pd.isna(value) else f"${value:,.0f}"


def _usd_short(value: float, _pos: object = None) -> str:
    if value == 0:
        return "$0"
    if abs(value) >= 1_000_000:
        return f"${value / 1_000_000:.1f}M"
    return f"${value / 1000:.0f}k"


def _signed_usd(value: float) -> str:
    if pd.isna(value):
        return "—"
    return ("+" if value >= 0 else "-") + _usd(abs(value))


def _pct(value: float, signed: bool = False, digits: int = 1) -> str:
    if pd.isna(value):
        return "—"
    return f"{value:+.{digits}f}%" if signed else f"{value:.{digits}f}%"


def _count(value: float) -> str:
    return "—" if pd.isna(value) else f"{int(value):,}"


def _work_model(remote_ratio: pd.Series) -> pd.Series:
    return remote_ratio.map({0.0: "on-site", 50.0: "hybrid", 100.0: "remote"})


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
    for source in _sources(records):
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
    order = {level: i for i, level in enumerate([ALL, *EXPERIENCE_ORDER])}
    stats["_k"] = stats["experience_level"].map(lambda v: order.get(v, len(order)))
    return stats.sort_values(["source", "_k", "year"]).drop(columns="_k").reset_index(drop=True)


def country_counts(records: pd.DataFrame, top: int) -> pd.DataFrame:
    """The ``top`` countries by number of records, per source, with their share."""
    frames = []
    for source in _sources(records):
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
    order = {level: i for i, level in enumerate([ALL, *EXPERIENCE_ORDER])}
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
        work_model=_work_model(known["remote_ratio"]), year=known["year"].astype(int)
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
    frame = records.assign(work_model=_work_model(records["remote_ratio"]))
    return pay_gap(frame, "work_model", "on-site", min_n, WORK_MODEL_ORDER)


def employment_pay(records: pd.DataFrame, min_n: int) -> pd.DataFrame:
    """Salary by employment type per source, with the gap to full-time."""
    return pay_gap(records, "employment_type", "FT", min_n, EMPLOYMENT_ORDER)


def postings_with_skills(records: pd.DataFrame) -> pd.DataFrame:
    """Postings that list at least one skill (an empty list means none was captured)."""
    posts = records[records["source"] == "postings"]
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


def accuracy_sentence(accuracy: dict) -> str:
    """The model's held-out accuracy in one sentence a non-specialist understands."""
    n, version = accuracy.get("n"), accuracy.get("model_version")
    mdape, mae = accuracy.get("mdape"), accuracy.get("mae_usd")
    held_out = "held-out cross-validation"
    held_out += f" of model version {version}" if version is not None else ""
    held_out += f", n={int(n):,} records" if n is not None else ""
    claims = []
    if mdape is not None:
        claims.append(f"is typically within {mdape:.0f}% of the real salary (median error)")
    if mae is not None:
        claims.append(f"misses by {_usd(mae)} on average")
    text = (
        f"On job records it never saw during training ({held_out}), the model's estimate "
        + " and ".join(claims or ["has no accuracy figures"])
    )
    per_source = [
        f"{source_label(s)} within {m['mdape']:.0f}%"
        + (f" ({_usd(m['mae_usd'])} average miss)" if "mae_usd" in m else "")
        for s, m in (accuracy.get("per_source") or {}).items()
        if isinstance(m, dict) and "mdape" in m
    ]
    if per_source:
        text += "; by source: " + ", ".join(per_source)
    return text + "."


# ----- figures --------------------------------------------------------------
def _panel_title(source: str, n: int, years: str) -> str:
    return f"{source_label(source)} · n={n:,} · {years}"


def _style(ax: Axes, axis: str = "x") -> None:
    ax.grid(axis=axis, alpha=0.3)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _years_of(records: pd.DataFrame, source: str, dimension: str, values: Sequence) -> str:
    frame = records[(records["source"] == source) & records[dimension].isin(list(values))]
    return period(frame["year"])


def dot_whisker_figure(
    stats: pd.DataFrame,
    records: pd.DataFrame,
    dimension: str,
    title: str,
    names: Callable[[str], str] = str,
    ordinal: bool = False,
) -> Figure | None:
    """Median (dot) and interquartile range (line) per group, one panel per source."""
    shown = stats[~stats["suppressed"]]
    sources = _sources(shown) if not shown.empty else []
    if not sources:
        return None
    rows = max(int((shown["source"] == s).sum()) for s in sources)
    width = 11 if len(sources) > 1 else 7.5
    fig = Figure(figsize=(width, max(2.6, 0.34 * rows + 1.6)), layout="constrained")
    axes = fig.subplots(1, len(sources), sharex=True, squeeze=False)[0]
    for ax, source in zip(axes, sources, strict=True):
        panel = shown[shown["source"] == source]
        # Bottom-to-top drawing: sorted ascending so the highest median is on top.
        panel = panel.iloc[::-1] if ordinal else panel.sort_values("median")
        y = np.arange(len(panel))
        color = SOURCE_COLORS.get(source, "#444444")
        ax.hlines(y, panel["q1"], panel["q3"], color=color, alpha=0.35, lw=6)
        ax.plot(panel["median"], y, "o", color=color, ms=7)
        labels = [
            f"{names(v)}  (n={n:,})" for v, n in zip(panel[dimension], panel["n"], strict=True)
        ]
        ax.set_yticks(y, labels, fontsize=9)
        ax.set_ylim(-0.6, len(panel) - 0.4)
        ax.xaxis.set_major_formatter(FuncFormatter(_usd_short))
        ax.xaxis.set_major_locator(MaxNLocator(6))
        years = _years_of(records, source, dimension, panel[dimension])
        ax.set_title(_panel_title(source, int(panel["n"].sum()), years), fontsize=9.5)
        ax.set_xlabel("yearly salary (USD): dot = median, bar = middle 50%", fontsize=9)
        _style(ax)
    fig.suptitle(title, fontsize=12, fontweight="bold")
    return fig


def year_figure(by_year: pd.DataFrame) -> Figure | None:
    """Median salary by year per experience level (survey) with the postings' year marked."""
    shown = by_year[~by_year["suppressed"]]
    if shown.empty:
        return None
    fig = Figure(figsize=(10, 4.8), layout="constrained")
    ax = fig.subplots()
    notes = []
    for source in _sources(shown):
        frame = shown[shown["source"] == source]
        survey = source == "aijobs"
        marker, style = ("o", "-") if survey else ("D", "none")
        # Nudge the other source sideways so its markers never sit on the survey's.
        shift = 0.0 if survey else 0.12
        for i, level in enumerate([ALL, *EXPERIENCE_ORDER]):
            line = frame[frame["experience_level"] == level]
            if line.empty:
                continue
            name = "all levels" if level == ALL else EXPERIENCE_NAMES.get(level, level)
            ax.plot(
                line["year"] + shift,
                line["median"],
                linestyle=style,
                marker=marker,
                color=f"C{i}",
                lw=2.6 if level == ALL else 1.4,
                ms=7,
                mfc="white" if source != "aijobs" else f"C{i}",
                label=f"{SOURCE_SHORT.get(source, source)}: {name}",
            )
        overall = frame[frame["experience_level"] == ALL]
        notes.append(
            f"{source_label(source)}: n={int(overall['n'].sum()):,}, "
            f"{period(overall['year'].astype(float))}"
        )
    years = sorted(shown["year"].unique())
    ax.set_xticks(years, [str(y) for y in years])
    ax.yaxis.set_major_formatter(FuncFormatter(_usd_short))
    ax.set_ylabel("median yearly salary (USD)")
    ax.legend(fontsize=8, ncols=2, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_title("\n".join(notes), fontsize=9)
    fig.suptitle("Median salary by year and experience level", fontsize=12, fontweight="bold")
    _style(ax, "y")
    return fig


def country_count_figure(counts: pd.DataFrame, records: pd.DataFrame) -> Figure | None:
    """Top countries by number of records, one panel per source, with counts on the bars."""
    sources = _sources(counts) if not counts.empty else []
    if not sources:
        return None
    rows = max(int((counts["source"] == s).sum()) for s in sources)
    fig = Figure(figsize=(11, max(3.0, 0.3 * rows + 1.6)), layout="constrained")
    axes = fig.subplots(1, len(sources), squeeze=False)[0]
    for ax, source in zip(axes, sources, strict=True):
        panel = counts[counts["source"] == source].sort_values("n")
        y = np.arange(len(panel))
        ax.barh(y, panel["n"], color=SOURCE_COLORS.get(source, "#444"))
        ax.set_yticks(y, [country_name(c) for c in panel["country"]], fontsize=9)
        for yi, n, share in zip(y, panel["n"], panel["share"], strict=True):
            ax.text(n, yi, f" {n:,} ({share:.1f}%)", va="center", fontsize=8)
        ax.set_xlim(0, panel["n"].max() * 1.3)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:,.0f}"))
        ax.xaxis.set_major_locator(MaxNLocator(5))
        total = int((records["source"] == source).sum())
        years = period(records.loc[records["source"] == source, "year"])
        ax.set_title(
            f"{source_label(source)} · top {len(panel)} of n={total:,} · {years}", fontsize=9.5
        )
        ax.set_xlabel("records")
        _style(ax)
    fig.suptitle("Top countries by number of records", fontsize=12, fontweight="bold")
    return fig


def us_rest_figure(table: pd.DataFrame, records: pd.DataFrame) -> Figure | None:
    """US median against the rest of the world, per experience level, one panel per source."""
    sources = _sources(table) if not table.empty else []
    if not sources:
        return None
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    axes = fig.subplots(1, len(sources), sharey=True, squeeze=False)[0]
    for ax, source in zip(axes, sources, strict=True):
        panel = table[table["source"] == source]
        x = np.arange(len(panel))
        ax.bar(x - 0.2, panel["median_us"], 0.4, label="US", color="#3b5b92")
        ax.bar(x + 0.2, panel["median_rest"], 0.4, label="rest of world", color="#b5b5b5")
        for xi, row in zip(x, panel.itertuples(), strict=True):
            if pd.notna(row.us_premium_pct):
                top = np.nanmax([row.median_us, row.median_rest])
                ax.text(
                    xi, top, f"{row.us_premium_pct:+.0f}%", ha="center", va="bottom", fontsize=8
                )
        labels = [
            f"{'all' if lv == ALL else EXPERIENCE_NAMES.get(lv, lv)}\n{nu:,} / {nr:,}"
            for lv, nu, nr in zip(
                panel["experience_level"], panel["n_us"], panel["n_rest"], strict=True
            )
        ]
        ax.set_xticks(x, labels, fontsize=8)
        ax.yaxis.set_major_formatter(FuncFormatter(_usd_short))
        n = int(panel.iloc[0]["n_us"] + panel.iloc[0]["n_rest"]) if len(panel) else 0
        years = period(records.loc[records["source"] == source, "year"])
        ax.set_title(_panel_title(source, n, years), fontsize=9.5)
        ax.set_xlabel("experience level; records US / rest (% = US premium)", fontsize=8.5)
        ax.margins(y=0.12)
        ax.legend(fontsize=8, frameon=False, loc="upper left")
        _style(ax, "y")
    axes[0].set_ylabel("median yearly salary (USD)")
    fig.suptitle("The US against the rest of the world", fontsize=12, fontweight="bold")
    return fig


def work_share_figure(shares: pd.DataFrame) -> Figure | None:
    """100% stacked bars of on-site / hybrid / remote per year, one panel per source."""
    shown = shares[~shares["suppressed"]]
    sources = _sources(shown) if not shown.empty else []
    if not sources:
        return None
    widths = [shown.loc[shown["source"] == s, "year"].nunique() + 1.0 for s in sources]
    fig = Figure(figsize=(10, 4.4), layout="constrained")
    axes = fig.subplots(1, len(sources), sharey=True, squeeze=False, width_ratios=widths)[0]
    for ax, source in zip(axes, sources, strict=True):
        wide = (
            shown[shown["source"] == source]
            .pivot_table(index="year", columns="work_model", values="share", fill_value=0)
            .reindex(columns=WORK_MODEL_ORDER, fill_value=0)
        )
        totals = shown[shown["source"] == source].groupby("year")["year_total"].first()
        x = np.arange(len(wide))
        bottom = np.zeros(len(wide))
        for model in WORK_MODEL_ORDER:
            values = wide[model].to_numpy()
            ax.bar(x, values, 0.7, bottom=bottom, color=WORK_MODEL_COLORS[model], label=model)
            for xi, b, v in zip(x, bottom, values, strict=True):
                if v >= 6:  # smaller segments are too thin for a readable label
                    ax.text(xi, b + v / 2, f"{v:.0f}%", ha="center", va="center", fontsize=8)
            bottom += values
        ax.set_xticks(x, [f"{y}\nn={totals[y]:,}" for y in wide.index], fontsize=8)
        if source == "postings":
            # Postings carry a remote flag only: the rest may include hybrid jobs.
            ax.set_xlabel("on-site = not flagged remote", fontsize=8)
        ax.set_ylim(0, 100)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:.0f}%"))
        n = int(totals.sum())
        ax.set_title(
            f"{SOURCE_SHORT.get(source, source)}\nn={n:,} · {period(wide.index.to_series())}",
            fontsize=9.5,
        )
        _style(ax, "y")
    axes[0].set_ylabel("share of records")
    axes[-1].legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle("Work model by year (share of records)", fontsize=12, fontweight="bold")
    return fig


def demand_figure(demand: pd.DataFrame, n_posts: int, years: str) -> Figure | None:
    """Horizontal bars: share of postings asking for each skill, most asked on top."""
    if demand.empty:
        return None
    panel = demand.sort_values("share")
    fig = Figure(figsize=(9, 0.27 * len(panel) + 1.6), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(panel))
    ax.barh(y, panel["share"], color=SOURCE_COLORS["postings"])
    ax.set_yticks(y, panel["skill"], fontsize=9)
    for yi, share, n in zip(y, panel["share"], panel["n_postings"], strict=True):
        ax.text(share, yi, f" {share:.1f}% ({n:,})", va="center", fontsize=7.5)
    ax.set_xlim(0, panel["share"].max() * 1.22)
    ax.set_ylim(-0.6, len(panel) - 0.4)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:.0f}%"))
    ax.set_xlabel("share of postings that ask for the skill")
    ax.set_title(
        f"{source_label('postings')} only (the survey has no skills) · "
        f"n={n_posts:,} postings listing skills · {years}",
        fontsize=9,
    )
    fig.suptitle(f"Top {len(panel)} skills by demand", fontsize=12, fontweight="bold")
    _style(ax)
    return fig


def skill_pay_figure(pay: pd.DataFrame, n_posts: int, years: str) -> Figure | None:
    """Diverging bars: raw median pay with vs without each skill; model premium as a diamond."""
    shown = pay[~pay["suppressed"]].sort_values("raw_gap_pct")
    if shown.empty:
        return None
    fig = Figure(figsize=(9.5, 0.27 * len(shown) + 1.9), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(shown))
    colors = np.where(shown["raw_gap_pct"] >= 0, "#2a9d8f", "#c0504d")
    ax.barh(
        y,
        shown["raw_gap_pct"],
        color=colors,
        alpha=0.85,
        label=f"raw: median with / without {MINUS} 1",
    )
    premium = shown["model_premium_pct"]
    if premium.notna().any():
        ax.plot(premium, y, "D", color="black", ms=5, label="model premium (SHAP)")
    ax.axvline(0, color="black", lw=0.8)
    labels = [f"{s}  (n={n:,})" for s, n in zip(shown["skill"], shown["n_with"], strict=True)]
    ax.set_yticks(y, labels, fontsize=8.5)
    ax.set_ylim(-0.6, len(shown) - 0.4)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:+.0f}%"))
    ax.set_xlabel("difference in median advertised salary (%)")
    ax.set_title(
        f"{source_label('postings')} · n={n_posts:,} postings listing skills · {years}",
        fontsize=9,
    )
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    fig.suptitle(
        "Pay of postings asking for a skill against those that do not",
        fontsize=12,
        fontweight="bold",
    )
    _style(ax)
    return fig


def skill_group_figure(
    members: pd.DataFrame, summary: pd.DataFrame, n_posts: int, years: str
) -> Figure | None:
    """One small panel per skill group: share of postings asking for each member skill."""
    groups = list(dict.fromkeys(members["group"]))
    if not groups:
        return None
    any_share = summary.set_index("group")["share_any"]
    cols = 3
    rows = -(-len(groups) // cols)
    most = int(members.groupby("group").size().max())
    fig = Figure(figsize=(12, rows * (0.2 * most + 1.3) + 0.6), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    limit = members["share"].max() * 1.3
    for ax, group in zip(axes, groups, strict=False):
        panel = members[members["group"] == group].sort_values("share")
        y = np.arange(len(panel))
        ax.barh(y, panel["share"], color=SOURCE_COLORS["postings"])
        ax.set_yticks(y, panel["skill"], fontsize=8)
        # Same row height in every panel, bars hung from the top.
        ax.set_ylim(len(panel) - most - 0.6, len(panel) - 0.4)
        for yi, share in zip(y, panel["share"], strict=True):
            ax.text(share, yi, f" {share:.1f}%", va="center", fontsize=7)
        ax.set_title(
            f"{group.replace('_', ' ')}: {any_share.get(group, np.nan):.0f}% ask for at least one",
            fontsize=9.5,
        )
        ax.set_xlim(0, limit)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:.0f}%"))
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.tick_params(axis="x", labelsize=8)
        _style(ax)
    for ax in axes[len(groups) :]:
        ax.set_visible(False)
    fig.suptitle(
        "Skill groups: share of postings asking for each skill\n"
        f"{source_label('postings')} · n={n_posts:,} postings listing skills · {years}",
        fontsize=11,
    )
    return fig


def _png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _encode(figure: Figure, output_dir: Path, name: str) -> str:
    """Save ``figure`` as ``name.png`` in ``output_dir``; return it as a data URI."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    (output_dir / f"{name}.png").write_bytes(buffer.getvalue())
    return _png_uri(buffer.getvalue())


# ----- HTML -----------------------------------------------------------------
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;
max-width:1100px;padding:1.5rem;color:#222;line-height:1.45}
h1{margin-bottom:.2rem}h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2.4rem}
h3{margin-top:1.6rem}
table{border-collapse:collapse;margin:.6rem 0 1rem;font-size:.86rem}
th,td{border:1px solid #ddd;padding:.25rem .55rem;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
tr:nth-child(even) td{background:#fafafa}
figure{margin:1rem 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption,.note{font-size:.85rem;color:#555}.muted{color:#777}
code{background:#f3f3f3;padding:0 .25rem}
nav a{margin-right:1rem}
"""


def _p(text: str, cls: str = "") -> str:
    """An escaped paragraph; `backticked` words become <code>."""
    attr = f' class="{cls}"' if cls else ""
    body = re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))
    return f"<p{attr}>{body}</p>"


def _table(frame: pd.DataFrame) -> str:
    # Cells are preformatted strings; to_html escapes them.
    return frame.to_html(index=False, escape=True, border=0, na_rep="—")


class _Page:
    """Collects the HTML parts of one report; saves its figures as PNGs in ``output_dir``."""

    def __init__(self, output_dir: Path) -> None:
        self.output_dir = output_dir
        self.parts: list[str] = []

    def add(self, *parts: str) -> None:
        self.parts.extend(parts)

    def embed(self, uri: str, caption: str) -> None:
        self.add(
            f'<figure><img src="{uri}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )

    def figure(self, figure: Figure | None, name: str, caption: str) -> None:
        if figure is None:
            self.add(_p(f"No figure: no group had enough records ({caption})", "note"))
            return
        self.embed(_encode(figure, self.output_dir, name), caption)


def _provenance(records: pd.DataFrame) -> str:
    return "; ".join(
        f"{source_label(s)}: n={int((records['source'] == s).sum()):,} records, "
        f"{period(records.loc[records['source'] == s, 'year'])}"
        for s in _sources(records)
    )


def _suppression_note(stats: pd.DataFrame, min_n: int, label: Callable[[str], str]) -> str:
    hidden = stats[stats["suppressed"]]
    if hidden.empty:
        return f"No group here has fewer than {min_n} records."
    listed = ", ".join(
        f"{label(v)} in {SOURCE_SHORT.get(s, s).lower()} (n={n})"
        for s, v, n in zip(hidden["source"], hidden.iloc[:, 1], hidden["n"], strict=True)
    )
    return (
        f"Groups with fewer than {min_n} records are suppressed (shown as —, left out of "
        f"figures): {listed}."
    )


def levels_table(
    stats: pd.DataFrame, dimension: str, names: Callable[[str], str], header: str
) -> pd.DataFrame:
    """Wide display table: one row per group, n / median / IQR per source."""
    sources = _sources(stats)
    groups = list(dict.fromkeys(stats[dimension]))
    out = pd.DataFrame({header: [names(g) for g in groups]})
    for source in sources:
        part = stats[stats["source"] == source].set_index(dimension).reindex(groups)
        short = SOURCE_SHORT.get(source, source)
        # A group absent from a source has 0 records there, not a suppressed count.
        out[f"{short} n"] = part["n"].fillna(0).map(_count).to_numpy()
        out[f"{short} median"] = part["median"].map(_usd).to_numpy()
        iqr = [
            "—" if pd.isna(a) else f"{_usd(a)} {DASH} {_usd(b)}"
            for a, b in zip(part["q1"], part["q3"], strict=True)
        ]
        out[f"{short} middle 50%"] = iqr
    return out


def _level_name(level: str) -> str:
    return "all levels" if level == ALL else f"{EXPERIENCE_NAMES.get(level, level)} ({level})"


def _role_name(family: str) -> str:
    return family.replace("_", " ")


def _render_overview(page: _Page, records: pd.DataFrame) -> None:
    overview = data_overview(records)
    shown = pd.DataFrame(
        {
            "source": overview["source"].map(source_label),
            "records": overview["records"].map(_count),
            "rows before collapsing copies": overview["rows_with_copies"].map(_count),
            "period": overview["period"],
            "countries": overview["countries"].map(_count),
            "records listing skills": overview["with_skills"].map(_count),
            "median salary": overview["median"].map(_usd),
        }
    )
    page.add(
        "<h2 id='data'>About the data</h2>",
        _p(
            "Two real sources that measure pay differently: the aijobs.net survey reports pay "
            "people earn; the job postings advertise pay. They are never "
            "pooled: every table and figure below is per source. Counts are distinct records "
            "(exact copies and reposts collapsed to one). Salaries are yearly, in USD."
        ),
        _table(shown),
    )


def _render_levels(page: _Page, records: pd.DataFrame, min_n: int) -> None:
    page.add(
        "<h2 id='levels'>Salary levels</h2>",
        _p(
            f"Median and middle 50% (interquartile range, Q1{DASH}Q3) of yearly salary, "
            "per source. "
            f"Groups with fewer than {min_n} records are suppressed."
        ),
    )
    dimensions = [
        ("role_family", "Role family", _role_name, None, "by role family"),
        (
            "experience_level",
            "Experience level",
            _level_name,
            EXPERIENCE_ORDER,
            "by experience level",
        ),
        (
            "company_size",
            "Company size",
            lambda s: SIZE_NAMES.get(s, s),
            SIZE_ORDER,
            "by company size",
        ),
    ]
    for dimension, header, names, order, what in dimensions:
        stats = salary_levels(records, dimension, min_n, order)
        page.add(f"<h3>Salary {html.escape(what)}</h3>")
        missing = [s for s in _sources(records) if s not in set(stats["source"])]
        if missing:
            page.add(
                _p(
                    "Not recorded in "
                    + ", ".join(source_label(s) for s in missing)
                    + f": {header.lower()} is missing there, so it is left out.",
                    "note",
                )
            )
        page.figure(
            dot_whisker_figure(
                stats, records, dimension, f"Yearly salary {what}", names, order is not None
            ),
            f"salary_by_{dimension}",
            f"Yearly salary {what}. {_provenance(records.dropna(subset=[dimension]))}.",
        )
        page.add(_table(levels_table(stats, dimension, names, header)))
        page.add(_p(_suppression_note(stats, min_n, names), "note"))

    by_year = medians_by_year(records, min_n)
    page.add("<h3>Medians by year</h3>")
    page.figure(
        year_figure(by_year),
        "median_by_year",
        f"Median yearly salary by year, overall and per experience level. "
        f"{_provenance(records)}. Postings cover one year only.",
    )
    cells = by_year.assign(
        cell=[
            "—" if pd.isna(m) else f"{_usd(m)} (n={n:,})"
            for m, n in zip(by_year["median"], by_year["n"], strict=True)
        ]
    )
    for source in _sources(cells):
        wide = (
            cells[cells["source"] == source]
            .pivot(index="year", columns="experience_level", values="cell")
            .reindex(
                columns=[c for c in [ALL, *EXPERIENCE_ORDER] if c in set(cells["experience_level"])]
            )
            .fillna("—")
        )
        wide.columns = [_level_name(c) for c in wide.columns]
        wide = wide.reset_index()
        page.add(f"<p><strong>{html.escape(source_label(source))}</strong></p>", _table(wide))
    page.add(_p(f"— : fewer than {min_n} records in that year and level (suppressed).", "note"))


def _render_geography(page: _Page, records: pd.DataFrame, settings: Settings) -> None:
    min_n, top = settings.report.min_group_size, settings.report.top_countries
    page.add(
        "<h2 id='geography'>Geography</h2>",
        _p(
            "Country is where the employee lives (survey) or where the job is (postings). "
            "Postings whose country could not be resolved are left out of country figures."
        ),
        "<h3>Top countries by number of records</h3>",
    )
    counts = country_counts(records, top)
    page.figure(
        country_count_figure(counts, records),
        "top_countries_by_records",
        f"Top {top} countries by number of records, per source. {_provenance(records)}.",
    )
    page.add("<h3>Top countries by median salary</h3>")
    medians = country_medians(records, top, min_n)
    page.figure(
        dot_whisker_figure(
            medians,
            records,
            "country",
            f"Top countries by median salary (n ≥ {min_n})",
            country_name,
        ),
        "top_countries_by_median",
        f"Top {top} countries by median salary among countries with at least {min_n} records, "
        f"per source. {_provenance(records.dropna(subset=['country']))}.",
    )
    shown = medians.assign(country=medians["country"].map(country_name))
    page.add(
        _table(
            pd.DataFrame(
                {
                    "source": shown["source"].map(source_label),
                    "country": shown["country"],
                    "n": shown["n"].map(_count),
                    "median": shown["median"].map(_usd),
                    "middle 50%": [
                        f"{_usd(a)} {DASH} {_usd(b)}"
                        for a, b in zip(shown["q1"], shown["q3"], strict=True)
                    ],
                }
            )
        ),
        _p(
            f"Countries with fewer than {min_n} records are suppressed from the ranking "
            "(their medians are anecdotes).",
            "note",
        ),
        "<h3>The US against the rest of the world</h3>",
    )
    table = us_vs_rest(records, min_n)
    page.figure(
        us_rest_figure(table, records),
        "us_vs_rest",
        f"Median yearly salary in the US against all other countries, per experience level "
        f"and source. {_provenance(records.dropna(subset=['country']))}.",
    )
    page.add(
        _table(
            pd.DataFrame(
                {
                    "source": table["source"].map(source_label),
                    "experience": table["experience_level"].map(_level_name),
                    "US n": table["n_us"].map(_count),
                    "US median": table["median_us"].map(_usd),
                    "rest n": table["n_rest"].map(_count),
                    "rest median": table["median_rest"].map(_usd),
                    "US premium": table["us_premium_pct"].map(lambda v: _pct(v, True, 0)),
                }
            )
        ),
        _p(f"— : fewer than {min_n} records on that side (suppressed).", "note"),
    )


def _gap_table(
    stats: pd.DataFrame,
    dimension: str,
    names: Callable[[str], str],
    header: str,
    base: str,
) -> pd.DataFrame:
    gap = [
        "baseline" if value == base else _pct(pct, True, 1)
        for value, pct in zip(stats[dimension], stats["gap_pct"], strict=True)
    ]
    return pd.DataFrame(
        {
            "source": stats["source"].map(source_label),
            header: stats[dimension].map(names),
            "n": stats["n"].map(_count),
            "median": stats["median"].map(_usd),
            "middle 50%": [
                "—" if pd.isna(a) else f"{_usd(a)} {DASH} {_usd(b)}"
                for a, b in zip(stats["q1"], stats["q3"], strict=True)
            ],
            f"median gap vs {names(base)}": gap,
        }
    )


def _render_work(page: _Page, records: pd.DataFrame, min_n: int) -> None:
    page.add(
        "<h2 id='work'>Work models</h2>",
        _p(
            "On-site, hybrid (survey remote ratio 50) and fully remote work. Postings only flag "
            "fully remote jobs: there, 'on-site' means 'not flagged remote' and may include "
            "hybrid jobs."
        ),
        "<h3>Share of remote, hybrid and on-site by year</h3>",
    )
    shares = work_model_shares(records, min_n)
    page.figure(
        work_share_figure(shares),
        "work_model_share_by_year",
        f"Share of on-site, hybrid and remote records by year, per source. {_provenance(records)}.",
    )
    wide = shares.pivot_table(
        index=["source", "year"], columns="work_model", values="share", fill_value=0
    ).reindex(columns=WORK_MODEL_ORDER, fill_value=0)
    totals = shares.groupby(["source", "year"])["year_total"].first()
    # A work model a source never records (hybrid in postings) is unknown there, not 0%.
    seen = shares.groupby("source")["work_model"].agg(set)
    display = pd.DataFrame(
        {
            "source": [source_label(s) for s, _ in wide.index],
            "year": [str(y) for _, y in wide.index],
            "n": [f"{totals[i]:,}" for i in wide.index],
            **{
                m: [
                    _pct(v, digits=1) if m in seen[s] else "not recorded"
                    for (s, _), v in zip(wide.index, wide[m], strict=True)
                ]
                for m in WORK_MODEL_ORDER
            },
        }
    )
    page.add(_table(display))
    if shares["suppressed"].any():
        page.add(_p(f"Years with fewer than {min_n} records are left out of the figure.", "note"))

    page.add("<h3>Pay gap between work models</h3>")
    pay = work_model_pay(records, min_n)
    page.figure(
        dot_whisker_figure(
            pay,
            records.assign(work_model=_work_model(records["remote_ratio"])),
            "work_model",
            "Yearly salary by work model",
            ordinal=True,
        ),
        "salary_by_work_model",
        f"Yearly salary by work model, per source. {_provenance(records)}. Raw medians: they "
        "mix differences in role, level and country.",
    )
    page.add(
        _table(_gap_table(pay, "work_model", str, "work model", "on-site")),
        _p(_suppression_note(pay, min_n, str), "note"),
        "<h3>Full-time against contract</h3>",
    )
    employment = employment_pay(records, min_n)
    page.figure(
        dot_whisker_figure(
            employment,
            records,
            "employment_type",
            "Yearly salary by employment type",
            lambda t: EMPLOYMENT_NAMES.get(t, t),
            ordinal=True,
        ),
        "salary_by_employment_type",
        f"Yearly salary by employment type, per source. "
        f"{_provenance(records.dropna(subset=['employment_type']))}.",
    )
    page.add(
        _table(
            _gap_table(
                employment,
                "employment_type",
                lambda t: EMPLOYMENT_NAMES.get(t, t),
                "employment type",
                "FT",
            )
        ),
        _p(_suppression_note(employment, min_n, lambda t: EMPLOYMENT_NAMES.get(t, t)), "note"),
    )


def _render_skills(
    page: _Page, records: pd.DataFrame, settings: Settings, premiums: pd.DataFrame | None
) -> None:
    min_n, top = settings.report.min_group_size, settings.report.top_skills
    posts = postings_with_skills(records)
    n_posts, years = len(posts), period(posts["year"])
    n_all = int((records["source"] == "postings").sum())
    page.add(
        "<h2 id='skills'>Skills</h2>",
        _p(
            f"Postings only: the survey records no skills. Of {n_all:,} postings, {n_posts:,} "
            f"list at least one skill ({years}); the others are left out of this section "
            "because their skills are unknown, not absent."
        ),
        "<h3>Demand: which skills postings ask for</h3>",
    )
    demand = skill_demand(records, top)
    page.figure(
        demand_figure(demand, n_posts, years),
        "skill_demand",
        f"Share of postings asking for each of the top {top} skills. {source_label('postings')}, "
        f"n={n_posts:,} postings listing skills, {years}.",
    )
    page.add("<h3>Pay: with against without each skill</h3>")
    pay = skill_pay(records, list(demand["skill"]), min_n, premiums)
    has_model = pay["model_premium_pct"].notna().any()
    page.add(
        _p(
            "Raw comparison: median advertised salary of postings asking for the skill against "
            "postings that do not. It mixes in everything that travels with a skill (role, "
            "seniority, place). "
            + (
                "The model premium (SHAP) is the model's estimate of the skill's own effect with "
                "the rest of the job held fixed."
                if has_model
                else "Model premiums are not available (run `salarymodel explain`)."
            )
        )
    )
    page.figure(
        skill_pay_figure(pay, n_posts, years),
        "skill_pay",
        f"Median advertised salary with against without each skill"
        f"{' and the model premium' if has_model else ''}. {source_label('postings')}, "
        f"n={n_posts:,} postings listing skills, {years}.",
    )
    display = pd.DataFrame(
        {
            "skill": pay["skill"],
            "share asking": pay["skill"].map(demand.set_index("skill")["share"]).map(_pct),
            "n with": pay["n_with"].map(_count),
            "median with": pay["median_with"].map(_usd),
            "n without": pay["n_without"].map(_count),
            "median without": pay["median_without"].map(_usd),
            "raw gap": pay["raw_gap_pct"].map(lambda v: _pct(v, True, 1)),
        }
    )
    if has_model:
        display["model premium"] = pay["model_premium_pct"].map(lambda v: _pct(v, True, 1))
        display["model $ at median"] = pay["model_dollars_at_median"].map(_signed_usd)
    page.add(_table(display))
    page.add(_p(f"— : fewer than {min_n} postings on that side (suppressed).", "note"))

    groups = settings.report.skill_groups
    page.add("<h3>Skill groups</h3>")
    if not groups:
        page.add(_p("No skill groups are configured (settings.report.skill_groups).", "note"))
        return
    summary = skill_group_summary(records, groups, min_n)
    members = skill_group_members(records, groups)
    page.figure(
        skill_group_figure(members, summary, n_posts, years),
        "skill_groups",
        f"Share of postings asking for each skill, by group. {source_label('postings')}, "
        f"n={n_posts:,} postings listing skills, {years}.",
    )
    page.add(
        _table(
            pd.DataFrame(
                {
                    "group": summary["group"].str.replace("_", " "),
                    "skills seen / configured": [
                        f"{a} / {b}"
                        for a, b in zip(
                            summary["skills_found"], summary["skills_configured"], strict=True
                        )
                    ],
                    "postings asking for any": summary["n_with_any"].map(_count),
                    "share": summary["share_any"].map(_pct),
                    "median with any": summary["median_with"].map(_usd),
                    "median with none": summary["median_without"].map(_usd),
                    "raw gap": summary["raw_gap_pct"].map(lambda v: _pct(v, True, 1)),
                    "most asked": summary["top_skills"],
                }
            )
        )
    )


def _premium_value_name(concept: str, value: object) -> str:
    """A premium's value as the rest of the report names it ('senior (SE)', 'Canada')."""
    text = str(value)
    namers: dict[str, Callable[[str], str]] = {
        "country": country_name,
        "experience_level": _level_name,
        "company_size": lambda s: SIZE_NAMES.get(s, s),
        "employment_type": lambda t: EMPLOYMENT_NAMES.get(t, t),
        "role_family": _role_name,
    }
    if concept == "remote_ratio":
        names = {"0": "on-site", "50": "hybrid", "100": "remote"}
        return names.get(text.removesuffix(".0"), text)
    return namers.get(concept, str)(text)


def _render_model(
    page: _Page,
    records: pd.DataFrame,
    min_n: int,
    premiums: pd.DataFrame | None,
    premium_plots: list[Path] | None,
    accuracy: dict | None,
) -> None:
    page.add("<h2 id='model'>What the model says</h2>", "<h3>Accuracy on held-out data</h3>")
    if accuracy:
        page.add(f"<p class='headline'>{html.escape(accuracy_sentence(accuracy))}</p>")
    else:
        page.add(
            _p(
                "The model's accuracy is not available: train a model with `salarymodel train` "
                "(its cross-validated accuracy is logged with it) and build the report again."
            )
        )
    page.add("<h3>Premiums (SHAP)</h3>")
    if premiums is None or premiums.empty:
        page.add(
            _p(
                "The model's premiums are not available: run `salarymodel train` and then "
                "`salarymodel explain`, and build the report again."
            )
        )
    else:
        page.add(
            _p(
                "How much each value moves the model's estimate against the baseline, averaged "
                f"over the records that have it; the model was trained on both sources "
                f"({_provenance(records)}). Rows backed by fewer than {min_n} records are "
                "flagged."
            )
        )
        table = premium_table(premiums, min_n)
        names = [
            _premium_value_name(c, v) for c, v in zip(table["concept"], table["value"], strict=True)
        ]
        page.add(
            _table(
                pd.DataFrame(
                    {
                        "concept": table["concept"].str.replace("_", " "),
                        "value": names,
                        "premium": table["mean_premium_pct"].map(lambda v: _pct(v, True, 1)),
                        "dollars at median": table["dollars_at_median"].map(_signed_usd),
                        "records": table["count"].map(_count),
                        "flag": np.where(table["few_records"], f"fewer than {min_n} records", ""),
                    }
                )
            )
        )
    if premium_plots:
        for path in premium_plots:
            path = Path(path)
            if not path.is_file():
                page.add(_p(f"Plot not found: {path.name}", "note"))
                continue
            target = page.output_dir / f"model_{path.name}"
            if path.resolve() != target.resolve():
                shutil.copyfile(path, target)
            caption = (
                f"{path.stem.replace('_', ' ')} (from the explanations stage; model trained on "
                f"{_provenance(records)})."
            )
            page.embed(_png_uri(path.read_bytes()), caption)
    elif premiums is not None:
        page.add(_p("No premium plots were given (they come from `salarymodel explain`).", "note"))
    else:
        page.add(_p("Premium plots are not available (run `salarymodel explain`).", "note"))


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
    page = _Page(output_dir)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    page.add(
        "<h1>AI, ML and data jobs: market insights</h1>",
        _p(
            f"Built {stamp} from {len(records):,} distinct records. {_provenance(records)}.",
            "muted",
        ),
        "<nav>"
        + "".join(
            f"<a href='#{anchor}'>{html.escape(title)}</a>"
            for anchor, title in zip(
                ("data", "levels", "geography", "work", "skills", "model"),
                SECTION_TITLES,
                strict=True,
            )
        )
        + "</nav>",
    )
    _render_overview(page, records)
    _render_levels(page, records, min_n)
    _render_geography(page, records, settings)
    _render_work(page, records, min_n)
    _render_skills(page, records, settings, premiums)
    _render_model(page, records, min_n, premiums, premium_plots, accuracy)
    document = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>salarymodel market insights</title><style>{CSS}</style></head><body>"
        + "\n".join(page.parts)
        + "</body></html>"
    )
    path = output_dir / "report.html"
    path.write_text(document, encoding="utf-8")
    return path
