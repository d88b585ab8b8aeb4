"""The report's figures: matplotlib Figures drawn from the frames of ``statistics``.

Every figure has one panel per source (they are never pooled) and its title
names the source, the number of records and the period. A figure with nothing
to show (every group suppressed) is None. ``save_png`` writes one as a PNG.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from salarymodel.data.geography import country_name
from salarymodel.report.statistics import period, sources_of
from salarymodel.report.text import (
    ALL,
    MINUS,
    SOURCE_COLORS,
    WORK_MODEL_COLORS,
    WORK_MODEL_ORDER,
    source_label,
    usd_short,
)
from salarymodel.vocabulary import EXPERIENCE_LEVELS, EXPERIENCE_NAMES, REMOTE_NAMES, SOURCE_SHORT

DPI = 110


def _panel_title(source: str, n: int, years: str) -> str:
    return f"{source_label(source)} · n={n:,} · {years}"


def _style(ax: Axes, axis: Literal["x", "y"] = "x") -> None:
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
    sources = sources_of(shown) if not shown.empty else []
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
        ax.xaxis.set_major_formatter(FuncFormatter(usd_short))
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
    for index, source in enumerate(sources_of(shown)):
        frame = shown[shown["source"] == source]
        # The first source (the survey, over several years) is drawn as lines; the
        # others as open markers, nudged sideways so they never sit on its markers.
        first = index == 0
        marker, style = ("o", "-") if first else ("D", "none")
        shift = 0.12 * index
        for i, level in enumerate([ALL, *EXPERIENCE_LEVELS]):
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
                mfc=f"C{i}" if first else "white",
                label=f"{SOURCE_SHORT.get(source, source)}: {name}",
            )
        overall = frame[frame["experience_level"] == ALL]
        notes.append(
            f"{source_label(source)}: n={int(overall['n'].sum()):,}, "
            f"{period(overall['year'].astype(float))}"
        )
    years = sorted(shown["year"].unique())
    ax.set_xticks(years, [str(y) for y in years])
    ax.yaxis.set_major_formatter(FuncFormatter(usd_short))
    ax.set_ylabel("median yearly salary (USD)")
    ax.legend(fontsize=8, ncols=2, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_title("\n".join(notes), fontsize=9)
    fig.suptitle("Median salary by year and experience level", fontsize=12, fontweight="bold")
    _style(ax, "y")
    return fig


def country_count_figure(counts: pd.DataFrame, records: pd.DataFrame) -> Figure | None:
    """Top countries by number of records, one panel per source, with counts on the bars."""
    sources = sources_of(counts) if not counts.empty else []
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
    sources = sources_of(table) if not table.empty else []
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
        ax.yaxis.set_major_formatter(FuncFormatter(usd_short))
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
    sources = sources_of(shown) if not shown.empty else []
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
        if not wide[REMOTE_NAMES[50]].any():
            # No hybrid job at all: the source carries a remote flag only (the
            # postings), so the rest may include hybrid jobs.
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


def demand_figure(demand: pd.DataFrame, n_posts: int, years: str, source: str) -> Figure | None:
    """Horizontal bars: share of postings asking for each skill, most asked on top."""
    if demand.empty:
        return None
    panel = demand.sort_values("share")
    fig = Figure(figsize=(9, 0.27 * len(panel) + 1.6), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(panel))
    ax.barh(y, panel["share"], color=SOURCE_COLORS.get(source, "#444444"))
    ax.set_yticks(y, panel["skill"], fontsize=9)
    for yi, share, n in zip(y.tolist(), panel["share"], panel["n_postings"], strict=True):
        ax.text(share, yi, f" {share:.1f}% ({n:,})", va="center", fontsize=7.5)
    ax.set_xlim(0, panel["share"].max() * 1.22)
    ax.set_ylim(-0.6, len(panel) - 0.4)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:.0f}%"))
    ax.set_xlabel("share of postings that ask for the skill")
    ax.set_title(
        f"{source_label(source)} only (the survey has no skills) · "
        f"n={n_posts:,} postings listing skills · {years}",
        fontsize=9,
    )
    fig.suptitle(f"Top {len(panel)} skills by demand", fontsize=12, fontweight="bold")
    _style(ax)
    return fig


def skill_pay_figure(pay: pd.DataFrame, n_posts: int, years: str, source: str) -> Figure | None:
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
        f"{source_label(source)} · n={n_posts:,} postings listing skills · {years}",
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
    members: pd.DataFrame, summary: pd.DataFrame, n_posts: int, years: str, source: str
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
        ax.barh(y, panel["share"], color=SOURCE_COLORS.get(source, "#444444"))
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
        f"{source_label(source)} · n={n_posts:,} postings listing skills · {years}",
        fontsize=11,
    )
    return fig


def png_uri(data: bytes) -> str:
    """PNG bytes as a data URI, so the page shows them with no file beside it."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def save_png(figure: Figure, path: Path) -> bytes:
    """Write ``figure`` to ``path`` as a PNG; return its bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()
