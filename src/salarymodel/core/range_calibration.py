"""Range calibration: quantile boosters, the calibration split and conformal corrections per cell.

``fit_range_model`` fits the two quantile boosters on a grouped proper
training share, scores the held-out calibration groups with a point model fit
on the same share, and ``calibrate_range_model`` turns their scaled errors
into each tail's correction per (source, support, pay-level group) cell, with
recency weights and the drift stretch. The method and why it was chosen:
``core.ranges``, which holds the fitted ``RangeModel``, the salary bounds and
the percentile.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from salarymodel.config.model import CountryLevelsConfig, RangesConfig
from salarymodel.core.country_levels import CountryLevels
from salarymodel.core.features import FeatureBuilder
from salarymodel.core.periods import recency_weights, record_months
from salarymodel.core.ranges import (
    ANY,
    RangeModel,
    cell_key,
    log_spread,
    support_counts,
    support_table,
)

if TYPE_CHECKING:
    import pandas as pd


PointFitter = Callable[[np.ndarray, np.ndarray], np.ndarray]


def quantile_levels(coverage: float) -> tuple[float, float]:
    """The low and high quantiles whose interval has the given central coverage."""
    return (1 - coverage) / 2, (1 + coverage) / 2


def tail_scores(
    salary_usd: np.ndarray, point_usd: np.ndarray, scale: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """How far below and above the estimate each salary is, in units of its scale (log)."""
    gap = (np.log(salary_usd) - np.log(point_usd)) / scale
    return -gap, gap


def finite_sample_quantile(values: np.ndarray, level: float, weights: np.ndarray | None) -> float:
    """The conformal quantile: the ceil((n + 1) level)-th smallest score.

    With ``weights`` (recency), the weighted quantile at the same corrected
    level, the effective sample size standing in for n.
    """
    n = len(values)
    if weights is None:
        corrected = min(1.0, math.ceil((n + 1) * level) / n)
        return float(np.quantile(values, corrected, method="higher"))
    n_eff = weights.sum() ** 2 / np.sum(weights**2)
    corrected = min(1.0, level * (n_eff + 1) / n_eff)
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order]) / weights.sum()
    return float(values[order][min(np.searchsorted(cumulative, corrected), n - 1)])


def calibration_cells(
    sources: np.ndarray, thin: np.ndarray, min_cell: int, groups: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Each calibration cell with at least ``min_cell`` records: key -> row mask.

    The global cell is always there (the last fallback); a smaller cell is
    refused, and its jobs fall back along ``cell_chain``.
    """
    cells = {cell_key(ANY, None): np.ones(len(sources), bool)}
    for source in np.unique(sources):
        in_source = sources == source
        candidates = {cell_key(source, None): in_source}
        for flag in (True, False):
            candidates[cell_key(source, flag)] = in_source & (thin == flag)
        for group in [] if groups is None else np.unique(groups[in_source]).tolist():
            in_group = in_source & (groups == group)
            candidates[cell_key(source, None, group)] = in_group
            for flag in (True, False):
                candidates[cell_key(source, flag, group)] = in_group & (thin == flag)
        cells |= {k: mask for k, mask in candidates.items() if mask.sum() >= min_cell}
    return cells


def conformal_offsets(
    scores: np.ndarray,
    sources: np.ndarray,
    thin: np.ndarray,
    level: float,
    min_cell: int,
    weights: np.ndarray | None = None,
    groups: np.ndarray | None = None,
) -> dict[str, float]:
    """One tail's conformal corrections per calibration cell (``calibration_cells``)."""
    return {
        key: finite_sample_quantile(scores[mask], level, None if weights is None else weights[mask])
        for key, mask in calibration_cells(sources, thin, min_cell, groups).items()
    }


def fit_quantile_boosters(
    matrix: np.ndarray,
    y_log: np.ndarray,
    builder: FeatureBuilder,
    config: RangesConfig,
    init_score: np.ndarray | None = None,
) -> tuple[Any, Any]:
    """LightGBM quantile boosters for the low and high ends of log salary.

    ``init_score``: the point model's starting level per row (the country
    levels), so the boosters learn quantiles of what the level leaves. Only
    their difference is used (the scale), where a shared start cancels: it
    need not be added back at prediction.
    """
    import lightgbm as lgb

    # One binned Dataset for both: only the quantile (a training parameter) differs.
    data = lgb.Dataset(
        matrix,
        label=y_log,
        init_score=init_score,
        categorical_feature=builder.categorical_indices,
        free_raw_data=False,
    )
    boosters = []
    for alpha in quantile_levels(config.coverage):
        params = {**config.params, "objective": "quantile", "alpha": alpha}
        boosters.append(lgb.train(params, data, num_boost_round=config.num_boost_round))
    return boosters[0], boosters[1]


def calibration_split(records: pd.DataFrame, config: RangesConfig, seed: int) -> np.ndarray:
    """Boolean mask of calibration records: whole groups, never split.

    ``random``: a random share of the groups. ``latest``: each source's
    latest period (its last year, or its last ``latest_months`` months),
    so the corrections measure how the models miss one period ahead, as
    they will once served.
    """
    if config.calibration == "latest":
        return latest_period_mask(records, config.latest_months)
    from sklearn.model_selection import GroupShuffleSplit

    splitter = GroupShuffleSplit(
        n_splits=1, test_size=config.calibration_fraction, random_state=seed
    )
    _, calib = next(splitter.split(records, groups=records["group_id"]))
    mask = np.zeros(len(records), bool)
    mask[calib] = True
    return mask


