"""Right for the person asking: accuracy, range and percentile per group of users.

On average the model can be honest while a group of users is not served:
lower-paid countries over-estimated, one state's salaries escaping the
range. Every training run therefore measures, per group, on the grouped-CV
out-of-fold estimates and on the out-of-time backtest estimates:

- records, the median of estimate / actual - 1, the MAE (USD);
- the share of salaries below the range's low bound, above its high bound,
  and inside it (coverage);
- the percentile check: for p in ``group_evaluation.percentile_levels``, the
  share of records whose own salary reads below percentile p (ideal: p),
  for the raw two-piece log-normal percentile and the calibrated one
  (``salarymodel.core.percentile_calibration``).

The groups: every record (``all``); the source; the country's pay level
relative to the US (its training median over the US median of the same
source: under 35%, 35-60%, 60-90%, 90% and over; the US its own group);
source by US / outside the US; the country, and the US state when the records
have a ``state`` column (each with ``min_place_records``).

The functions take a plain frame of ``salary_usd``, ``estimate_usd``,
``low_usd``, ``high_usd`` and the group columns, so each is tested on a
slice of real records by hand.
"""

from __future__ import annotations

import itertools
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np

from salarymodel.config.evaluation import GroupEvaluationConfig
from salarymodel.config.settings import Settings
from salarymodel.core.percentile_calibration import (
    OVERALL,
    PAY_LEVEL,
    US,
    PercentileCalibration,
    apply_many,
    cross_fitted,
    fit_calibration,
)
from salarymodel.core.percentile_drift import drift_corrected, fit_drift
from salarymodel.vocabulary import FUSED_MODEL

if TYPE_CHECKING:
    import pandas as pd


# The per-group dimensions, in the order tables show them.
DIMENSIONS = ("all", "source", PAY_LEVEL, "source_region", "country", "state")
PLACES = ("country", "state")  # a row each from ``min_place_records`` records

CV_ROWS = "cv_estimates.csv.gz"  # run artifact (under ``evaluation/``)

UNRANKED = "country not ranked"
# Records without a country (postings of "Anywhere"): no person asks for such a job.
NO_COUNTRY = "country missing"

# The percentiles each check reads: raw, the served one, and (backtest) the
# in-time map alone, before the drift map (``core.percentile_drift``).
CHECKED = ("raw_percentile", "percentile", "percentile_in_time")


# ----- groups -------------------------------------------------------------------------------
def pay_level_labels(cuts: list[float]) -> list[str]:
    """Group names for the cuts: "under 35%", "35-60%", ..., "90% and over"."""
    pct = [f"{round(100 * c)}%" for c in cuts]
    middle = [f"{a.removesuffix('%')}-{b}" for a, b in itertools.pairwise(pct)]
    return [f"under {pct[0]}", *middle, f"{pct[-1]} and over"]


def pay_level_of(ratio: float, cuts: list[float]) -> str:
    """The pay-level group of a country paying ``ratio`` times the US median."""
    labels = pay_level_labels(cuts)
    for cut, label in zip(cuts, labels, strict=False):
        if ratio < cut:
            return label
    return labels[-1]


def country_pay_groups(
    records: pd.DataFrame, config: GroupEvaluationConfig
) -> dict[str, dict[str, str]]:
    """Per source, each country's pay-level group (the US: ``US``).

    A country's level is its median salary over the US median of the same
    source: the sources disagree about countries (postings put India at 0.92
    of the US, the survey at 0.25), so each source's records are grouped by
    its own level. A country with fewer than ``min_country_records`` in a
    source takes its level from all sources' records (against the pooled US
    median); a source without US records uses the pooled levels.
    """
    salary = records["salary_usd"].astype(float)
    pooled = salary.groupby(records["country"]).agg(["median", "size"])
    out: dict[str, dict[str, str]] = {}
    for source, mine in records.groupby("source"):
        stats = mine["salary_usd"].astype(float).groupby(mine["country"]).agg(["median", "size"])
        groups: dict[str, str] = {}
        for country in stats.index:
            if country == US:
                groups[country] = US
                continue
            own = stats.loc[country, "size"] >= config.min_country_records and US in stats.index
            table = stats if own else pooled
            if US not in table.index:
                continue
            ratio = float(table.loc[country, "median"] / table.loc[US, "median"])
            groups[str(country)] = pay_level_of(ratio, config.pay_level_cuts)
        out[str(source)] = groups
    return out


