"""The months a record's pay period spans (year, else year and month).

Ranges (the drift stretch) and the backtest (folds in time) both read it.
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
