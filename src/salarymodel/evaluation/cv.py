"""Honest evaluation: grouped K-fold CV, per source, always next to baselines.

Folds are assigned by ``group_id`` (a record, its collapsed repeats and a
posting's reposts share one), stratified by source, so no copy of a record
sits on both sides of a split. Every model below is scored on the same folds:

- ``fused_lightgbm``: the product: one LightGBM on both sources' features.
- ``single_source``: the same features and model, trained on one source only.
- ``raw_lightgbm``: plain LightGBM on one source's raw (non-leaky) columns.
- ``group_median``: median salary of the most specific group with enough
  training records (backoff order from the config).
- ``global_median``: the training median.

One pass over the folds does it all: a fold's fused model and the range
procedure share that fold's feature builder and matrices (both fit on the
fold's training rows only), the range evaluation takes the fused model's
out-of-fold estimates, and every fit is a job on the worker pool
(``salarymodel.evaluation.workers``) next to the other folds' fits.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from salarymodel.config.settings import Settings
from salarymodel.data.role_family import with_role_family
from salarymodel.evaluation.backtest import (
    BacktestFold,
    BacktestReport,
    assemble,
    backtest_folds,
    drift_corrected,
    pool_range_rows,
)
from salarymodel.evaluation.fitters import BACKTEST_PREFIX, Fitter, JobResult, LocalFitter, Splits
from salarymodel.evaluation.folds import assign_folds
from salarymodel.evaluation.range_eval import SplitBands, range_rows
from salarymodel.evaluation.report import EvaluationReport, cv_table, ranges_table, row_keys
from salarymodel.vocabulary import (
    FUSED_MODEL,
    GLOBAL_MEDIAN_MODEL,
    GROUP_MEDIAN_MODEL,
    MODEL_NAMES,
    RAW_MODEL,
)


def cross_validate(
    records: pd.DataFrame,
    settings: Settings,
    models: tuple[str, ...] = MODEL_NAMES,
    progress: Callable[[str], None] | None = None,
    ranges: bool = False,
    pool: Executor | None = None,
    backtest: bool = False,
    fitter: Fitter | None = None,
) -> EvaluationReport:
    """Score every model on the same grouped folds, per source and overall.

    With ``ranges``, the calibrated ranges are evaluated in the same pass
    (``report.ranges``, see :func:`evaluate_ranges`). With ``backtest``, the
    rolling out-of-time backtest (``salarymodel.evaluation.backtest``) runs in the same
    pass too, for the fused model and the baselines in ``models`` (and the
    ranges, with ``ranges``): ``report.backtest``. The fits run as jobs on
    ``pool`` (a caller's, which may hold its own jobs too), else on a pool
    of ``settings.evaluation.workers`` threads; or where ``fitter`` fits
    (a Dask cluster: ``distributed.DaskFitter``). Whichever fits, the folds,
    the assembly of the estimates and every table below are this code.
    """
    fitter = fitter or LocalFitter(settings, pool)
    models = fitter.models(models, progress)
    records = with_role_family(records.reset_index(drop=True), settings)
    folds = assign_folds(records, settings.evaluation.n_folds, settings.evaluation.seed)
    time_folds = backtest_folds(records, settings.evaluation.backtest) if backtest else []
    time_models = backtest_models(models)
    results = fitter.run_splits(records, folds, time_folds, models, time_models, ranges, progress)
    pooled = _pool_cv(results, folds, models, ranges)
    oof = pooled.oof
    salary = records["salary_usd"].to_numpy(float)
    report = EvaluationReport(
        cv_table(records, oof), oof, folds, salary, records["source"].to_numpy(), pooled.seconds
    )
    report.group_ids = records["group_id"].to_numpy()
    if time_folds:
        report.backtest = backtest_report(records, time_folds, time_models, results, settings)
        report.seconds["backtest"] = sum(
            r.seconds for (n, _), r in results.items() if n.startswith(BACKTEST_PREFIX)
        )
    if ranges:
        report.ranges = ranges_table(pooled.cv_rows, report.backtest)
        report.range_seconds = pooled.range_seconds
        report.cv_rows = row_keys(records).assign(fold=folds, salary_usd=salary, **pooled.band)
    return report


@dataclass
class _PooledFolds:
    """The CV folds' results put together: out-of-fold estimates per model, their
    seconds, the fused model's per-row ranges and range rows, the ranges' seconds."""

    oof: dict[str, np.ndarray]
    seconds: dict[str, float]
    band: dict[str, np.ndarray]
    cv_rows: list[dict[str, object]] = field(default_factory=list)
    range_seconds: float = 0.0


def _pool_cv(
    results: Splits, folds: np.ndarray, models: tuple[str, ...], ranges: bool
) -> _PooledFolds:
    """Each CV fold's results in its test rows (backtest results add only their range seconds)."""
    n = len(folds)
    sides = ("estimate_usd", "low_usd", "high_usd")
    pooled = _PooledFolds(
        oof={name: np.full(n, np.nan) for name in models},
        seconds=dict.fromkeys(models, 0.0),
        band={side: np.full(n, np.nan) for side in sides},
    )
    oof, seconds, band = pooled.oof, pooled.seconds, pooled.band
    for (name, fold), result in results.items():
        if name.startswith(BACKTEST_PREFIX):
            pooled.range_seconds += result.range_seconds
            continue
        test_mask = folds == fold
        for model_name, estimates in result.estimates.items():
            if model_name in oof:
                oof[model_name][test_mask] = estimates
                seconds[model_name] += result.seconds
        if name == FUSED_MODEL and ranges:
            if result.bands is not None:
                low, high = result.bands.bands["calibrated"]
                band["estimate_usd"][test_mask] = result.bands.point
                band["low_usd"][test_mask], band["high_usd"][test_mask] = low, high
            pooled.cv_rows += result.range_rows
            pooled.range_seconds += result.range_seconds
            if name not in models:  # its point model was fit for the ranges only
                pooled.range_seconds += result.seconds
    return pooled


# Single-source models would add a fit per fold and tell nothing the raw
# baseline does not: the backtest compares the product with the baselines.
BACKTEST_MODELS = (FUSED_MODEL, RAW_MODEL, GROUP_MEDIAN_MODEL, GLOBAL_MEDIAN_MODEL)


def backtest_models(models: tuple[str, ...]) -> list[str]:
    """The models the backtest scores: the product, and the baselines of ``models`` it runs."""
    return [FUSED_MODEL, *(m for m in BACKTEST_MODELS[1:] if m in models)]


def backtest_report(
    records: pd.DataFrame,
    folds: list[BacktestFold],
    models: list[str],
    results: dict[tuple[str, int], JobResult],
    settings: Settings,
) -> BacktestReport:
    """Per-fold and pooled metrics, drift-corrected ranges and per-row estimates of the
    backtest jobs' ``results`` (keys ``BACKTEST_PREFIX + model``, fold index)."""
    estimates: dict[tuple[str, int], np.ndarray] = {}
    fold_bands: dict[int, SplitBands] = {}
    for (name, index), result in results.items():
        if not name.startswith(BACKTEST_PREFIX):
            continue
        model = name.removeprefix(BACKTEST_PREFIX)
        estimates[(model, index)] = result.estimates[model]
        if result.bands is not None:
            fold_bands[index] = result.bands
    report = assemble(records, folds, estimates, models, [])
    if fold_bands:
        coverage = settings.ranges.coverage
        ordered = [fold_bands[i] for i in range(len(folds))]
        from salarymodel.core.ranges import salary_bounds

        bounds = salary_bounds(settings)
        corrected, report.drift = drift_corrected(
            folds, ordered, coverage, bounds, settings.ranges.max_factor
        )
        rows = []
        for fold, bands in zip(folds, corrected, strict=True):
            rows += range_rows(fold.name, bands, coverage)
        report.ranges = pool_range_rows(rows)
        # Each backtest record's served-like range (stretched as the folds
        # before it measured), in the estimates' order (fold by fold).
        low, high = (np.concatenate(side) for side in zip(
            *(b.bands["calibrated"] for b in corrected), strict=True))  # fmt: skip
        report.estimates = report.estimates.assign(low_usd=low, high_usd=high)
    return report


def evaluate_ranges(
    records: pd.DataFrame,
    settings: Settings,
    report: EvaluationReport | None = None,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Coverage and mean width (USD) of calibrated ranges vs constant bands.

    On the grouped CV folds, centred on the fused model's out-of-fold
    estimates, and on a time-ordered split. A ``report`` whose pass already
    evaluated them (``cross_validate(..., ranges=True)``) has the table.
    """
    if report is not None and report.ranges is not None:
        return report.ranges
    return cross_validate(records, settings, models=(), progress=progress, ranges=True).ranges