def latest_period_mask(records: pd.DataFrame, months: int) -> np.ndarray:
    """Each source's latest year (a source with years only) or latest ``months`` months.

    A group reaching into that period is in it whole.
    """
    start, _ = record_months(records)
    sources = records["source"].to_numpy()
    mask = np.zeros(len(records), bool)
    for source in np.unique(sources):
        in_source = sources == source
        latest = np.nanmax(start[in_source])
        by_year = bool(records.loc[in_source, "month"].isna().all())
        first = latest - latest % 12 if by_year else latest - months + 1
        mask |= in_source & (start >= first)
    groups = records["group_id"]
    return groups.isin(groups[mask]).to_numpy(bool)  # hashed: np.isin on objects is quadratic


def fit_range_model(
    records: pd.DataFrame,
    matrix: np.ndarray,
    builder: FeatureBuilder,
    config: RangesConfig,
    seed: int,
    point_model: PointFitter,
    salary_bounds: tuple[float, float] = (0.0, math.inf),
    levels: CountryLevels | None = None,
    level_config: CountryLevelsConfig | None = None,
) -> RangeModel:
    """Fit quantile boosters and a point model on the proper split; calibrate on the rest.

    ``point_model(proper_rows, calib_rows)`` fits the point model on the
    proper rows and returns its USD estimates for the calibration rows
    (injected to avoid a cycle with the model module). Each tail is
    calibrated on its own, to miss (1 - coverage) / 2 of the calibration
    salaries: out of time, salaries mostly escape above the range.
    ``levels`` (the model's country levels, fit on ``records``) and
    ``level_config``: with ``calibrate_ranges`` each tail is calibrated per
    pay-level group too; with ``quantile_start`` the quantile boosters start
    from the levels where they are the model's offset.
    """
    y_log = np.log(records["salary_usd"].to_numpy(float))
    calib = calibration_split(records, config, seed)
    start = levels is not None and level_config is not None and level_config.quantile_start
    init = levels.offset(builder, matrix[~calib]) if start and levels is not None else None
    low, high = fit_quantile_boosters(matrix[~calib], y_log[~calib], builder, config, init)
    point_calib = point_model(~calib, calib)
    countries = records["country"].tolist()
    support = support_table(builder, matrix, countries)
    calib_countries = np.array(countries, dtype=object)[calib].tolist()
    calib_support = support_counts(support, builder, matrix[calib], calib_countries)
    threads = int(config.params.get("num_threads", 0))
    spread = log_spread(
        low.predict(matrix[calib], num_threads=threads),
        high.predict(matrix[calib], num_threads=threads),
    )
    by_group = level_config is not None and level_config.calibrate_ranges
    groups = levels.groups(builder, matrix[calib]) if levels is not None and by_group else None
    model = calibrate_range_model(
        records[calib],
        point_calib,
        spread,
        calib_support,
        (low, high),
        support,
        config,
        salary_bounds,
        groups,
    )
    model.levels = levels
    return model


def calibrate_range_model(
    calib_records: pd.DataFrame,
    point_calib: np.ndarray,
    spread: np.ndarray,
    calib_support: np.ndarray,
    boosters: tuple[Any, Any],
    support: dict[str, int],
    config: RangesConfig,
    salary_bounds: tuple[float, float] = (0.0, math.inf),
    calib_groups: np.ndarray | None = None,
) -> RangeModel:
    """The range model from what its boosters say about the calibration records.

    ``point_calib`` (USD), ``spread`` (the quantile boosters' ``log_spread``)
    and ``calib_support`` are per calibration record; ``support`` is the
    table of all training records. Shared by the fit on one machine and on
    a Dask cluster (``salarymodel.training.distributed``), which computes these on
    its workers. ``calib_groups``: each calibration record's pay-level
    group, to calibrate per group too (None: per source and support only).
    """
    calib_sources = calib_records["source"].to_numpy()
    floors = spread_floors(spread, calib_sources, config.spread_blend)
    scale = spread + np.array([floors.get(s, floors[ANY]) for s in calib_sources])
    salary = calib_records["salary_usd"].to_numpy(float)
    below, above = tail_scores(salary, point_calib, scale)
    level = 1 - (1 - config.coverage) / 2
    thin = calib_support < config.thin_support_below
    weights = recency_weights(calib_records, config.recency_half_life_months)
    cells = (calib_sources, thin, level, config.min_calibration_cell, weights, calib_groups)
    counted = calibration_cells(calib_sources, thin, config.min_calibration_cell, calib_groups)
    return RangeModel(
        coverage=config.coverage,
        low=boosters[0],
        high=boosters[1],
        offsets_low=conformal_offsets(below, *cells),
        offsets_high=conformal_offsets(above, *cells),
        support=support,
        thin_below=config.thin_support_below,
        spread_floor=floors,
        salary_floor=salary_bounds[0],
        salary_ceiling=salary_bounds[1],
        max_factor=config.max_factor,
        cell_records={key: int(mask.sum()) for key, mask in counted.items()},
    )


def spread_floors(spread: np.ndarray, sources: np.ndarray, blend: float) -> dict[str, float]:
    """The constant part of the scale: ``blend`` x the median spread, per source and overall."""
    floors = {ANY: blend * float(np.median(spread))}
    for source in np.unique(sources):
        floors[str(source)] = blend * float(np.median(spread[sources == source]))
    return floors
