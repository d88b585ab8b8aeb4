"""Training on a Dask cluster: the same run, registry, gate and bundle; lightgbm.dask fits.

``salarymodel train --dask tcp://host:port`` (or ``training.backend: dask``)
runs the training job of ``salarymodel.training.job`` with its fits here:

1. The client (this process) loads and validates the records as on one
   machine and learns each vocabulary (``FeatureBuilder.fit``) from the
   records a fit trains on, before any matrix is built.
2. The records, shuffled with the evaluation seed, are sent to the workers
   once, as partitions. The shuffle matters: LightGBM's data-parallel
   learner bins each feature on one worker's rows, so every worker must hold
   a sample of all of them, not one source or one year.
3. A fit builds its feature matrix per partition, on the worker holding it,
   with the same ``FeatureBuilder`` (``transform``) and only for its rows.
   The client never holds a feature matrix.
4. The point, proper-set and quantile boosters are fit with
   ``lightgbm.dask`` (``tree_learner=data``); each worker's LightGBM runs on
   its Dask threads.
5. Estimates (out-of-fold, calibration, backtest) are made on the workers
   by ``SalaryModel.estimate_records``, the code that runs on one machine;
   only vectors come back.

The fused model and the two median baselines are evaluated on the same
grouped folds and backtest folds as on one machine, ranges included; the
raw-column and single-source baselines (comparison rows, not the gate's)
run on one machine only. dask and distributed are imported here only, when
this backend is chosen.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future as LocalFuture
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from salarymodel.config.settings import Settings
from salarymodel.core.model import SalaryModel
from salarymodel.evaluation.baselines import PREDICTORS
from salarymodel.evaluation.fitters import BACKTEST_PREFIX, JobResult, Splits
from salarymodel.evaluation.range_eval import SplitBands, constant_bands, range_rows
from salarymodel.training.dask_cluster import ClusterRecords, scatter_records
from salarymodel.training.dask_fits import estimate_on_cluster, fit_on_cluster
from salarymodel.vocabulary import FUSED_MODEL, GLOBAL_MEDIAN_MODEL, GROUP_MEDIAN_MODEL

if TYPE_CHECKING:
    import pandas as pd
    from distributed import Client

    from salarymodel.evaluation.backtest import BacktestFold


Progress = Callable[[str], None]

# What a cluster run cross-validates: the product and the baselines that
# need no model of their own (computed on the client).
CLUSTER_MODELS = (FUSED_MODEL, GROUP_MEDIAN_MODEL, GLOBAL_MEDIAN_MODEL)

CLIENT_BASELINES = (GROUP_MEDIAN_MODEL, GLOBAL_MEDIAN_MODEL)


# ----- evaluation ------------------------------------------------------------------
def _evaluate_split(
    cluster: ClusterRecords,
    records: pd.DataFrame,
    train: np.ndarray,
    test: np.ndarray,
    settings: Settings,
    models: list[str],
    ranges: bool,
) -> JobResult:
    """Fit on ``train`` (masks over ``records``), estimate ``test``: fused model,
    client-side baselines and (with ``ranges``) the range methods' bands."""
    start = time.perf_counter()
    fit = fit_on_cluster(cluster, train, settings, ranges)
    estimates = estimate_on_cluster(cluster, fit.model, test)
    result = JobResult({FUSED_MODEL: estimates[0]}, time.perf_counter() - start)
    result.range_seconds = fit.seconds.get("ranges", 0.0)
    for name in (m for m in models if m in CLIENT_BASELINES):
        result.estimates[name] = PREDICTORS[name](records[train], records[test], settings)
    if ranges and fit.calib is not None and fit.point_calib is not None:
        test_records = records[test]
        sources = test_records["source"].to_numpy()
        bands = {"calibrated": (estimates[1], estimates[2])}
        bands |= constant_bands(
            estimates[0],
            sources,
            records["salary_usd"].to_numpy(float)[fit.calib],
            fit.point_calib,
            records["source"].to_numpy()[fit.calib],
            settings.ranges.coverage,
        )
        result.bands = SplitBands(
            test_records["salary_usd"].to_numpy(float), sources, estimates[0], bands
        )
    return result


