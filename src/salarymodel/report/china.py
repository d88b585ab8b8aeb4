"""The report's section "China: AIGC talent (Maimai 2023)": the report's published figures.

Our training data holds almost no Chinese records, so this section shows what
the report this product starts from publishes (``salarymodel.core.china_reference``
reads the shipped transcription): the average yearly pay of six hot AIGC
roles, in CNY and in USD at the ECB's mean rate of the report's period, where
that talent lives, and what it says of age and industries in words, each
cited. Nothing here is computed from our records except their count.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from salarymodel.core.china_reference import TEN_THOUSAND, records_text, table
from salarymodel.report.tables import Table

BAR_COLOR = "#8c2d04"  # one colour: one source, never pooled with ours


def role_pay_frame() -> pd.DataFrame:
    """The six roles, highest pay first: names, 万元, CNY and USD a year."""
    data = table()
    rate = data["usd_rate"]["cny_per_usd"]
    rows = [
        {
            "role": pay["en"],
            "role_zh": pay["zh"],
            "pay_10k_cny": pay["value"],
            "pay_cny": pay["value"] * TEN_THOUSAND,
            "pay_usd": pay["value"] * TEN_THOUSAND / rate,
        }
        for pay in data["role_pay_10k_cny"].values()
    ]
    return pd.DataFrame(rows).sort_values("pay_cny", ascending=False, ignore_index=True)


def city_frame() -> pd.DataFrame:
    """The four cities the report names, largest share first."""
    rows = [
        {"city": c["en"], "city_zh": c["zh"], "share_pct": c["value"]}
        for c in table()["city_share_pct"].values()
    ]
    return pd.DataFrame(rows).sort_values("share_pct", ascending=False, ignore_index=True)


def role_pay_table(pay: pd.DataFrame) -> Table:
    """Cells of the role pay table: role (both names), 万元, CNY and USD a year."""
    rate = table()["usd_rate"]["cny_per_usd"]
    frame = pd.DataFrame(
        {
            "role": pay["role"],
            "as the report names it": pay["role_zh"],
            "万元 (10,000 CNY) a year": pay["pay_10k_cny"].map(lambda v: f"{v:g}"),
            "CNY a year": pay["pay_cny"].map(lambda v: f"¥{v:,.0f}"),
            f"USD a year (at {rate} CNY per USD)": pay["pay_usd"].map(lambda v: f"${v:,.0f}"),
        }
    )
    return Table.of(frame)


def city_table(cities: pd.DataFrame) -> Table:
    """Cells of the city table: city (both names) and share of AIGC talent."""
    frame = pd.DataFrame(
        {
            "city": cities["city"],
            "as the report names it": cities["city_zh"],
            "share of AIGC talent": cities["share_pct"].map(lambda v: f"{v:.2f}%"),
        }
    )
    return Table.of(frame)


def bar_figure(labels: list[str], values: list[float], title: str, unit: str) -> Figure:
    """Horizontal bars, first label on top, each bar labelled with its value."""
    fig = Figure(figsize=(8, 0.45 * len(labels) + 1.4), layout="constrained")
    ax = fig.subplots()
    y = list(range(len(labels)))[::-1]
    ax.barh(y, values, color=BAR_COLOR)
    ax.set_yticks(y, labels, fontsize=9)
    for yi, value in zip(y, values, strict=True):
        ax.text(value, yi, f" {value:g}{unit}", va="center", fontsize=8.5)
    ax.set_xlim(0, max(values) * 1.2)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_title(title, fontsize=10)
    return fig


def china_section(folder: Any) -> dict[str, object]:
    """Tables, figures, statements and citations of the China section.

    ``folder``: the report's ``sections.FigureFolder`` (saves each figure as a PNG).
    """
    data = table()
    pay, cities = role_pay_frame(), city_frame()
    # English labels only in the charts: matplotlib's default font has no CJK
    # glyphs (the tables carry the report's own names).
    pay_figure = bar_figure(
        list(pay["role"]),
        list(pay["pay_10k_cny"]),
        f"Average yearly pay (10,000 CNY)\n{data['source']} · {data['period']}",
        "",
    )
    city_figure = bar_figure(
        list(cities["city"]),
        list(cities["share_pct"]),
        f"Where AIGC talent lives (share)\n{data['source']} · {data['period']}",
        "%",
    )
    return {
        "title": data["title"],
        "publisher": data["publisher"],
        "source": data["source"],
        "period": data["period"],
        "published": data["published"],
        "listing": data["listing"],
        "role_pay_table": role_pay_table(pay),
        "role_pay_figure": folder.show(pay_figure, "china_role_pay"),
        "role_pay_source": data["role_pay_source"],
        "city_table": city_table(cities),
        "city_figure": folder.show(city_figure, "china_cities"),
        "city_source": data["city_source"],
        "city_total": f"{cities['share_pct'].sum():.2f}%",
        "statements": data["statements"],
        "not_transcribed": data["not_transcribed"],
        "rate_basis": data["usd_rate"]["basis"],
        "cny_per_usd": data["usd_rate"]["cny_per_usd"],
        "records": records_text(),
    }
