"""The error metrics every table reports."""

from __future__ import annotations

import numpy as np


def metrics(salary_usd: np.ndarray, estimate_usd: np.ndarray) -> dict[str, float]:
    """R² on log salary, MAE in USD and median absolute percentage error (%)."""
    y, p = np.log(salary_usd), np.log(estimate_usd)
    ss_res = float(np.sum((y - p) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    return {
        "n": len(y),
        "r2_log": 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan"),
        "mae_usd": float(np.mean(np.abs(salary_usd - estimate_usd))),
        "mdape": float(np.median(np.abs(estimate_usd - salary_usd) / salary_usd) * 100),
    }