def with_groups(frame: pd.DataFrame, country_groups: dict[str, dict[str, str]]) -> pd.DataFrame:
    """``frame`` (``source``, ``country``) with its ``pay_level`` and ``source_region``."""
    calibration = PercentileCalibration({}, country_groups)
    pairs = zip(frame["source"].tolist(), frame["country"].tolist(), strict=True)
    # A country no source ranked (none of its records, or no US median) is named so,
    # and a record without a country.
    ranked = [UNRANKED if g == OVERALL else g for g in (calibration.group_of(*p) for p in pairs)]
    level = np.where(frame["country"].isna().to_numpy(), NO_COUNTRY, np.array(ranked, object))
    region = np.where(frame["country"].to_numpy() == US, " US", " outside the US")
    return frame.assign(
        pay_level=level, source_region=frame["source"].astype(str).to_numpy() + region
    )


def map_groups(frame: pd.DataFrame) -> np.ndarray:
    """Each row's calibration group: its pay level, or ``all`` for an unranked country
    (a served job whose country no source ranked gets the overall map, so its rows do too)."""
    levels = frame[PAY_LEVEL].to_numpy(dtype=object)
    return np.where((levels == UNRANKED) | (levels == NO_COUNTRY), OVERALL, levels)


# ----- the per-group table --------------------------------------------------------------------
def group_summary(frame: pd.DataFrame) -> dict[str, float | int]:
    """The numbers of one group's rows: records, median ratio - 1, MAE, tails, coverage."""
    salary = frame["salary_usd"].to_numpy(float)
    estimate = frame["estimate_usd"].to_numpy(float)
    low, high = frame["low_usd"].to_numpy(float), frame["high_usd"].to_numpy(float)
    return {
        "n": len(frame),
        "median_ratio": float(np.median(estimate / salary) - 1),
        "mae_usd": float(np.mean(np.abs(estimate - salary))),
        "below_low": float(np.mean(salary < low)),
        "above_high": float(np.mean(salary > high)),
        "coverage": float(np.mean((salary >= low) & (salary <= high))),
    }


def group_slices(frame: pd.DataFrame, min_place_records: int) -> list[tuple[str, str, Any]]:
    """(dimension, group, row mask) of every group the tables report."""
    slices: list[tuple[str, str, Any]] = [("all", OVERALL, np.ones(len(frame), bool))]
    for dimension in DIMENSIONS[1:]:
        if dimension not in frame.columns:
            continue  # e.g. records without a state column yet
        values = frame[dimension]
        if dimension == "state":
            values = values.where(frame["country"] == US)
        counts = values.value_counts()
        if dimension in PLACES:
            counts = counts[counts >= min_place_records]
        for group in sorted(counts.index.astype(str), key=_order):
            slices.append((dimension, group, (values.astype(str) == group).to_numpy()))
    return slices


def _order(group: str) -> tuple[float, str]:
    # Pay levels from the lowest ("under 35%" first), then the US, then names A-Z.
    if group.startswith("under "):
        return (0.0, group)
    head = group.split("%")[0].split("-")[0]
    return (float(head), group) if head.isdigit() else (1000.0 if group == US else 2000.0, group)


def group_table(frame: pd.DataFrame, min_place_records: int) -> list[dict[str, Any]]:
    """One row per group: dimension, group and :func:`group_summary`'s numbers."""
    rows = []
    for dimension, group, mask in group_slices(frame, min_place_records):
        if mask.any():
            rows.append({"dimension": dimension, "group": group, **group_summary(frame[mask])})
    return rows


# ----- the percentile -------------------------------------------------------------------------
def raw_percentiles(frame: pd.DataFrame, coverage: float) -> np.ndarray:
    """``ranges.salary_percentile`` of every row's own salary, vectorised (the same numbers)."""
    from scipy.special import ndtr

    z = NormalDist().inv_cdf((1 + coverage) / 2)
    x = np.log(frame["salary_usd"].to_numpy(float))
    mid = np.log(frame["estimate_usd"].to_numpy(float))
    side = np.where(
        x <= mid,
        mid - np.log(frame["low_usd"].to_numpy(float)),
        np.log(frame["high_usd"].to_numpy(float)) - mid,
    )
    sigma = np.maximum(side / z, 1e-6)
    return 100.0 * ndtr((x - mid) / sigma)


