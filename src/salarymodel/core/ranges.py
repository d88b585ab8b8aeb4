"""Calibrated salary ranges: an 80% range that really covers 80%.

Method: conformal prediction with a locally adaptive scale (normalised
conformal regression), the scale coming from LightGBM quantile models:
1. Two LightGBM quantile boosters (low and high quantile of log salary) are
   fit on a grouped share of the training data (the proper training set);
   half the distance between them, in USD, is the job's spread. The scale
   is that spread plus ``spread_blend`` times the source's median spread: a
   pure spread over-reacts where the quantile models are noisy, a constant
   scale ignores that some jobs are much harder to price than others; the
   blend is configured (``ranges.spread_blend`` in configs/salarymodel.yaml,
   beside the backtest figures that chose it).
2. A point model fit on the same proper set estimates the held-out
   calibration groups. Each calibration record's score is its absolute error
   divided by its scale; the correction Q is the finite-sample quantile of
   these scores at the target coverage. The range is estimate ± Q · scale.
3. Calibration is Mondrian: one Q per (source, thin support) cell, so survey
   and postings ranges each hold their stated share, and jobs with thin
   support get a Q computed on thin-support records only. With
   ``country_levels.calibrate_ranges`` each (source, support) cell is also
   split by pay-level group (``salarymodel.core.country_levels``: the US, and
   countries by their level's share of the US level), so lower-paid
   countries' ranges hold their share too. Cells with too few calibration
   records fall back: (source, support, group), (source, group),
   (source, support), the source, then all records. The answer names the
   cell it used and its record count (``RangeModel.basis``).
Measured on this data (see ``evaluate_ranges``) it was chosen over plain
CQR on log-quantiles (equally honest per salary tier but about 6% wider), a
pure spread scale (honest per pay tier, wider) and a constant ±k band (which
covers 92% of the lowest-paid fifth of jobs and 63% of the highest-paid).
Ranges never cross: low <= estimate <= high by construction.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np

from salarymodel.config import CountryLevelsConfig, RangesConfig, Settings
from salarymodel.core.country_levels import CountryLevels
from salarymodel.core.features import FeatureBuilder
from salarymodel.core.periods import record_months
from salarymodel.core.row_spec import AT
from salarymodel.vocabulary import EXPERIENCE_ORDER

if TYPE_CHECKING:
    import pandas as pd

PointFitter = Callable[[np.ndarray, np.ndarray], np.ndarray]
LOW_FILE = "booster_low.txt"
HIGH_FILE = "booster_high.txt"
RANGES_FILE = "ranges.json"
# 2: log-space ranges, each tail calibrated on its own, salary bounds.
RANGES_FORMAT = 2
ANY = "*"
_LEVEL_NAMES = {float(v): k for k, v in EXPERIENCE_ORDER.items()}


def quantile_levels(coverage: float) -> tuple[float, float]:
    """The low and high quantiles whose interval has the given central coverage."""
    return (1 - coverage) / 2, (1 + coverage) / 2


def support_keys(builder: FeatureBuilder, matrix: np.ndarray, countries: list) -> list[str]:
    """ "Role family|experience level|country" of each encoded job.

    Built once per distinct (family code, level code, country): a batch or a
    training table has a few hundred of them.
    """
    families = matrix[:, AT["role_family"]].tolist()
    levels = matrix[:, AT["experience_level"]].tolist()
    known: dict[tuple, str] = {}
    keys = []
    for key in zip(families, levels, countries, strict=True):
        text = known.get(key)
        if text is None:
            family, level, country = key
            iso2 = country if isinstance(country, str) and country else "?"
            text = known[key] = (
                f"{builder.role_families[int(family)]}|{_LEVEL_NAMES.get(level, '?')}|{iso2}"
            )
        keys.append(text)
    return keys


def support_table(builder: FeatureBuilder, matrix: np.ndarray, countries: list) -> dict[str, int]:
    """How many training records share each role family, experience level and country."""
    return dict(Counter(support_keys(builder, matrix, countries)).most_common())


def support_counts(
    support: dict[str, int], builder: FeatureBuilder, matrix: np.ndarray, countries: list
) -> np.ndarray:
    """For each encoded job, how many training records share its ``support`` key."""
    keys = support_keys(builder, matrix, countries)
    return np.fromiter((support.get(k, 0) for k in keys), dtype=np.int64, count=len(keys))


def source_names(builder: FeatureBuilder, matrix: np.ndarray) -> np.ndarray:
    """Each encoded row's source (pay view) name, ``ANY`` where it is missing."""
    names = np.array([*builder.sources, ANY], dtype=object)
    codes = matrix[:, AT["source"]]
    return names[np.where(np.isnan(codes), len(builder.sources), np.nan_to_num(codes)).astype(int)]


