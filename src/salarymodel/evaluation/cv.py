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

from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, as_completed
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from salarymodel.config.settings import Settings
from salarymodel.core.features import FeatureBuilder
from salarymodel.core.model import SalaryModel
from salarymodel.core.timing import Stopwatch
from salarymodel.data.role_family import with_role_family
from salarymodel.evaluation.backtest import (
    BacktestFold,
    BacktestReport,
    assemble,
    backtest_folds,
    drift_corrected,
    pool_range_rows,
)
from salarymodel.evaluation.baselines import PREDICTORS, fold_features, fused_lightgbm
from salarymodel.evaluation.folds import assign_folds
from salarymodel.evaluation.range_eval import SplitBands, range_bands, range_rows
from salarymodel.evaluation.report import EvaluationReport, cv_table, ranges_table, row_keys
from salarymodel.evaluation.workers import for_workers, worker_pool
from salarymodel.vocabulary import FUSED_MODEL, MODEL_NAMES


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
    oof = {name: np.full(len(records), np.nan) for name in models}
    seconds = dict.fromkeys(models, 0.0)
    cv_rows: list[dict[str, object]] = []
    band = {side: np.full(len(records), np.nan) for side in ("estimate_usd", "low_usd", "high_usd")}
    range_seconds = 0.0
    for (name, fold), result in results.items():
        if name.startswith(BACKTEST_PREFIX):
            range_seconds += result.range_seconds
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
            cv_rows += result.range_rows
            range_seconds += result.range_seconds
            if name not in models:  # its point model was fit for the ranges only
                range_seconds += result.seconds
    salary = records["salary_usd"].to_numpy(float)
    report = EvaluationReport(
        cv_table(records, oof), oof, folds, salary, records["source"].to_numpy(), seconds
    )
    report.group_ids = records["group_id"].to_numpy()
    if time_folds:
        report.backtest = backtest_report(records, time_folds, time_models, results, settings)
        report.seconds["backtest"] = sum(
            r.seconds for (n, _), r in results.items() if n.startswith(BACKTEST_PREFIX)
        )
    if ranges:
        report.ranges = ranges_table(cv_rows, report.backtest)
        report.range_seconds = range_seconds
        report.cv_rows = row_keys(records).assign(fold=folds, salary_usd=salary, **band)
    return report


# ----- the rolling out-of-time backtest ---------------------------------------------
BACKTEST_PREFIX = "backtest:"

# Single-source models would add a fit per fold and tell nothing the raw
# baseline does not: the backtest compares the product with the baselines.
BACKTEST_MODELS = (FUSED_MODEL, "raw_lightgbm", "group_median", "global_median")


def backtest_models(models: tuple[str, ...]) -> list[str]:
    """The models the backtest scores: the product, and the baselines of ``models`` it runs."""
    return [FUSED_MODEL, *(m for m in BACKTEST_MODELS[1:] if m in models)]


def _backtest_jobs(
    records: pd.DataFrame,
    folds: list[BacktestFold],
    settings: Settings,
    models: list[str],
    ranges: bool,
) -> dict[tuple[str, int], Job]:
    """One job per (model, backtest fold); the fused job also scores the ranges."""
    jobs: dict[tuple[str, int], Job] = {}
    for index, fold in enumerate(folds):
        train, test = records[fold.train], records[fold.test]
        for name in models:
            key = (BACKTEST_PREFIX + name, index)
            if name == FUSED_MODEL:
                jobs[key] = _job_fused(train, test, settings, ranges, split=fold.name)
            else:
                jobs[key] = _job_predictor(name, train, test, settings)
    return jobs


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


# ----- the pass's jobs ----------------------------------------------------------
@dataclass
class JobResult:
    """What one job measured: estimates per model for its test rows, range rows, seconds."""

    estimates: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: float = 0.0
    range_rows: list[dict[str, object]] = field(default_factory=list)
    range_seconds: float = 0.0
    # A backtest fold's bands: its rows are made once every fold is in (the
    # drift correction of a fold is learnt from the folds before it).
    bands: SplitBands | None = None


Job = Callable[[], JobResult]

Splits = dict[tuple[str, int], JobResult]


class Fitter(Protocol):
    """Where a pass's fits run: this machine's threads (``LocalFitter``) or a Dask cluster
    (``distributed.DaskFitter``). Cross-validation, the backtest and the final fit take one;
    what differs between the two is only where the records are and how a fit is run."""

    backend: str  # "local" or "dask", the run's ``training.backend`` tag
    seconds: dict[str, float]  # the fitter's own steps (sending the records, ...)

    def models(
        self, models: tuple[str, ...], progress: Callable[[str], None] | None
    ) -> tuple[str, ...]:
        """The models of ``models`` this fitter evaluates."""
        ...

    def session(self, records: pd.DataFrame) -> AbstractContextManager[None]:
        """Hold what the fits share (a pool of threads, records sent to workers)."""
        ...

    def job_settings(self, settings: Settings) -> Settings:
        """``settings`` as a job of this fitter runs with them (its LightGBM threads)."""
        ...

    def submit(self, job: Callable[..., Any], *args: Any) -> Future:
        """Run ``job(*args)`` next to the fits (a job of the pool), or now."""
        ...

    def fit_model(self, records: pd.DataFrame, settings: Settings) -> SalaryModel:
        """The point model and its calibrated ranges, fit on all of ``records``."""
        ...

    def run_splits(
        self,
        records: pd.DataFrame,
        folds: np.ndarray,
        time_folds: list[BacktestFold],
        models: tuple[str, ...],
        time_models: list[str],
        ranges: bool,
        progress: Callable[[str], None] | None,
    ) -> Splits:
        """Every (model, CV fold) and (``BACKTEST_PREFIX`` + model, backtest fold) result."""
        ...


