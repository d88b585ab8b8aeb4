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

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future as LocalFuture
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from salarymodel.config import CANONICAL_FIELDS, Settings
from salarymodel.core.country_levels import CountryLevels, fit_levels
from salarymodel.core.features import FeatureBuilder
from salarymodel.core.model import SalaryModel, safe_name
from salarymodel.core.range_calibration import (
    calibrate_range_model,
    calibration_split,
    quantile_levels,
)
from salarymodel.core.ranges import log_spread, salary_bounds, support_keys
from salarymodel.evaluation.baselines import PREDICTORS
from salarymodel.evaluation.cv import BACKTEST_PREFIX, JobResult, Splits
from salarymodel.evaluation.range_eval import SplitBands, constant_bands, range_rows

if TYPE_CHECKING:
    import pandas as pd
    from distributed import Client, Future

    from salarymodel.evaluation.backtest import BacktestFold

Progress = Callable[[str], None]
# What a cluster run cross-validates: the product and the baselines that
# need no model of their own (computed on the client).
CLUSTER_MODELS = ("fused_lightgbm", "group_median", "global_median")
CLIENT_BASELINES = ("group_median", "global_median")


class ClusterError(RuntimeError):
    """A Dask cluster that cannot be reached or cannot run salarymodel."""


def connect(address: str, timeout: float) -> Client:
    """A client of the scheduler at ``address`` whose workers run this salarymodel.

    Raises ``ClusterError`` naming the address when the scheduler does not
    answer within ``timeout`` seconds, has no worker, or a worker runs
    another version of the package.
    """
    from distributed import Client

    try:
        client = Client(address, timeout=f"{timeout}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as error:
        raise ClusterError(
            f"cannot reach the Dask scheduler at {address} within {timeout:g} s: {error}"
        ) from error
    try:
        client.wait_for_workers(1, timeout=timeout)
        check_workers(client, address)
    except TimeoutError as error:
        client.close()
        raise ClusterError(
            f"the Dask scheduler at {address} has no worker (waited {timeout:g} s)"
        ) from error
    except BaseException:
        client.close()
        raise
    return client


def check_workers(client: Client, address: str) -> None:
    """Every worker must import this version of salarymodel (it runs our code)."""
    import salarymodel

    try:
        versions = client.run(_package_version)
    except Exception as error:
        raise ClusterError(
            f"the workers of {address} cannot run salarymodel: {type(error).__name__}: {error}"
        ) from error
    wrong = {w: v for w, v in versions.items() if v != salarymodel.__version__}
    if wrong:
        raise ClusterError(
            f"workers of {address} run another salarymodel ({wrong}); "
            f"this client runs {salarymodel.__version__}"
        )


def _package_version() -> str:
    import salarymodel

    return salarymodel.__version__


# ----- the records, partitioned on the workers ---------------------------------------
@dataclass
class ClusterRecords:
    """Training records on the client and, in shuffled partitions, on the workers."""

    client: Client
    records: pd.DataFrame  # positional index, the order of every mask
    positions: list[np.ndarray]  # each partition's record positions, ascending
    parts: list[Future]

    def selected(self, mask: np.ndarray) -> Iterator[tuple[Future, np.ndarray, np.ndarray | None]]:
        """Per partition holding some of ``mask``: (partition, record positions, rows in it).

        The rows are positions within the partition, None when it is all of them.
        """
        for part, positions in zip(self.parts, self.positions, strict=True):
            picked = mask[positions]
            if picked.all():
                yield part, positions, None
            elif picked.any():
                rows = np.flatnonzero(picked)
                yield part, positions[rows], rows


def scatter_records(client: Client, records: pd.DataFrame, settings: Settings) -> ClusterRecords:
    """Send shuffled partitions of the records' canonical columns to the workers, evenly."""
    records = records.reset_index(drop=True)
    workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    n_parts = max(1, min(len(records), len(workers) * settings.training.dask_partitions_per_worker))
    order = np.random.RandomState(settings.evaluation.seed).permutation(len(records))
    positions = [np.sort(chunk) for chunk in np.array_split(order, n_parts)]
    columns = [c for c in CANONICAL_FIELDS if c in records.columns]
    parts = [
        client.scatter(records.iloc[chunk][columns], workers=[workers[i % len(workers)]])
        for i, chunk in enumerate(positions)
    ]
    return ClusterRecords(client, records, positions, parts)


# ----- work done on a worker -----------------------------------------------------------
def _rows(part: pd.DataFrame, rows: np.ndarray | None) -> pd.DataFrame:
    return part if rows is None else part.iloc[rows]


def _matrix(part: pd.DataFrame, builder: FeatureBuilder, rows: np.ndarray | None) -> np.ndarray:
    return builder.transform(_rows(part, rows))


def _log_salary(part: pd.DataFrame, rows: np.ndarray | None) -> np.ndarray:
    return np.log(_rows(part, rows)["salary_usd"].to_numpy(float))


def _init_score(
    part: pd.DataFrame, builder: FeatureBuilder, rows: np.ndarray | None, levels: CountryLevels
) -> np.ndarray:
    """A partition's starting scores: each row's country level (``SalaryModel.fit``'s)."""
    return levels.offset(builder, _matrix(part, builder, rows))


@contextmanager
def _worker_threads() -> Iterator[int]:
    """This worker's Dask threads, and OpenMP held to them (LightGBM's predictions)."""
    from distributed import get_worker
    from threadpoolctl import threadpool_limits

    threads = get_worker().state.nthreads
    with threadpool_limits(limits=threads, user_api="openmp"):
        yield threads


def _estimates(part: pd.DataFrame, model: SalaryModel, rows: np.ndarray | None) -> np.ndarray:
    """(estimate, low, high) USD of a partition's rows, as ``estimate_records`` makes them."""
    with _worker_threads():
        frame = model.estimate_records(_rows(part, rows))
    columns = ["estimate_usd", "low_usd", "high_usd"] if model.ranges else ["estimate_usd"]
    return frame[columns].to_numpy(float).T


def _calibration_part(
    part: pd.DataFrame,
    builder: FeatureBuilder,
    boosters: tuple[Any, ...],
    train_rows: np.ndarray | None,
    calib_rows: np.ndarray,
    point_levels: CountryLevels | None = None,
) -> tuple[Counter[str], np.ndarray, list[str]]:
    """A partition's support counts (training rows), the boosters' log predictions and
    the support keys of its calibration rows (positions within the partition).

    ``point_levels``: the first booster's country levels, added to its output
    as ``SalaryModel.predict_log`` adds them."""
    train = _rows(part, train_rows)
    matrix = builder.transform(train)
    keys = support_keys(builder, matrix, train["country"].tolist())
    inner = calib_rows if train_rows is None else np.searchsorted(train_rows, calib_rows)
    with _worker_threads() as threads:
        predictions = np.vstack([b.predict(matrix[inner], num_threads=threads) for b in boosters])
    if point_levels is not None:
        predictions[0] += point_levels.offset(builder, matrix[inner])
    return Counter(keys), predictions, [keys[i] for i in inner]


# ----- fits ----------------------------------------------------------------------
def fit_booster(
    cluster: ClusterRecords,
    builder: FeatureBuilder,
    rows: np.ndarray,
    params: dict[str, Any],
    rounds: int,
    feature_names: list[str] | None = None,
    levels: CountryLevels | None = None,
) -> Any:
    """A LightGBM booster fit by ``lightgbm.dask`` on the records of mask ``rows``.

    With ``levels``, each row starts from its country level (``init_score``),
    built on its worker like the matrix. Each partition's matrix and labels
    are built on its worker; LightGBM
    uses each worker's Dask threads (``num_threads`` in ``params`` would be
    ignored with a warning, so it is dropped here).
    """
    import dask
    import dask.array as da
    import lightgbm as lgb

    _quiet_lightgbm(lgb)
    width = len(builder.columns)
    matrices, labels, inits = [], [], []
    for part, positions, local in cluster.selected(rows):
        n = len(positions)
        matrix = dask.delayed(_matrix, pure=True)(part, builder, local)
        matrices.append(da.from_delayed(matrix, shape=(n, width), dtype=float))
        label = dask.delayed(_log_salary, pure=True)(part, local)
        labels.append(da.from_delayed(label, shape=(n,), dtype=float))
        if levels is not None:
            init = dask.delayed(_init_score, pure=True)(part, builder, local, levels)
            inits.append(da.from_delayed(init, shape=(n,), dtype=float))
    fitted = lgb.DaskLGBMRegressor(
        client=cluster.client,
        n_estimators=rounds,
        **{k: v for k, v in params.items() if k != "num_threads"},
    )
    fitted.fit(
        da.concatenate(matrices),
        da.concatenate(labels),
        categorical_feature=builder.categorical_indices,
        feature_name=feature_names or "auto",
        init_score=da.concatenate(inits) if inits else None,
    )
    return fitted.booster_


class _DropIgnoredThreads(logging.Filter):
    # lightgbm.dask warns on every fit that the sklearn wrapper's n_jobs
    # (always among its parameters) is ignored: the worker's threads count.
    def filter(self, record: logging.LogRecord) -> bool:
        return "n_jobs will be ignored" not in record.getMessage()


def _quiet_lightgbm(lgb: Any) -> None:
    """LightGBM's Python messages through logging: its info lines ("Finding random
    open ports for workers") are otherwise printed on every fit."""
    logger = logging.getLogger("lightgbm")
    if not any(isinstance(f, _DropIgnoredThreads) for f in logger.filters):
        logger.addFilter(_DropIgnoredThreads())
        lgb.register_logger(logger)


def estimate_on_cluster(
    cluster: ClusterRecords, model: SalaryModel, rows: np.ndarray
) -> np.ndarray:
    """(estimate, low, high) USD of the records of mask ``rows``, in record order.

    One row (the estimate) when the model has no ranges.
    """
    client = cluster.client
    jobs = [
        (positions, client.submit(_estimates, part, model, local, pure=False))
        for part, positions, local in cluster.selected(rows)
    ]
    out = np.full((3 if model.ranges else 1, len(cluster.records)), np.nan)
    for positions, job in jobs:
        out[:, positions] = job.result()
    return out[:, rows]


def _as_offset(levels: CountryLevels | None) -> CountryLevels | None:
    """The levels a booster starts from: None when they are not the model's offset."""
    return levels if levels is not None and levels.as_offset else None


@dataclass
class ClusterFit:
    """A model fit on the cluster, with its calibration rows' point estimates (USD)."""

    model: SalaryModel
    calib: np.ndarray | None = None  # mask over all records
    point_calib: np.ndarray | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def fit_on_cluster(
    cluster: ClusterRecords, rows: np.ndarray, settings: Settings, ranges: bool
) -> ClusterFit:
    """The point model (and, with ``ranges``, its calibrated ranges) on the records of ``rows``.

    The same procedure as ``SalaryModel.fit`` and ``SalaryModel.fit_ranges``:
    vocabulary from these records, the calibration groups split off them the
    same way, each booster fit with lightgbm.dask.
    """
    start = time.perf_counter()
    train = cluster.records[rows]
    builder = FeatureBuilder.fit(train, settings.features)
    names = [safe_name(c) for c in builder.columns]
    model_config = settings.model
    levels = fit_levels(train, settings.country_levels)
    offset = _as_offset(levels)
    point = fit_booster(
        cluster,
        builder,
        rows,
        dict(model_config.params),
        model_config.num_boost_round,
        names,
        offset,
    )
    fit = ClusterFit(SalaryModel(builder=builder, booster=point, levels=levels))
    fit.seconds["point"] = time.perf_counter() - start
    if not ranges:
        return fit
    start = time.perf_counter()
    config = settings.ranges
    calib = np.zeros(len(cluster.records), bool)
    calib[np.flatnonzero(rows)[calibration_split(train, config, settings.evaluation.seed)]] = True
    proper = rows & ~calib
    quantiles = [
        fit_booster(
            cluster,
            builder,
            proper,
            {**config.params, "objective": "quantile", "alpha": alpha},
            config.num_boost_round,
            levels=offset if settings.country_levels.quantile_start else None,
        )
        for alpha in quantile_levels(config.coverage)
    ]
    # The proper-set point model's own levels, from its own rows (as on one machine).
    proper_levels = _as_offset(fit_levels(cluster.records[proper], settings.country_levels))
    proper_point = fit_booster(
        cluster,
        builder,
        proper,
        dict(model_config.params),
        model_config.num_boost_round,
        names,
        proper_levels,
    )
    support, predictions, calib_support = _calibration_pass(
        cluster, builder, (proper_point, *quantiles), rows, calib, proper_levels
    )
    groups = None
    if levels is not None and settings.country_levels.calibrate_ranges:
        groups = levels.groups(builder, builder.transform(cluster.records[calib]))
    fit.calib, fit.point_calib = calib, np.exp(predictions[0])
    fit.model.ranges = calibrate_range_model(
        cluster.records[calib],
        fit.point_calib,
        log_spread(predictions[1], predictions[2]),
        calib_support,
        (quantiles[0], quantiles[1]),
        support,
        config,
        salary_bounds(settings),
        groups,
    )
    fit.model.ranges.levels = levels
    fit.seconds["ranges"] = time.perf_counter() - start
    return fit


def _calibration_pass(
    cluster: ClusterRecords,
    builder: FeatureBuilder,
    boosters: tuple[Any, ...],
    rows: np.ndarray,
    calib: np.ndarray,
    point_levels: CountryLevels | None = None,
) -> tuple[dict[str, int], np.ndarray, np.ndarray]:
    """(support table of ``rows``, boosters' log predictions and support of ``calib`` rows)."""
    client = cluster.client
    jobs = []
    for part, positions, local in cluster.selected(rows):
        in_calib = calib[positions]
        calib_rows = np.flatnonzero(in_calib) if local is None else local[in_calib]
        job = client.submit(
            _calibration_part, part, builder, boosters, local, calib_rows, point_levels, pure=False
        )
        jobs.append((positions[in_calib], job))
    n = len(cluster.records)
    counts: Counter[str] = Counter()
    predictions = np.full((len(boosters), n), np.nan)
    keys = np.empty(n, dtype=object)
    for positions, job in jobs:
        part_counts, part_predictions, part_keys = job.result()
        counts.update(part_counts)
        predictions[:, positions] = part_predictions
        keys[positions] = part_keys
    support = dict(counts.most_common())
    calib_support = np.fromiter(
        (support.get(k, 0) for k in keys[calib]), dtype=np.int64, count=int(calib.sum())
    )
    return support, predictions[:, calib], calib_support


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
    result = JobResult({"fused_lightgbm": estimates[0]}, time.perf_counter() - start)
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
        if name == "fused_lightgbm":
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
        names = (
            list(models)
            if "fused_lightgbm" in models or not ranges
            else ["fused_lightgbm", *models]
        )
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


def cluster_address(settings: Settings, address: str | None) -> str | None:
    """The scheduler to train on: the command line's, else the config's when its
    backend is dask; None trains in this process."""
    if address:
        return address
    if settings.training.backend == "dask":
        return settings.training.dask_address
    return None