def cell_key(source: str, thin: bool | None, group: str | None = None) -> str:
    """A calibration cell's key: "source|support" or "source|support|pay group"."""
    key = f"{source}|{ANY if thin is None else ('thin' if thin else 'ok')}"
    return key if group is None else f"{key}|{group}"


def cell_chain(source: str, thin: bool, group: str | None) -> list[str]:
    """A job's calibration cells, most specific first (the fallback order)."""
    chain = [cell_key(source, thin), cell_key(source, None), cell_key(ANY, None)]
    if group is None:
        return chain
    return [cell_key(source, thin, group), cell_key(source, None, group), *chain]


def cell_label(key: str) -> str:
    """A calibration cell in words: "survey, 35-60% of US pay, enough support"."""
    source, support, *group = key.split("|")
    words = ["all sources" if source == ANY else source]
    if group:
        words.append("US" if group[0] == "US" else f"{group[0]} of US pay")
    words.append({"thin": "thin support", "ok": "enough support"}.get(support, "any support"))
    return ", ".join(words)


def log_spread(low_log: np.ndarray, high_log: np.ndarray) -> np.ndarray:
    """Half the quantile range in log units (the job's local scale), at least 0.01."""
    return np.maximum(np.abs(high_log - low_log) / 2, 0.01)


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
    groups = records["group_id"].to_numpy()
    return np.isin(groups, groups[mask])


def recency_weights(records: pd.DataFrame, half_life_months: float | None) -> np.ndarray | None:
    """Weights halving every ``half_life_months`` back from each source's latest record."""
    if half_life_months is None:
        return None
    _, end = record_months(records)
    sources = records["source"].to_numpy()
    age = np.zeros(len(records))
    for source in np.unique(sources):
        in_source = sources == source
        age[in_source] = np.nanmax(end[in_source]) - end[in_source]
    return 0.5 ** (np.nan_to_num(age) / half_life_months)


