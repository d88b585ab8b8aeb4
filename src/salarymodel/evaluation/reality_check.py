"""The model against official US wages: median estimate vs BLS OEWS median per family and area.

The wages themselves (the shipped table, the feature and the reference shown
beside a US estimate) are ``salarymodel.data.bls_reference``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from salarymodel.data.bls_reference import BlsWages

if TYPE_CHECKING:
    import pandas as pd

    from salarymodel.config.settings import Settings
    from salarymodel.core.model import SalaryModel

# The reality check's columns (evaluate prints them; --json gives them by name).
CHECK_COLUMNS = [
    "role_family",
    "occupation",
    "area",
    "records",
    "model_median_usd",
    "actual_median_usd",
    "bls_median_usd",
    "model_over_bls",
]


def reality_check(
    records: pd.DataFrame,
    estimates: Sequence[float],
    families: Sequence[str],
    bls: BlsWages,
    occupations: Mapping[str, str],
    min_records: int,
) -> pd.DataFrame:
    """Model's median estimate and the records' median pay against BLS's median.

    One row per role family and area (metro, else state) with at least
    ``min_records`` US records; ``families`` holds each record's role family.
    BLS counts employees of all seniorities and wages without bonuses or
    equity, so a ratio above 1 is expected for senior-heavy data: the table
    shows where the model departs from official pay, not an error.
    """
    import pandas as pd

    frame = pd.DataFrame(
        {
            "role_family": list(families),
            "country": records["country"].to_numpy(),
            "state": records["state"].to_numpy() if "state" in records else None,
            "metro": records["metro"].to_numpy() if "metro" in records else None,
            "estimate": list(estimates),
            "actual": records["salary_usd"].to_numpy(),
        }
    )
    frame = frame[frame["country"] == "US"]
    socs = frame["role_family"].map(occupations)
    frame["area"] = [
        bls.area_of(
            soc, state if isinstance(state, str) else None, m if isinstance(m, str) else None
        )
        for soc, state, m in zip(socs, frame["state"], frame["metro"], strict=True)
    ]
    frame = frame.dropna(subset=["area"])
    rows = []
    for (family, area), group in frame.groupby(["role_family", "area"]):
        if len(group) < min_records:
            continue
        soc = occupations[family]
        median = bls.wages[soc][area].p50
        model = float(group["estimate"].median())
        rows.append(
            {
                "role_family": family,
                "occupation": bls.occupations[soc],
                "area": bls.areas[area],
                "records": len(group),
                "model_median_usd": round(model),
                "actual_median_usd": round(float(group["actual"].median())),
                "bls_median_usd": median,
                "model_over_bls": round(model / median, 3) if median else math.nan,
            }
        )
    if not rows:
        return pd.DataFrame(columns=CHECK_COLUMNS)
    table = pd.DataFrame(rows, columns=CHECK_COLUMNS)
    return table.sort_values(["role_family", "records"], ascending=[True, False])


def champion_reality_check(model: SalaryModel, settings: Settings) -> pd.DataFrame:
    """:func:`reality_check` of a model on the training data's US records (its own estimates).

    Empty for a model without features.location. The estimates are the
    model's for each record as described (its source's view, in-sample): the
    check is of the level the model serves, not of its held-out error.
    """
    import numpy as np
    import pandas as pd

    from salarymodel.config.settings import load_sources
    from salarymodel.data.dataset import load_training_data

    builder = model.builder
    location = builder.features.location
    if location is None or builder.bls is None:
        return pd.DataFrame()
    records = load_training_data(settings, load_sources()).records
    us = records[records["country"] == "US"].reset_index(drop=True)
    estimates = np.exp(model.predict_log(builder.transform(us)))
    families = [
        builder.job_title(title, category).family
        for title, category in zip(us["job_title"], us["job_category"], strict=True)
    ]
    return reality_check(
        us,
        estimates.tolist(),
        families,
        builder.bls,
        location.occupations,
        settings.features.location.reality_check_min_records
        if settings.features.location is not None
        else location.reality_check_min_records,
    )
