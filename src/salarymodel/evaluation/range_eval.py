"""How honest the stated ranges are: coverage and width per split, model against constant bands."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from salarymodel.config.settings import Settings
from salarymodel.core.model import SalaryModel
from salarymodel.evaluation.baselines import FoldFeatures, fit_threads, fold_features
from salarymodel.vocabulary import ALL

if TYPE_CHECKING:
    from salarymodel.core.features import FeatureBuilder
    from salarymodel.core.ranges import RangeModel


# ----- calibrated ranges --------------------------------------------------------
def width_at_coverage(
    method: str,
    salary: np.ndarray,
    point: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    target: float,
) -> float:
    """Mean width after rescaling a band's scale so it covers exactly ``target`` of the data.

    For comparing methods at equal coverage only (it looks at the test salaries);
    served ranges are never rescaled this way. The USD band is rescaled in
    USD; the others in log units, each side keeping its own half-width.
    """
    if method == "constant_usd":
        half = high - point
        factor = np.quantile(np.abs(salary - point) / half, target)
        return float(np.mean(2 * factor * half))
    below = np.maximum(np.log(point / low), 1e-9)
    above = np.maximum(np.log(high / point), 1e-9)
    gap = np.log(salary / point)
    factor = np.quantile(np.maximum(-gap / below, gap / above), target)
    return float(np.mean(point * (np.exp(factor * above) - np.exp(-factor * below))))


def _interval_rows(
    split: str,
    salary: np.ndarray,
    sources: np.ndarray,
    bands: dict[str, tuple[np.ndarray, np.ndarray]],
    point: np.ndarray,
    target: float,
) -> list[dict[str, object]]:
    rows = []
    for method, (low, high) in bands.items():
        for source in [*sorted(set(sources)), ALL]:
            mask = np.ones(len(salary), bool) if source == ALL else sources == source
            truth, lo, hi = salary[mask], low[mask], high[mask]
            rows.append(
                {
                    "split": split,
                    "method": method,
                    "source": source,
                    "n": int(mask.sum()),
                    "coverage": float(np.mean((truth >= lo) & (truth <= hi))),
                    "below_low": float(np.mean(truth < lo)),
                    "above_high": float(np.mean(truth > hi)),
                    "mean_width_usd": float(np.mean(hi - lo)),
                    "width_at_target_usd": width_at_coverage(
                        method, truth, point[mask], lo, hi, target
                    ),
                }
            )
    return rows


def constant_bands(
    point: np.ndarray,
    sources: np.ndarray,
    calib_truth: np.ndarray,
    calib_point: np.ndarray,
    calib_sources: np.ndarray,
    coverage: float,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Constant ±k bands (USD and multiplicative), k per source from held-out residuals."""
    usd_k, log_k = np.zeros(len(point)), np.zeros(len(point))
    for source in np.unique(sources):
        in_calib = calib_sources == source
        usd_k[sources == source] = np.quantile(
            np.abs(calib_truth[in_calib] - calib_point[in_calib]), coverage
        )
        log_k[sources == source] = np.quantile(
            np.abs(np.log(calib_truth[in_calib]) - np.log(calib_point[in_calib])), coverage
        )
    return {
        "constant_usd": (np.maximum(point - usd_k, 0.0), point + usd_k),
        "constant_log": (point * np.exp(-log_k), point * np.exp(log_k)),
    }


@dataclass
class SplitBands:
    """A split's test salaries, point estimates and each range method's (low, high)."""

    salary: np.ndarray
    sources: np.ndarray
    point: np.ndarray
    bands: dict[str, tuple[np.ndarray, np.ndarray]]


def _range_split(
    train: pd.DataFrame,
    test: pd.DataFrame,
    point_test: np.ndarray | None,
    settings: Settings,
    split: str,
    features: FoldFeatures | None = None,
) -> list[dict[str, object]]:
    """Fit the range procedure on ``train`` exactly as production does; score on ``test``."""
    bands = range_bands(train, test, point_test, settings, features)
    return range_rows(split, bands, settings.ranges.coverage)