def _per_model(result: JobResult, models: list[str], split: str, coverage: float) -> Splits:
    """One split's result as one result per model, as the local jobs give them.

    The fused model's carries the split's seconds, bands and (on a CV fold) range rows.
    """
    out = {}
    for name in models:
        done = JobResult({name: result.estimates[name]})
        if name == FUSED_MODEL:
            done.seconds, done.range_seconds = result.seconds, result.range_seconds
            done.bands = result.bands
            if split == "cv" and result.bands is not None:
                done.range_rows = range_rows(split, result.bands, coverage)
        out[(name, 0)] = done
    return out


class DaskFitter:
    """Fits on a Dask cluster with lightgbm.dask; the records are sent to the workers once
    per session. Only the I/O differs from ``evaluation.LocalFitter``: every table is made
    by ``evaluation.cross_validate`` and ``training.evaluate_and_fit``."""

    backend = "dask"

    def __init__(
        self, client: Client, settings: Settings, cluster: ClusterRecords | None = None
    ) -> None:
        self.client, self.settings, self.cluster = client, settings, cluster
        self.seconds: dict[str, float] = {}

    def models(self, models: tuple[str, ...], progress: Progress | None) -> tuple[str, ...]:
        """The models of ``CLUSTER_MODELS``; the others are named as left out."""
        left_out = [m for m in models if m not in CLUSTER_MODELS]
        if left_out and progress:
            progress(
                f"not cross-validated on the cluster (one machine only): {', '.join(left_out)}"
            )
        return tuple(m for m in models if m in CLUSTER_MODELS)

    @contextmanager
    def session(self, records: pd.DataFrame) -> Iterator[None]:
        """The records in shuffled partitions on the workers, cancelled at the end."""
        if self.cluster is not None:
            yield
            return
        start = time.perf_counter()
        self.cluster = scatter_records(self.client, records, self.settings)
        self.seconds["scatter"] = time.perf_counter() - start
        try:
            yield
        finally:
            self.client.cancel(self.cluster.parts)
            self.cluster = None

    def job_settings(self, settings: Settings) -> Settings:
        """As given: the workers' threads are their Dask threads."""
        return settings

    def submit(self, job: Callable[..., Any], *args: Any) -> LocalFuture:
        """Run ``job`` now, on the client (its fits go to the cluster)."""
        future: LocalFuture = LocalFuture()
        try:
            future.set_result(job(*args))
        except Exception as error:
            future.set_exception(error)
        return future

    def fit_model(self, records: pd.DataFrame, settings: Settings) -> SalaryModel:
        """Point model and ranges on every record the session sent (``records``)."""
        cluster = self._records()
        if len(records) != len(cluster.records):
            raise ValueError("the final model is fit on every record the session sent")
        everything = np.ones(len(cluster.records), bool)
        return fit_on_cluster(cluster, everything, settings, ranges=True).model

    def _records(self) -> ClusterRecords:
        if self.cluster is None:
            raise RuntimeError("DaskFitter needs an open session (the records on the workers)")
        return self.cluster

    def run_splits(
        self,
        records: pd.DataFrame,
        folds: np.ndarray,
        time_folds: list[BacktestFold],
        models: tuple[str, ...],
        time_models: list[str],
        ranges: bool,
        progress: Progress | None,
    ) -> Splits:
        """Each split fit on the cluster in turn (each fit uses every worker)."""
        say = progress or (lambda _: None)
        cluster, coverage = self._records(), self.settings.ranges.coverage
        names = list(models) if FUSED_MODEL in models or not ranges else [FUSED_MODEL, *models]
        results: Splits = {}
        n_folds = self.settings.evaluation.n_folds
        for fold in range(n_folds):
            say(f"cross-validation on the cluster: fold {fold + 1}/{n_folds}")
            test = folds == fold
            split = _evaluate_split(cluster, records, ~test, test, self.settings, names, ranges)
            for (name, _), done in _per_model(split, names, "cv", coverage).items():
                results[(name, fold)] = done
        for index, time_fold in enumerate(time_folds):
            say(f"backtest on the cluster: {time_fold.name} ({index + 1}/{len(time_folds)})")
            split = _evaluate_split(
                cluster,
                records,
                time_fold.train,
                time_fold.test,
                self.settings,
                time_models,
                ranges,
            )
            for (name, _), done in _per_model(split, time_models, time_fold.name, coverage).items():
                results[(BACKTEST_PREFIX + name, index)] = done
        return results