def percentile_check(
    frame: pd.DataFrame,
    column: str,
    levels: list[float],
    tolerance: float,
    group_tolerance: float,
    min_group_records: int,
    min_place_records: int,
) -> list[dict[str, Any]]:
    """Per group: the share (%) of rows whose ``column`` percentile is below each level.

    ``worst_gap`` is the largest |share - p| in points; ``within`` says whether
    it is within the tolerance (``tolerance`` overall, ``group_tolerance`` per
    group), None for a group under ``min_group_records`` rows or ``NO_COUNTRY``.
    """
    values = frame[column].to_numpy(float)
    rows = []
    for dimension, group, mask in group_slices(frame, min_place_records):
        if not mask.any():
            continue
        mine = values[mask]
        shares = {f"p{level:g}": float(100 * np.mean(mine < level)) for level in levels}
        gap = max(abs(shares[f"p{level:g}"] - level) for level in levels)
        allowed = tolerance if dimension == "all" else group_tolerance
        judged = mask.sum() >= min_group_records and group != NO_COUNTRY
        held = bool(gap <= allowed) if judged else None
        rows.append(
            {
                "dimension": dimension,
                "group": group,
                "n": int(mask.sum()),
                **shares,
                "worst_gap": float(gap),
                "tolerance": allowed,
                "within": held,
            }
        )
    return rows


# ----- one training pass's group evaluation -------------------------------------------------------
def evaluate_groups(
    records: pd.DataFrame,
    cv_rows: pd.DataFrame,
    backtest_rows: pd.DataFrame | None,
    settings: Settings,
) -> tuple[dict[str, Any], PercentileCalibration, dict[str, pd.DataFrame]]:
    """The group tables and percentile checks of a pass, and the served percentile map.

    ``records`` are the pass's records in its order; ``cv_rows`` the CV's
    per-row table (``EvaluationReport.cv_rows``); ``backtest_rows`` the
    backtest's estimates with their ranges. The map served with the model is
    fit on every out-of-fold record; the CV check applies to each fold a map
    fit on the other folds' records, each backtest fold a map fit on the
    out-of-fold records of its own training rows (records before its cut-off).
    Returns (JSON-ready tables, the map, the per-row frames for the plot).
    """
    config = settings.group_evaluation
    calibrate = settings.percentile_calibration
    coverage = settings.ranges.coverage
    groups = country_pay_groups(records, config)
    cv = with_groups(cv_rows.dropna(subset=["estimate_usd", "low_usd", "high_usd"]), groups)
    cv = cv.assign(raw_percentile=raw_percentiles(cv, coverage))
    cv = cv.assign(
        percentile=cross_fitted(
            cv["raw_percentile"].to_numpy(),
            map_groups(cv),
            cv["fold"].to_numpy(),
            calibrate.min_group_records,
            calibrate.knots,
        )
    )
    served = fit_calibration(
        cv["raw_percentile"].to_numpy(),
        map_groups(cv),
        groups,
        calibrate.min_group_records,
        calibrate.knots,
    )
    frames = {"cv": cv}
    tolerances = {"cv": (config.tolerance_cv_points,) * 2}
    if backtest_rows is not None and {"low_usd", "high_usd"} <= set(backtest_rows.columns):
        frames["backtest"] = _backtest_frame(records, cv, backtest_rows, groups, served, settings)
        tolerances["backtest"] = (
            config.tolerance_backtest_points,
            config.tolerance_backtest_group_points,
        )
    tables: dict[str, Any] = {"pay_levels": groups}
    for split, frame in frames.items():
        tables[split] = split_tables(frame, tolerances[split], config)
    return tables, served, frames