def range_bands(
    train: pd.DataFrame,
    test: pd.DataFrame,
    point_test: np.ndarray | None,
    settings: Settings,
    features: FoldFeatures | None = None,
) -> SplitBands:
    """The calibrated ranges and constant bands of ``test``, every one fit on ``train``.

    ``features`` are the split's builder and matrices when already made (fit
    on ``train`` only); ``point_test`` the point model's estimates for
    ``test`` when already made. The constant bands get the same held-out
    calibration residuals.
    """
    from salarymodel.core.range_calibration import calibration_split

    builder, train_matrix, test_matrix = features or fold_features(train, test, settings)
    threads = fit_threads(settings)
    range_model, calib_point = _fold_range_model(train, builder, train_matrix, settings, threads)
    if point_test is None:
        full = SalaryModel.fit(
            train, builder, settings.model, train_matrix, country_levels=settings.country_levels
        )
        point_test = np.exp(full.predict_log(test_matrix, threads))
    countries = test["country"].tolist()
    low, high, _ = range_model.bounds(builder, test_matrix, point_test, countries, threads)
    calib = calibration_split(train, settings.ranges, settings.evaluation.seed)
    bands = {"calibrated": (low, high)}
    bands |= constant_bands(
        point_test,
        test["source"].to_numpy(),
        train["salary_usd"].to_numpy(float)[calib],
        calib_point,
        train["source"].to_numpy()[calib],
        settings.ranges.coverage,
    )
    return SplitBands(
        test["salary_usd"].to_numpy(float), test["source"].to_numpy(), point_test, bands
    )


def _fold_range_model(
    train: pd.DataFrame,
    builder: FeatureBuilder,
    train_matrix: np.ndarray,
    settings: Settings,
    threads: int,
) -> tuple[RangeModel, np.ndarray]:
    """The range model fit on ``train``, and the proper-set point model's
    estimates (USD) of the calibration rows, which the constant bands reuse."""
    from salarymodel.core.country_levels import fit_levels
    from salarymodel.core.range_calibration import fit_range_model
    from salarymodel.core.ranges import salary_bounds

    # The range model's levels: fit on ``train`` only, as the final model's are.
    levels = fit_levels(train, settings.country_levels)
    calib_points: dict[str, np.ndarray] = {}

    def point_on(train_rows: np.ndarray, calib_rows: np.ndarray) -> np.ndarray:
        proper = SalaryModel.fit(
            train[train_rows],
            builder,
            settings.model,
            train_matrix[train_rows],
            country_levels=settings.country_levels,
        )
        calib_points["usd"] = np.exp(proper.predict_log(train_matrix[calib_rows], threads))
        return calib_points["usd"]

    ranges = fit_range_model(
        train,
        train_matrix,
        builder,
        settings.ranges,
        settings.evaluation.seed,
        point_on,
        salary_bounds(settings),
        levels,
        settings.country_levels,
    )
    return ranges, calib_points["usd"]


def range_rows(split: str, split_bands: SplitBands, coverage: float) -> list[dict[str, object]]:
    """Coverage, each tail's misses and widths of every method, per source and overall."""
    salary, point, bands = split_bands.salary, split_bands.point, split_bands.bands
    rows = _interval_rows(split, salary, split_bands.sources, bands, point, coverage)
    # Conditional honesty: coverage per fifth of the estimate (lowest to highest paid).
    tiers = pd.qcut(point, 5, labels=False, duplicates="drop")
    for row in rows:
        if row["source"] != ALL:
            continue
        low_b, high_b = bands[str(row["method"])]
        inside = (salary >= low_b) & (salary <= high_b)
        row["coverage_by_pay_fifth"] = [float(inside[tiers == t].mean()) for t in range(5)]
        row["median_relative_width"] = float(np.median((high_b - low_b) / point))
    return rows
