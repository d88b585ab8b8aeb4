"""Where a pass's fits run: the Fitter protocol and the local fitter's jobs on a thread pool.

``LocalFitter`` runs each (model, split) as a job on this machine's pool;
``salarymodel.training.distributed.DaskFitter`` fits the same splits on a Dask cluster.
The folds, the assembly of the estimates and the tables are ``evaluation.cv``'s.
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
from salarymodel.evaluation.backtest import (
    BacktestFold,
)
from salarymodel.evaluation.baselines import PREDICTORS, fold_features, fused_lightgbm
from salarymodel.evaluation.range_eval import SplitBands, range_bands, range_rows
from salarymodel.evaluation.workers import for_workers, worker_pool
from salarymodel.vocabulary import FUSED_MODEL, RAW_MODEL, SINGLE_SOURCE_MODEL

# ----- the rolling out-of-time backtest ---------------------------------------------
BACKTEST_PREFIX = "backtest:"


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
_JOB_ORDER = (FUSED_MODEL, SINGLE_SOURCE_MODEL, RAW_MODEL)


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