def _backtest_frame(
    records: pd.DataFrame,
    cv: pd.DataFrame,
    backtest_rows: pd.DataFrame,
    groups: dict[str, Any],
    served: PercentileCalibration,
    settings: Settings,
) -> pd.DataFrame:
    """The backtest's rows with their raw, in-time and served percentiles; sets the served
    map's drift (``core.percentile_drift``) from every backtest fold."""
    backtest = with_groups(backtest_rows.rename(columns={FUSED_MODEL: "estimate_usd"}), groups)
    backtest = backtest.assign(raw_percentile=raw_percentiles(backtest, settings.ranges.coverage))
    # The in-time map fit before each cut-off, then the drift map of the
    # source's earlier folds; served: the drift over all folds.
    in_time = _backtest_calibrated(records, cv, backtest, settings)
    keys = (backtest["source"].astype(str).to_numpy(), map_groups(backtest))
    drift = settings.percentile_calibration
    fold = backtest["fold"].astype(str).to_numpy()
    served.drift = fit_drift(in_time, *keys, drift)
    return backtest.assign(
        percentile_in_time=in_time, percentile=drift_corrected(in_time, *keys, fold, drift)
    )


def split_tables(
    frame: pd.DataFrame, tolerances: tuple[float, float], config: GroupEvaluationConfig
) -> dict[str, Any]:
    """One split's group table and percentile checks (raw and calibrated percentiles),
    within ``tolerances`` (overall, per group) in percentile points."""
    overall, per_group = tolerances
    check = {
        column: percentile_check(
            frame, column, config.percentile_levels, overall, per_group,
            config.min_group_records, config.min_place_records,
        )
        for column in CHECKED if column in frame.columns
    }  # fmt: skip
    return {"groups": group_table(frame, config.min_place_records), "percentile_check": check}


def _backtest_calibrated(
    records: pd.DataFrame, cv: pd.DataFrame, backtest: pd.DataFrame, settings: Settings
) -> np.ndarray:
    """Each backtest row's calibrated percentile, its map fit on records before its cut-off."""
    from salarymodel.evaluation.backtest import backtest_folds

    calibrate = settings.percentile_calibration
    out = np.full(len(backtest), np.nan)
    folds = {f.name: f for f in backtest_folds(records, settings.evaluation.backtest)}
    raw = backtest["raw_percentile"].to_numpy(float)
    for name, rows in backtest.groupby("fold").indices.items():
        before = folds[str(name)].train[cv["record"].to_numpy()]
        fitted = fit_calibration(
            cv["raw_percentile"].to_numpy()[before],
            map_groups(cv)[before],
            {},
            calibrate.min_group_records,
            calibrate.knots,
        )
        levels = map_groups(backtest)[rows]
        for group in set(levels.tolist()):
            these = rows[levels == group]
            curve = fitted.curves.get(group, fitted.curves[OVERALL])
            out[these] = apply_many(curve, raw[these])
    return out


def metric_dict(tables: dict[str, Any]) -> dict[str, float]:
    """MLflow metrics: ``groups.<split>.<dimension>.<group>.<number>`` and the checks' gaps."""
    out: dict[str, float] = {}
    for split in ("cv", "backtest"):
        if split not in tables:
            continue
        for row in tables[split]["groups"]:
            key = f"groups.{split}.{row['dimension']}.{_metric_name(row['group'])}"
            for name in ("n", "median_ratio", "mae_usd", "below_low", "above_high", "coverage"):
                out[f"{key}.{name}"] = float(row[name])
        for column, rows in tables[split]["percentile_check"].items():
            for row in rows:
                key = f"percentile.{split}.{column}.{row['dimension']}.{_metric_name(row['group'])}"
                out[f"{key}.worst_gap"] = float(row["worst_gap"])
    return out


def _metric_name(group: str) -> str:
    # MLflow metric names allow letters, digits, _ - . / and spaces; "%" is not one.
    return group.replace("%", "pct")


def check_failures(tables: dict[str, Any]) -> list[str]:
    """The groups whose calibrated percentile is outside its tolerance, in words."""
    out = []
    for split in ("cv", "backtest"):
        for row in tables.get(split, {}).get("percentile_check", {}).get("percentile", []):
            if row["within"] is False:
                gap = row["worst_gap"]
                out.append(
                    f"{split} {row['dimension']} {row['group']}: off by {gap:.1f} points "
                    f"(tolerance {row['tolerance']:g})"
                )
    return out
