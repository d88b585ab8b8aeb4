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

This module holds the fitted ``RangeModel`` (bounds, support, the answer's basis),
the salary bounds and the percentile; the fitting and calibration steps above
are ``core.range_calibration``.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from salarymodel.config.settings import Settings
from salarymodel.core.country_levels import CountryLevels
from salarymodel.core.features import FeatureBuilder
from salarymodel.core.row_spec import AT
from salarymodel.vocabulary import EXPERIENCE_ORDER

LOW_FILE = "booster_low.txt"

HIGH_FILE = "booster_high.txt"

RANGES_FILE = "ranges.json"

# 2: log-space ranges, each tail calibrated on its own, salary bounds.
RANGES_FORMAT = 2

ANY = "*"

_LEVEL_NAMES = {float(v): k for k, v in EXPERIENCE_ORDER.items()}


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


def salary_bounds(settings: Settings) -> tuple[float, float]:
    """The plausible yearly salaries (USD) a range is held within: validation's bounds."""
    return settings.validation.salary_usd_min, settings.validation.salary_usd_max


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
