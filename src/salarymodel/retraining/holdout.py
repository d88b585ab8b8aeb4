"""Challenger and champion on the same held-out rows, with the gate metric's paired interval."""

from __future__ import annotations

import numpy as np
import pandas as pd

from salarymodel.config.settings import Settings
from salarymodel.core.model import SalaryModel
from salarymodel.evaluation.baselines import fit_threads, fused_lightgbm
from salarymodel.evaluation.metrics import metrics
from salarymodel.promotion.decisions import Comparison
from salarymodel.promotion.gate import (
    paired_interval,
)
from salarymodel.vocabulary import ALL


def _slice_metrics(frame: pd.DataFrame, estimate: np.ndarray) -> dict[str, dict[str, float]]:
    salary = frame["salary_usd"].to_numpy(float)
    out = {ALL: metrics(salary, estimate)}
    for source in sorted(frame["source"].unique()):
        mask = (frame["source"] == source).to_numpy()
        out[str(source)] = metrics(salary[mask], estimate[mask])
    return out


def compare_on_holdout(
    records: pd.DataFrame,
    holdout: np.ndarray,
    existing: np.ndarray,
    champion: SalaryModel,
    settings: Settings,
) -> Comparison:
    """Fit a challenger on everything but the holdout; score both models on the same rows."""
    train = records[~holdout]
    scored = pd.concat([records[holdout], records[existing]], ignore_index=True)
    challenger = fused_lightgbm(train, scored, settings)
    # The champion predicts with the fits' thread count, as every LightGBM call
    # of a training pass must (see SalaryModel.predict_log).
    ours = champion.estimate_records(scored, fit_threads(settings), ranges=False)
    ours = ours["estimate_usd"].to_numpy()
    n = int(holdout.sum())
    held, old = scored.iloc[:n], scored.iloc[n:]
    gate = settings.gate
    interval = paired_interval(
        gate.metric,
        held["salary_usd"].to_numpy(float),
        challenger[:n],
        ours[:n],
        held["group_id"].to_numpy(),
        gate.resamples,
        gate.confidence,
        gate.seed,
    )
    return Comparison(
        holdout={
            "challenger": _slice_metrics(held, challenger[:n]),
            "champion": _slice_metrics(held, ours[:n]),
        },
        existing={
            "challenger": _slice_metrics(old, challenger[n:]),
            "champion": _slice_metrics(old, ours[n:]),
        },
        holdout_rows=n,
        existing_rows=len(old),
        train_rows=len(train),
        interval=interval,
    )
