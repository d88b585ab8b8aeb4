"""The model's premiums as the report shows them: one small-group rule, words not codes.

The premiums table comes from ``salarymodel explain`` (a random sample of
training records explained with SHAP). Here it is tidied for a reader: a
value left out is one "not stated" group (the CSV may hold it as ``missing``
or as an empty cell read back as NaN), groups under the report's
``min_group_size`` are counted rather than shown, the premium charts are
redrawn under that same rule, and every chart gets a caption in words.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from salarymodel.vocabulary import NOT_STATED

# Ways a value that a record left out reaches the table (explanations.MISSING,
# or an empty/"nan" cell once the CSV is read back).
_LEFT_OUT = {"missing", "nan", "none", ""}
# Caption of each plot written by ``salarymodel explain``, by file stem.
CAPTIONS = {
    "shap_beeswarm": (
        "How each input moves one estimate, record by record; the colour is the input's value "
        "(red high, blue low: a listed skill, a higher level or seniority, a higher-wage "
        "location), so the side the red dots sit on is the side that pays more; country, "
        "employment type and pay view have no order and are grey"
    ),
    "shap_importance": "Which inputs matter most: the typical size of each input's effect",
    "premium_country": "What each country adds to the estimate, in dollars",
    "premium_skills": "What each of the most asked-for skills adds to the estimate, in dollars",
}


def caption(stem: str) -> str:
    """A plot's caption in words, from its file stem ('premium_company_size' -> words)."""
    if stem in CAPTIONS:
        return CAPTIONS[stem]
    if stem.startswith("premium_"):
        concept = stem.removeprefix("premium_").replace("_", " ")
        return f"What each {concept} adds to the estimate, in dollars"
    return "A chart of the model's explanations"


def tidy(premiums: pd.DataFrame) -> pd.DataFrame:
    """One row per (concept, value); every left-out value merged into one NOT_STATED group.

    Merged groups keep their record count and a count-weighted mean premium.
    """
    value = premiums["value"].astype(str)
    left_out = premiums["value"].isna() | value.str.strip().str.lower().isin(_LEFT_OUT)
    table = premiums.assign(value=value.where(~left_out, NOT_STATED))
    weight = table["count"].astype(float)
    table = table.assign(
        _pct=table["mean_premium_pct"] * weight, _usd=table["dollars_at_median"] * weight
    )
    merged = table.groupby(["concept", "value"], as_index=False, sort=False).agg(
        _pct=("_pct", "sum"), _usd=("_usd", "sum"), count=("count", "sum")
    )
    return pd.DataFrame(
        {
            "concept": merged["concept"],
            "value": merged["value"],
            "mean_premium_pct": merged["_pct"] / merged["count"],
            "dollars_at_median": merged["_usd"] / merged["count"],
            "count": merged["count"].astype(int),
        }
    )


def sample_size(premiums: pd.DataFrame) -> int:
    """Records in the SHAP sample: every record has one value of each non-skill concept."""
    coded = premiums[~premiums["concept"].str.startswith("skill")]
    if coded.empty:
        return int(premiums["count"].max()) if len(premiums) else 0
    return int(coded.groupby("concept")["count"].sum().max())


def large_enough(premiums: pd.DataFrame, min_n: int) -> tuple[pd.DataFrame, int]:
    """(rows backed by at least ``min_n`` records, how many rows were left out)."""
    keep = premiums["count"].to_numpy() >= min_n
    return premiums[keep].reset_index(drop=True), int(np.count_nonzero(~keep))


def redraw(stem: str, premiums: pd.DataFrame, target: Path, min_n: int) -> Path:
    """A premium chart drawn again from the table under the report's small-group rule."""
    from salarymodel.report import explanation_plots as plots  # matplotlib: loaded only to draw

    if stem == "premium_country":
        return plots.country_premiums(premiums, target, min_n)
    if stem == "premium_skills":
        return plots.skill_premiums(premiums, target, min_n)
    concept = stem.removeprefix("premium_").replace("_", " ")
    return plots.category_premiums(premiums, concept, target, min_n)
