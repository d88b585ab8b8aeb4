"""Each source's pay growth per year, carried past the last year a model was fit on.

Why: trees cannot extrapolate. A model fit on the survey up to 2023 scores
2024 jobs as 2023 jobs, and the survey's 2024 backtest fold was
under-estimated by 5-6% in every pay-level group while, within the same
country and experience level, pay rose from one year to the next.

What: for one source's training rows, the residual log salary after the
country level (``salarymodel.core.country_levels``) is summarised per year by its
median (robust to outliers), and a line is fit through the yearly medians,
weighted by their record counts. The slope is shrunk toward no growth by its
information, S = sum of n_t x (t - mean year)^2, against a prior worth
``trend_prior_strength`` records one year from the mean:
slope x S / (S + prior). A source with one year only (the 2023 postings) has
no trend.

How it is used: only a job dated after the last training year gets
slope x (year - last year), capped at ``trend_max_years`` years ahead, on top
of its level. Within the training years it adds nothing, so the trees and
everything fit in time are unchanged; in grouped CV (every year in training)
it adds nothing either. No pandas: serving workers load this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class YearTrend:
    """Log-salary growth per year and the last year it was fit on (None: no trend)."""

    slope: float = 0.0
    last_year: float | None = None

    def ahead(self, years: np.ndarray, max_years: float) -> np.ndarray:
        """What the trend adds per row: slope x years past the last, capped; 0 for unknown years."""
        if self.last_year is None or self.slope == 0.0:
            return np.zeros(len(years))
        past = np.nan_to_num(np.asarray(years, float) - self.last_year, nan=0.0)
        return self.slope * np.clip(past, 0.0, max_years)


def fit_trend(residual: np.ndarray, years: np.ndarray, prior_strength: float) -> YearTrend:
    """The shrunk yearly growth of ``residual`` (log salary less the country level)."""
    years = np.asarray(years, float)
    known = np.isfinite(years)
    if not known.any():
        return YearTrend()
    distinct = np.unique(years[known])
    last = float(distinct[-1])
    if len(distinct) < 2:
        return YearTrend(0.0, last)
    medians = np.array([np.median(residual[known & (years == t)]) for t in distinct])
    counts = np.array([np.sum(known & (years == t)) for t in distinct], float)
    mean_year = np.average(distinct, weights=counts)
    spread = counts * (distinct - mean_year) ** 2
    information = float(spread.sum())
    slope = float(np.sum(counts * (distinct - mean_year) * medians) / information)
    return YearTrend(slope * information / (information + prior_strength), last)
