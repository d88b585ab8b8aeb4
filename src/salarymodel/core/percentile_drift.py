"""The percentile one period ahead: a drift map per source and pay-level group.

The calibrated percentile (``salarymodel.core.percentile_calibration``) is
learnt on grouped-CV out-of-fold records, so it holds for jobs like the
training ones. Out of time, pay moves and the estimate lags it differently
per group: on the shipped data's backtest the under-35% group's salaries read
too low (the estimate is too high) and the percentile missed by 13.8 points.
The range has the same problem and answers it with a stretch per source
measured in the rolling backtest (``evaluation.backtest.drift_corrected``);
the percentile gets the same kind of answer, one map more:

- for each source, the empirical distribution of the in-time calibrated
  percentiles of its backtest records (each read through a map fit on
  records before its cut-off): what "p" meant one period ahead;
- for each (source, pay-level group) the same, its knots shrunk toward the
  source's by ``prior`` pseudo-records: (n x group + prior x source) / (n +
  prior), so a small group mostly follows its source; a group under
  ``min_group_records`` gets none and takes the source's map;
- the source's own map is shrunk toward no drift (the identity) likewise.

Blending two increasing knot sequences keeps them increasing, so every map
is monotone. Served, the drift map is composed with the group's in-time map
into one curve per (source, group) (``PercentileCalibration.curve_for``); the backtest applies to
each fold a drift fit on the same source's earlier folds only (the first fold
of a source gets none), so the check stays out of time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from salarymodel.config.model import PercentileCalibrationConfig
from salarymodel.core.percentile_calibration import (
    OVERALL,
    PercentileCurve,
    apply_many,
    drift_for,
    drift_key,
)

if TYPE_CHECKING:
    import numpy as np


def _shrunk(
    values: np.ndarray, toward: np.ndarray, prior: float, group: str, knots: int
) -> PercentileCurve:
    """The ECDF of ``values`` as knots, each knot shrunk toward ``toward`` (the same levels)."""
    import numpy as np

    levels = np.linspace(0.0, 100.0, knots)
    own = np.maximum.accumulate(np.percentile(np.asarray(values, float), levels))
    n = len(values)
    points = (n * own + prior * toward) / (n + prior)
    return PercentileCurve(group, n, tuple(points.tolist()), tuple(levels.tolist()))


def fit_drift(
    calibrated: np.ndarray,
    sources: np.ndarray,
    groups: np.ndarray,
    config: PercentileCalibrationConfig,
) -> dict[str, PercentileCurve]:
    """Drift maps from out-of-time records' in-time calibrated percentiles.

    One per source of ``config.drift_sources`` (key ``source|all``), and one
    per (source, group) with at least ``config.drift_min_group_records``
    records, shrunk toward its source's map by ``config.drift_prior``
    pseudo-records. Other sources get none (their in-time percentile stands).
    """
    import numpy as np

    calibrated = np.asarray(calibrated, float)
    sources = np.asarray(sources, dtype=object)
    groups = np.asarray(groups, dtype=object)
    prior, knots = config.drift_prior, config.knots
    identity = np.linspace(0.0, 100.0, knots)
    out: dict[str, PercentileCurve] = {}
    for source in sorted(set(sources.tolist()) & set(config.drift_sources)):
        mine = sources == source
        pooled = _shrunk(calibrated[mine], identity, prior, OVERALL, knots)
        out[drift_key(source, OVERALL)] = pooled
        toward = np.asarray(pooled.raw)
        for group in sorted(set(groups[mine].tolist()) - {OVERALL}):
            rows = mine & (groups == group)
            if rows.sum() >= config.drift_min_group_records:
                curve = _shrunk(calibrated[rows], toward, prior, str(group), knots)
                out[drift_key(source, str(group))] = curve
    return out


def drift_corrected(
    calibrated: np.ndarray,
    sources: np.ndarray,
    groups: np.ndarray,
    folds: np.ndarray,
    config: PercentileCalibrationConfig,
) -> np.ndarray:
    """Each backtest record's percentile through a drift map fit on its source's earlier folds.

    ``calibrated``: the records' in-time calibrated percentiles; ``folds``:
    fold names "source period", whose periods sort in time ("2023" <
    "2024", "2023-04..2023-06" < "2023-07..2023-09"). A source's first fold
    has no earlier one and keeps its in-time percentile.
    """
    import numpy as np

    calibrated = np.asarray(calibrated, float)
    sources = np.asarray(sources, dtype=object)
    groups = np.asarray(groups, dtype=object)
    folds = np.asarray(folds, dtype=object)
    out = calibrated.copy()
    for name in sorted(set(folds.tolist())):
        rows = folds == name
        source = sources[rows][0]
        earlier = (sources == source) & (folds < name)
        if not earlier.any():
            continue
        drift = fit_drift(calibrated[earlier], sources[earlier], groups[earlier], config)
        for group in set(groups[rows].tolist()):
            curve = drift_for(drift, source, group)
            these = rows & (groups == group)
            if curve is not None:
                out[these] = apply_many(curve, calibrated[these])
    return out
