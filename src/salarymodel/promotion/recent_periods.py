"""Every source's most recent period: does a new file make the model worse there?

The held-out new rows show whether the challenger prices the NEW data well;
they cannot show whether the new rows made it worse on another source (the
issue: 1,597 later survey rows made postings +$347 worse). Every source's
most recent period of the existing data is the place to look, but both the
champion and the challenger were fit on it: scoring them there would compare
training error. So the comparison is refit, honestly, per source:

  the period: the source's latest backtest fold (``backtest.backtest_folds``
    on the existing records: same windows and cut-offs as `train`'s backtest);
  a reference fit: the fold's training rows (every existing record, of any
    source, whose period ended before the window; no group of the window);
  a challenger fit: the same rows plus the new file's records (none sharing a
    group with the window).

The two fits differ only by the new records, so the paired interval on the
window's rows measures what the new file does to that source's next period.
The champion's own logged backtest estimates were not used: they come from
the code and configuration of its day, and pairing them with a fit of today's
would measure both changes at once. Cost: two fits per source.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from salarymodel.config.settings import Settings
from salarymodel.evaluation.backtest import BacktestFold, backtest_folds
from salarymodel.evaluation.baselines import fused_lightgbm
from salarymodel.promotion.gate import PairedInterval, paired_interval


@dataclass
class PeriodComparison:
    """The new file's effect on one source's most recent period of the existing data."""

    source: str
    period: str
    train_rows: int
    new_rows: int
    interval: PairedInterval


def latest_periods(existing: pd.DataFrame, settings: Settings) -> dict[str, BacktestFold]:
    """Each source's most recent backtest fold (sources too short for one are absent)."""
    folds = backtest_folds(existing, settings.evaluation.backtest)
    return {fold.source: fold for fold in folds}  # oldest first: the last one wins


def compare_recent_periods(
    records: pd.DataFrame, is_new: np.ndarray, settings: Settings
) -> list[PeriodComparison]:
    """Reference and challenger fits scored on every source's most recent period."""
    existing, new = records[~is_new].reset_index(drop=True), records[is_new]
    gate = settings.gate
    out = []
    for source, fold in sorted(latest_periods(existing, settings).items()):
        test = existing[fold.test]
        base = existing[fold.train]
        added = new[~new["group_id"].isin(test["group_id"])]
        reference = fused_lightgbm(base, test, settings)
        challenger = fused_lightgbm(pd.concat([base, added], ignore_index=True), test, settings)
        interval = paired_interval(
            gate.metric,
            test["salary_usd"].to_numpy(float),
            challenger,
            reference,
            test["group_id"].to_numpy(),
            gate.resamples,
            gate.confidence,
            gate.seed,
        )
        out.append(PeriodComparison(source, fold.label, len(base), len(added), interval))
    return out