@dataclass
class RangeModel:
    """Quantile boosters, each tail's conformal corrections and the support table.

    A range is built in log space: low = estimate x exp(-Q_low x scale) and
    high = estimate x exp(Q_high x scale), so it stays positive and in
    proportion; then held within the configured salary bounds.
    """

    coverage: float
    low: Any  # lightgbm.Booster, or a NativeBooster when served
    high: Any
    offsets_low: dict[str, float]
    offsets_high: dict[str, float]
    support: dict[str, int]
    thin_below: int
    # Per source (and "*"): the constant part of the scale, in log units.
    spread_floor: dict[str, float] = field(default_factory=dict)
    salary_floor: float = 0.0
    salary_ceiling: float = math.inf
    # A range stays within estimate / max_factor .. estimate x max_factor.
    max_factor: float = math.inf
    # Per source: each tail's stretch one period ahead, measured by the
    # rolling backtest (``backtest.drift_corrected``); 1.0 where unmeasured.
    drift: dict[str, dict[str, float]] = field(default_factory=dict)
    # Calibration records of each calibrated cell (the basis an answer names).
    cell_records: dict[str, int] = field(default_factory=dict)
    # The model's country levels: each job's pay-level group (not stored in
    # ranges.json; the bundle stores them once, ``SalaryModel`` attaches them).
    levels: CountryLevels | None = None

    def floor_of(self, source: str) -> float:
        return self.spread_floor.get(source, self.spread_floor.get(ANY, 0.0))

    @staticmethod
    def cell(offsets: dict[str, float], source: str, thin: bool, group: str | None = None) -> str:
        """The key of the most specific calibrated cell of a job."""
        for key in cell_chain(source, thin, group):
            if key in offsets:
                return key
        raise KeyError("range model has no global offset")

    @staticmethod
    def offset(
        offsets: dict[str, float], source: str, thin: bool, group: str | None = None
    ) -> float:
        """The correction of the most specific calibrated cell of a job."""
        return offsets[RangeModel.cell(offsets, source, thin, group)]

    def pay_groups(self, builder: FeatureBuilder, matrix: np.ndarray) -> np.ndarray:
        """Each row's pay-level group, or None everywhere without country levels."""
        if self.levels is None:
            return np.full(len(matrix), None, dtype=object)
        return self.levels.groups(builder, matrix)

    def basis(
        self, builder: FeatureBuilder, matrix: np.ndarray, support: np.ndarray
    ) -> list[tuple[str, int]]:
        """Per row, the calibration cell its range rests on (in words) and its record count."""
        sources = source_names(builder, matrix)
        groups = self.pay_groups(builder, matrix)
        thin = support < self.thin_below
        out = []
        rows = zip(sources.tolist(), thin.tolist(), groups.tolist(), strict=True)
        for source, flag, group in rows:
            key = self.cell(self.offsets_low, source, flag, group)
            out.append((cell_label(key), self.cell_records.get(key, 0)))
        return out

    def bounds(
        self,
        builder: FeatureBuilder,
        matrix: np.ndarray,
        point_usd: np.ndarray,
        countries: list,
        num_threads: int = 0,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(low USD, high USD, support) for encoded jobs and their point estimates.

        ``num_threads``: as for ``SalaryModel.predict_log`` (one value per process).
        """
        threads = num_threads
        sources = source_names(builder, matrix)
        support = support_counts(self.support, builder, matrix, countries)
        thin = support < self.thin_below
        groups = self.pay_groups(builder, matrix)
        floor = np.zeros(len(matrix))
        below, above = np.zeros(len(matrix)), np.zeros(len(matrix))
        # Per (source, thin, group) cell, not per row: a 10,000-job batch has a handful.
        for source in set(sources.tolist()):
            in_source = sources == source
            floor[in_source] = self.floor_of(source)
            stretch = self.drift.get(source, {})
            for flag in (True, False):
                for group in set(groups[in_source & (thin == flag)].tolist()):
                    in_cell = in_source & (thin == flag) & (groups == group)
                    low_offset = self.offset(self.offsets_low, source, flag, group)
                    high_offset = self.offset(self.offsets_high, source, flag, group)
                    below[in_cell] = low_offset * stretch.get("low", 1.0)
                    above[in_cell] = high_offset * stretch.get("high", 1.0)
        scale = (
            log_spread(
                self.low.predict(matrix, num_threads=threads),
                self.high.predict(matrix, num_threads=threads),
            )
            + floor
        )
        # A negative correction would put a bound on the wrong side of the
        # estimate: low <= estimate <= high always holds.
        low = point_usd * np.exp(-np.maximum(below, 0.0) * scale)
        high = point_usd * np.exp(np.maximum(above, 0.0) * scale)
        low = np.minimum(np.maximum(low, self.salary_floor), point_usd)
        # Believable where the quantile boosters extrapolate (an unseen
        # country, a rare role): never beyond max_factor either side.
        low = np.maximum(low, point_usd / self.max_factor)
        high = np.minimum(high, point_usd * self.max_factor)
        high = np.maximum(np.minimum(high, self.salary_ceiling), point_usd)
        return low, high, support

    # ----- storage --------------------------------------------------------
    def save(self, folder: Path) -> None:
        self.low.save_model(str(folder / LOW_FILE))
        self.high.save_model(str(folder / HIGH_FILE))
        payload = {
            "format": RANGES_FORMAT,
            "coverage": self.coverage,
            "offsets_low": self.offsets_low,
            "offsets_high": self.offsets_high,
            "support": self.support,
            "thin_below": self.thin_below,
            "spread_floor": self.spread_floor,
            "salary_floor": self.salary_floor,
            "salary_ceiling": self.salary_ceiling if math.isfinite(self.salary_ceiling) else None,
            "max_factor": self.max_factor if math.isfinite(self.max_factor) else None,
            "drift": self.drift,
            "cell_records": self.cell_records,
        }
        (folder / RANGES_FILE).write_text(json.dumps(payload))

    @classmethod
    def load(cls, folder: Path, read_booster: Callable[[Path], Any]) -> RangeModel:
        """Read what :meth:`save` wrote; ``read_booster`` reads each LightGBM file."""
        payload = json.loads((folder / RANGES_FILE).read_text())
        if payload.get("format") != RANGES_FORMAT:
            raise ValueError(
                f"{folder / RANGES_FILE} holds ranges of an older salarymodel (symmetric, in "
                "USD): retrain (`salarymodel train`) to make ranges this version can serve"
            )
        ceiling = payload.get("salary_ceiling")
        return cls(
            coverage=float(payload["coverage"]),
            low=read_booster(folder / LOW_FILE),
            high=read_booster(folder / HIGH_FILE),
            offsets_low={k: float(v) for k, v in payload["offsets_low"].items()},
            offsets_high={k: float(v) for k, v in payload["offsets_high"].items()},
            support={k: int(v) for k, v in payload["support"].items()},
            thin_below=int(payload["thin_below"]),
            spread_floor={k: float(v) for k, v in payload["spread_floor"].items()},
            salary_floor=float(payload.get("salary_floor", 0.0)),
            salary_ceiling=math.inf if ceiling is None else float(ceiling),
            max_factor=float(payload.get("max_factor") or math.inf),
            drift={
                source: {tail: float(v) for tail, v in stretch.items()}
                for source, stretch in payload.get("drift", {}).items()
            },
            cell_records={k: int(v) for k, v in payload.get("cell_records", {}).items()},
        )


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


def salary_bounds(settings: Settings) -> tuple[float, float]:
    """The plausible yearly salaries (USD) a range is held within: validation's bounds."""
    return settings.validation.salary_usd_min, settings.validation.salary_usd_max


def spread_floors(spread: np.ndarray, sources: np.ndarray, blend: float) -> dict[str, float]:
    """The constant part of the scale: ``blend`` x the median spread, per source and overall."""
    floors = {ANY: blend * float(np.median(spread))}
    for source in np.unique(sources):
        floors[str(source)] = blend * float(np.median(spread[sources == source]))
    return floors


def salary_percentile(
    salary_usd: float, estimate_usd: float, low_usd: float, high_usd: float, coverage: float
) -> float:
    """Approximate percentile (0-100) of a salary within a job's predicted distribution.

    A two-piece log-normal through the range: the estimate is the median, and
    each side's spread is set so that low and high sit at the range's
    quantiles. Monotone in the salary.
    """
    if salary_usd <= 0:
        raise ValueError("salary must be positive")
    z = NormalDist().inv_cdf((1 + coverage) / 2)
    x, mid = math.log(salary_usd), math.log(estimate_usd)
    side = (mid - math.log(low_usd)) if x <= mid else (math.log(high_usd) - mid)
    sigma = max(side / z, 1e-6)
    return 100.0 * NormalDist().cdf((x - mid) / sigma)
