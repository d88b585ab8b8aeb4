"""Global explanation outputs a reviewer opens: plots and the premiums table.

Written by every training run (logged to MLflow as artifacts) and by
``salarymodel explain``. Every chart has a title, axis labels in % or USD,
sorted bars and the count behind each bar.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers or in CI

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter

from salarymodel.core.explanations import (
    SKILL_CONCEPT,
    Explainer,
    mean_abs_by_concept,
    premiums_table,
)
from salarymodel.data.csv_output import write_csv
from salarymodel.data.geography import country_name
from salarymodel.vocabulary import (
    COMPANY_SIZE_NAMES,
    EMPLOYMENT_NAMES,
    EXPERIENCE_NAMES,
    NOT_STATED,
    REMOTE_NAMES,
)

MISSING = "missing"  # how explanations name a value a job left out
_NAMES: dict[str, dict[str, str]] = {
    "experience level": EXPERIENCE_NAMES,
    "company size": COMPANY_SIZE_NAMES,
    "remote ratio": {str(code): name for code, name in REMOTE_NAMES.items()},
    "employment type": EMPLOYMENT_NAMES,
}
# Each coded concept's values in the vocabulary's order, then the missing value.
ORDERS = {concept: [*names, MISSING] for concept, names in _NAMES.items()}
LABELS = {concept: {**names, MISSING: NOT_STATED} for concept, names in _NAMES.items()}
_PCT = FuncFormatter(lambda v, _: f"{v:+.0f}%")


def _save(figure: plt.Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


# A concept's column that orders its values (a title's seniority, a place's wage level).
_COLOUR_BY = ("title_seniority", "area_wage_ratio")


def concept_values(
    matrix: np.ndarray, position: np.ndarray, columns: list[str], categorical: list[int]
) -> np.ndarray:
    """Per record, one number per concept to colour the beeswarm by (rows x concepts).

    A skill's 0/1, an ordinal level's rank, a number's value; for a title its
    seniority and for a location its wage level. A concept whose values have
    no order (country, employment type, pay view) is NaN: shap draws it grey
    rather than colouring it by an arbitrary code.
    """
    values = np.full((len(matrix), int(position.max()) + 1), np.nan)
    for k in range(values.shape[1]):
        own = [int(j) for j in np.flatnonzero(position == k)]
        preferred = [j for j in own if columns[j] in _COLOUR_BY]
        j = preferred[0] if preferred else own[0]
        if preferred or j not in categorical:
            values[:, k] = matrix[:, j]
    return values


def beeswarm(
    grouped: np.ndarray,
    concepts: list[str],
    path: Path,
    values: np.ndarray | None = None,
    top: int = 15,
) -> Path:
    """SHAP beeswarm of the most important concepts, x axis in % premium.

    Coloured by each concept's value (shap's own colouring and colour bar:
    red high, blue low; grey where the values have no order) when ``values``
    are given.
    """
    import shap  # heavy: loaded only to draw

    order = np.argsort(-np.abs(grouped).mean(axis=0))[:top]
    percent = np.expm1(grouped[:, order]) * 100
    explanation = shap.Explanation(
        values=percent,
        base_values=np.zeros(len(percent)),
        data=None if values is None else values[:, order],
        feature_names=[concepts[i] for i in order],
    )
    plt.figure(figsize=(9, 6.5))
    shap.plots.beeswarm(explanation, max_display=top, show=False, color_bar=values is not None)
    figure = plt.gcf()
    axis = figure.axes[0]
    axis.set_xlabel("effect on the estimate (% of salary, SHAP, grouped by concept)")
    axis.set_title(f"What moves an estimate: {len(percent):,} training records")
    axis.xaxis.set_major_formatter(_PCT)
    return _save(figure, path)


def importance_bar(mean_abs: pd.Series, path: Path, top: int = 20) -> Path:
    """Mean |SHAP| per concept as a typical % effect, sorted."""
    data = (np.expm1(mean_abs.head(top)) * 100).iloc[::-1]
    figure, axis = plt.subplots(figsize=(8, 0.32 * len(data) + 1.4))
    axis.barh(data.index, data.to_numpy(), color="#3b75af")
    axis.set_xlabel("typical size of the effect (mean |SHAP| as % of salary)")
    axis.set_title("Which inputs matter most (grouped by concept)")
    axis.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0f}%"))
    return _save(figure, path)


def _premium_bars(
    rows: pd.DataFrame, title: str, path: Path, labels: dict[str, str] | None = None
) -> Path:
    """Horizontal bars of mean premium % with dollars and counts in the labels.

    No rows (a concept the training data never gives: skills when the only
    source is the survey) is a chart that says so, not a crash.
    """
    if rows.empty:
        figure, axis = plt.subplots(figsize=(8.5, 2.0))
        axis.set_title(title)
        axis.text(0.5, 0.5, "no training record in the sample gives this", ha="center")
        axis.set_axis_off()
        return _save(figure, path)
    names = [
        f"{(labels or {}).get(v, v)}  (n={n:,})"
        for v, n in zip(rows["value"], rows["count"], strict=True)
    ]
    values = rows["mean_premium_pct"].to_numpy()
    figure, axis = plt.subplots(figsize=(8.5, 0.34 * len(rows) + 1.6))
    colours = np.where(values >= 0, "#2a9d8f", "#c8553d")
    axis.barh(names[::-1], values[::-1], color=colours[::-1])
    axis.axvline(0, color="black", linewidth=0.8)
    for y, (value, dollars) in enumerate(
        zip(values[::-1], rows["dollars_at_median"].to_numpy()[::-1], strict=True)
    ):
        axis.annotate(
            f" {'+' if dollars >= 0 else '-'}${abs(dollars):,.0f}",
            (value, y),
            va="center",
            ha="left" if value >= 0 else "right",
            fontsize=8,
            xytext=(3 if value >= 0 else -3, 0),
            textcoords="offset points",
        )
    axis.set_xlabel("mean premium vs the average estimate (%); label: USD at the median salary")
    axis.set_title(title)
    axis.xaxis.set_major_formatter(_PCT)
    low, high = min(values.min(), 0), max(values.max(), 0)
    pad = 0.25 * (high - low or 1)
    axis.set_xlim(low - pad, high + pad)
    return _save(figure, path)


def category_premiums(table: pd.DataFrame, concept: str, path: Path, min_count: int) -> Path:
    """Premium chart for one categorical concept in its natural order (groups >= min_count)."""
    rows = table[(table["concept"] == concept) & (table["count"] >= min_count)].copy()
    order = ORDERS.get(concept)
    if order:
        rows["rank"] = rows["value"].map({v: i for i, v in enumerate(order)}).fillna(len(order))
        rows = rows.sort_values("rank")
    else:
        rows = rows.sort_values("mean_premium_pct", ascending=False)
    return _premium_bars(
        rows,
        f"Premium by {concept} (groups with >= {min_count} records)",
        path,
        LABELS.get(concept),
    )


def skill_premiums(table: pd.DataFrame, path: Path, min_count: int, top: int = 25) -> Path:
    """The top skills by count: average premium when the posting asks for them."""
    skills = table[table["concept"].str.startswith(SKILL_CONCEPT) & (table["count"] >= min_count)]
    rows = skills.nlargest(top, "count").copy()
    rows["value"] = rows["concept"].str.removeprefix(SKILL_CONCEPT)
    rows = rows.sort_values("mean_premium_pct", ascending=False)
    return _premium_bars(rows, f"Skill premiums: the {len(rows)} most asked-for skills", path)


def country_premiums(table: pd.DataFrame, path: Path, min_count: int, top: int = 25) -> Path:
    """Countries with enough records: premium over the average estimate."""
    rows = table[(table["concept"] == "country") & (table["count"] >= min_count)]
    rows = rows[rows["value"] != MISSING].nlargest(top, "count")
    rows = rows.sort_values("mean_premium_pct", ascending=False)
    names = {code: country_name(code) for code in rows["value"]}
    title = f"Country premiums (countries with >= {min_count} records)"
    return _premium_bars(rows, title, path, names)


def write_premiums(table: pd.DataFrame, folder: Path) -> list[Path]:
    """The premiums table as CSV and JSON."""
    csv_path, json_path = folder / "premiums.csv", folder / "premiums.json"
    write_csv(table, csv_path, index=False, float_format="%.4f")
    json_path.write_text(json.dumps(table.to_dict("records"), indent=1, default=_json_number))
    return [csv_path, json_path]


def _json_number(value: object) -> object:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if math.isnan(value) else float(value)
    raise TypeError(type(value))


def write_global_explanations(
    explainer: Explainer,
    records: pd.DataFrame,
    folder: Path,
    sample_size: int,
    min_count: int,
    seed: int = 0,
) -> tuple[pd.DataFrame, list[Path]]:
    """Explain a sample of training records and write every global plot and the table.

    The premiums table covers the sample (its counts say so); TreeSHAP on
    every training record takes minutes and adds little to the averages.
    """
    folder.mkdir(parents=True, exist_ok=True)
    sample = (
        records if len(records) <= sample_size else records.sample(sample_size, random_state=seed)
    )
    sample = sample.reset_index(drop=True)
    builder = explainer.model.builder
    matrix = builder.transform(sample)
    grouped = explainer.grouped(matrix)
    concepts = explainer.concepts
    table = premiums_table(sample, builder, matrix, grouped, concepts)
    paths = [
        beeswarm(
            grouped,
            concepts,
            folder / "shap_beeswarm.png",
            concept_values(
                matrix, explainer.position, list(builder.columns), builder.categorical_indices
            ),
        ),
        importance_bar(mean_abs_by_concept(grouped, concepts), folder / "shap_importance.png"),
        skill_premiums(table, folder / "premium_skills.png", min_count),
        country_premiums(table, folder / "premium_country.png", min_count),
        *[
            category_premiums(
                table, concept, folder / f"premium_{concept.replace(' ', '_')}.png", min_count
            )
            for concept in ORDERS
        ],
        *write_premiums(table, folder),
    ]
    return table, paths
