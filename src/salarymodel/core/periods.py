"""The months a record's pay period spans (year, else year and month).

Ranges (the drift stretch), the backtest (folds in time) and the recency
weights of training records read it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd


def record_months(records: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """First and last month (year * 12 + month - 1) each record's period spans.

    A record with a month is one month long; one with only a year spans the year.
    """
    import pandas as pd  # loaded on use: serving workers import ranges

    year = pd.to_numeric(records["year"], errors="coerce").to_numpy(float)
    month = pd.to_numeric(records["month"], errors="coerce").to_numpy(float)
    has_month = ~np.isnan(month)
    start = year * 12 + np.where(has_month, month - 1, 0)
    end = year * 12 + np.where(has_month, month - 1, 11)
    return start, end


def recency_weights(records: pd.DataFrame, half_life_months: float | None) -> np.ndarray | None:
    """Weights halving every ``half_life_months`` back from each source's latest record.

    None (no weights) when ``half_life_months`` is None. Each source is aged
    from its own latest record: the sources' periods end at different times.
    """
    if half_life_months is None:
        return None
    _, end = record_months(records)
    sources = records["source"].to_numpy()
    age = np.zeros(len(records))
    for source in np.unique(sources):
        in_source = sources == source
        age[in_source] = np.nanmax(end[in_source]) - end[in_source]
    return 0.5 ** (np.nan_to_num(age) / half_life_months)
