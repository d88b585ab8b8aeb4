"""The cluster's fits: lightgbm.dask boosters, calibrated ranges, estimates on workers.

Each booster's matrix and labels are built per partition, on the worker that holds it;
only vectors come back to the client (``salarymodel.training.distributed``).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from salarymodel.config.settings import Settings
from salarymodel.core.country_levels import CountryLevels, fit_levels
from salarymodel.core.features import FeatureBuilder
from salarymodel.core.model import SalaryModel, safe_name
from salarymodel.core.periods import recency_weights
from salarymodel.core.range_calibration import (
    calibrate_range_model,
    calibration_split,
    quantile_levels,
)
from salarymodel.core.ranges import log_spread, salary_bounds, support_keys
from salarymodel.training.dask_cluster import ClusterRecords

if TYPE_CHECKING:
    import pandas as pd
    from distributed import Client, Future


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
    weights: np.ndarray | None = None,
) -> Any:
    """A LightGBM booster fit by ``lightgbm.dask`` on the records of mask ``rows``.

    With ``levels``, each row starts from its country level (``init_score``),
    built on its worker like the matrix. ``weights`` (one per record of the
    cluster, recency) are sliced per partition on the client. Each partition's
    matrix and labels are built on its worker; LightGBM uses each worker's Dask
    threads (``num_threads`` in ``params`` would be ignored with a warning, so it
    is dropped here).
    """
    import dask
    import dask.array as da
    import lightgbm as lgb

    _quiet_lightgbm(lgb)
    width = len(builder.columns)
    # The builder and levels go to the workers once, by name: passed as they are, dask
    # walks and hashes them for every task (about 1.3 s of client CPU each, most of a
    # small fit's time) and pickles them into each.
    shared = dask.delayed(builder, name=f"features-{uuid.uuid4().hex}", traverse=False)
    offsets = (
        None
        if levels is None
        else dask.delayed(levels, name=f"levels-{uuid.uuid4().hex}", traverse=False)
    )
    matrices, labels, inits, sample_weights = [], [], [], []
    for part, positions, local in cluster.selected(rows):
        n = len(positions)
        if weights is not None:
            sample_weights.append(da.from_array(weights[positions], chunks=n))
        matrix = dask.delayed(_matrix, pure=True)(part, shared, local)
        matrices.append(da.from_delayed(matrix, shape=(n, width), dtype=float))
        label = dask.delayed(_log_salary, pure=True)(part, local)
        labels.append(da.from_delayed(label, shape=(n,), dtype=float))
        if levels is not None:
            init = dask.delayed(_init_score, pure=True)(part, shared, local, offsets)
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
        sample_weight=da.concatenate(sample_weights) if sample_weights else None,
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


def _sent_once(client: Client, value: Any) -> Future:
    """``value`` on every worker, pickled once; tasks take the future. (A model passed
    to each task is pickled into each and unpickled by each: seconds per call.)"""
    [future] = client.scatter([value], broadcast=True, hash=False)
    return future


def estimate_on_cluster(
    cluster: ClusterRecords, model: SalaryModel, rows: np.ndarray
) -> np.ndarray:
    """(estimate, low, high) USD of the records of mask ``rows``, in record order.

    One row (the estimate) when the model has no ranges.
    """
    client = cluster.client
    shared = _sent_once(client, model)
    jobs = [
        (positions, client.submit(_estimates, part, shared, local, pure=False))
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
    levels = fit_levels(train, settings.country_levels)
    point = _point_booster(cluster, builder, rows, settings, _as_offset(levels))
    fit = ClusterFit(SalaryModel(builder=builder, booster=point, levels=levels))
    fit.seconds["point"] = time.perf_counter() - start
    if not ranges:
        return fit
    start = time.perf_counter()
    _fit_ranges(cluster, fit, rows, settings)
    fit.seconds["ranges"] = time.perf_counter() - start
    return fit


def _point_booster(
    cluster: ClusterRecords,
    builder: FeatureBuilder,
    rows: np.ndarray,
    settings: Settings,
    levels: CountryLevels | None,
) -> Any:
    """A point booster on the records of ``rows``, starting from ``levels``."""
    names = [safe_name(c) for c in builder.columns]
    model_config = settings.model
    weights = None
    if settings.country_levels.recency_training:
        # As SalaryModel.fit weighs them: aged within these rows' own sources.
        half_life = settings.country_levels.recency_half_life_months
        weights = np.zeros(len(cluster.records))
        weights[rows] = recency_weights(cluster.records[rows], half_life)
    return fit_booster(
        cluster,
        builder,
        rows,
        dict(model_config.params),
        model_config.num_boost_round,
        names,
        levels,
        weights,
    )


def _fit_ranges(
    cluster: ClusterRecords, fit: ClusterFit, rows: np.ndarray, settings: Settings
) -> None:
    """``fit.model``'s calibrated ranges: quantile and proper-set point boosters fit on
    the proper set of ``rows``, calibrated on its calibration groups (kept on ``fit``)."""
    builder, levels = fit.model.builder, fit.model.levels
    config = settings.ranges
    calib = np.zeros(len(cluster.records), bool)
    train = cluster.records[rows]
    calib[np.flatnonzero(rows)[calibration_split(train, config, settings.evaluation.seed)]] = True
    proper = rows & ~calib
    offset = _as_offset(levels)
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
    proper_point = _point_booster(cluster, builder, proper, settings, proper_levels)
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
    shared_builder, shared_boosters = _sent_once(client, builder), _sent_once(client, boosters)
    jobs = []
    for part, positions, local in cluster.selected(rows):
        in_calib = calib[positions]
        calib_rows = np.flatnonzero(in_calib) if local is None else local[in_calib]
        job = client.submit(
            _calibration_part,
            part,
            shared_builder,
            shared_boosters,
            local,
            calib_rows,
            point_levels,
            pure=False,
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