class LocalFitter:
    """Fits on this machine: each (model, split) is a job on a pool of threads."""

    backend = "local"

    def __init__(self, settings: Settings, pool: Executor | None = None) -> None:
        self.settings = settings
        self.pool = pool
        self.seconds: dict[str, float] = {}

    def models(
        self, models: tuple[str, ...], progress: Callable[[str], None] | None
    ) -> tuple[str, ...]:
        """Every model: all of them fit on one machine."""
        return models

    @contextmanager
    def session(self, records: pd.DataFrame) -> Iterator[None]:
        """One pool of ``settings.evaluation.workers`` threads for every job of the pass."""
        if self.pool is not None:
            yield
            return
        with worker_pool(self.settings) as pool:
            self.pool = pool
            try:
                yield
            finally:
                self.pool = None

    def job_settings(self, settings: Settings) -> Settings:
        """A worker's share of the LightGBM threads (``workers.for_workers``)."""
        return for_workers(settings)

    def submit(self, job: Callable[..., Any], *args: Any) -> Future:
        """A job on the pool, next to the folds' fits."""
        if self.pool is None:
            raise RuntimeError("LocalFitter.submit needs an open session")
        return self.pool.submit(job, *args)

    def fit_model(self, records: pd.DataFrame, settings: Settings) -> SalaryModel:
        """Vocabulary, point model and calibrated ranges on ``records``, in this thread."""
        builder = FeatureBuilder.fit(records, settings.features)
        matrix = builder.transform(records)
        model = SalaryModel.fit(
            records, builder, settings.model, matrix, country_levels=settings.country_levels
        )
        model.fit_ranges(records, matrix, settings)
        return model

    def run_splits(
        self,
        records: pd.DataFrame,
        folds: np.ndarray,
        time_folds: list[BacktestFold],
        models: tuple[str, ...],
        time_models: list[str],
        ranges: bool,
        progress: Callable[[str], None] | None,
    ) -> Splits:
        """One job per (model, split) on the pool; frames cut before any job runs."""
        shared = for_workers(self.settings)
        jobs = _fold_jobs(records, folds, shared, models, ranges)
        jobs |= _backtest_jobs(records, time_folds, shared, time_models, ranges)
        pool = self.pool
        with nullcontext(pool) if pool is not None else worker_pool(self.settings) as executor:
            return _run_jobs(executor, jobs, progress)


# Longest jobs first, so that neither worker is left with a long one at the end.
_JOB_ORDER = (FUSED_MODEL, "single_source", "raw_lightgbm")


def _fold_jobs(
    records: pd.DataFrame,
    folds: np.ndarray,
    settings: Settings,
    models: tuple[str, ...],
    ranges: bool,
) -> dict[tuple[str, int], Job]:
    """One job per (model, fold).

    The fused model's job also evaluates the ranges on its fold (same
    features, its estimates as the ranges' centres); it runs whenever either
    is asked for. Frames are cut here, before any job runs, so that jobs
    only read their own rows.
    """
    jobs: dict[tuple[str, int], Job] = {}
    names = [n for n in models if n != FUSED_MODEL]
    if FUSED_MODEL in models or ranges:
        names.insert(0, FUSED_MODEL)
    for fold in range(settings.evaluation.n_folds):
        test_mask = folds == fold
        train, test = records[~test_mask], records[test_mask]
        for name in names:
            if name == FUSED_MODEL:
                jobs[(name, fold)] = _job_fused(train, test, settings, ranges)
            else:
                jobs[(name, fold)] = _job_predictor(name, train, test, settings)
    return jobs


def _job_predictor(name: str, train: pd.DataFrame, test: pd.DataFrame, settings: Settings) -> Job:
    def run() -> JobResult:
        clock = Stopwatch()
        estimates = PREDICTORS[name](train, test, settings)
        return JobResult({name: estimates}, clock.elapsed())

    return run


def _job_fused(
    train: pd.DataFrame, test: pd.DataFrame, settings: Settings, ranges: bool, split: str = "cv"
) -> Job:
    def run() -> JobResult:
        clock = Stopwatch()
        features = fold_features(train, test, settings)
        point = fused_lightgbm(train, test, settings, features)
        result = JobResult({FUSED_MODEL: point}, clock.elapsed())
        if ranges and split == "cv":
            clock = Stopwatch()
            # The bands are kept: each record's range goes into the per-row table.
            result.bands = range_bands(train, test, point, settings, features)
            result.range_rows = range_rows(split, result.bands, settings.ranges.coverage)
            result.range_seconds = clock.elapsed()
        elif ranges:
            clock = Stopwatch()
            result.bands = range_bands(train, test, point, settings, features)
            result.range_seconds = clock.elapsed()
        return result

    return run


def _run_jobs(
    executor: Executor, jobs: dict[tuple[str, int], Job], progress: Callable[[str], None] | None
) -> dict[tuple[str, int], JobResult]:
    """Run every job; results in the jobs' order, whichever finishes first.

    Progress is told from this thread as each job finishes.
    """
    rank = {name: i for i, name in enumerate(_JOB_ORDER)}

    def order(key: tuple[str, int]) -> tuple[int, int]:
        return rank.get(key[0].removeprefix(BACKTEST_PREFIX), 99), key[1]

    futures = {executor.submit(jobs[key]): key for key in sorted(jobs, key=order)}
    results: dict[tuple[str, int], JobResult] = {}
    try:
        for future in as_completed(futures):
            name, fold = futures[future]
            results[(name, fold)] = future.result()
            if progress:
                what = f"{name} fold {fold + 1}"
                progress(f"cross-validation: {len(results)}/{len(jobs)} jobs done ({what})")
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    return {key: results[key] for key in jobs}


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
