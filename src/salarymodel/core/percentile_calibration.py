"""The served percentile, calibrated: "13th percentile" means 13% of such jobs pay less.

``ranges.salary_percentile`` reads a salary against a two-piece log-normal
through the job's calibrated range (the raw percentile). The range holds its
two quantiles on average, but the shape between and beyond them is assumed:
measured on grouped-CV out-of-fold records, the raw percentile's tails were
overconfident (issue 22). The fix is a monotone map per pay-level group: a
raw percentile ``r`` becomes the share of out-of-fold records whose own raw
percentile was below ``r`` (the empirical distribution of the raw
percentiles). Out-of-fold records were never seen by the point model that
estimated them, so the map is learnt without leakage; it is learnt per
country pay-level group (``group_evaluation.pay_level``) where the group has
``percentile_calibration.min_group_records`` records, else on all records.

The map and the country -> group table are one plain JSON file in the model
bundle (``percentile_calibration.json``). Applying it to one job is pure
Python (serving workers never import pandas); fitting and applying to many
records use numpy, the same interpolation.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

CALIBRATION_FILE = "percentile_calibration.json"
CALIBRATION_FORMAT = 1
OVERALL = "all"
US = "US"
# The evaluation's dimension (``evaluation.groups``) whose groups these curves are of.
PAY_LEVEL = "pay_level"


@dataclass(frozen=True)
class PercentileCurve:
    """One group's monotone map: ``raw`` percentiles (increasing) to ``calibrated`` ones."""

    group: str
    records: int
    raw: tuple[float, ...]
    calibrated: tuple[float, ...]

    def apply(self, raw_percentile: float) -> float:
        """The calibrated percentile of a raw one (linear between knots, flat outside)."""
        raw, out = self.raw, self.calibrated
        if raw_percentile <= raw[0]:
            return out[0]
        if raw_percentile >= raw[-1]:
            return out[-1]
        i = bisect_right(raw, raw_percentile) - 1
        span = raw[i + 1] - raw[i]
        share = (raw_percentile - raw[i]) / span if span > 0 else 1.0
        return out[i] + share * (out[i + 1] - out[i])

    def basis(self) -> str:
        """What the percentile rests on, in words: "1,234 records of US jobs"."""
        return f"{self.records:,} records of {group_description(self.group)}"


def group_description(group: str) -> str:
    """A pay-level group in words, for a reading."""
    if group == US:
        return "US jobs"
    if group == OVERALL:
        return "jobs in every country"
    return f"jobs in countries paying {group} of US pay"


@dataclass
class PercentileCalibration:
    """Each pay-level group's curve (and ``all``), and each country's group per source."""

    curves: dict[str, PercentileCurve]
    # source -> country code -> pay-level group (the US is its own group).
    country_groups: dict[str, dict[str, str]] = field(default_factory=dict)
    # "source|group" -> the percentile one period ahead (``core.percentile_drift``);
    # empty: in-time maps only (bundles before it).
    drift: dict[str, PercentileCurve] = field(default_factory=dict)

    def group_of(self, source: str | None, country: str | None) -> str:
        """A job's pay-level group; ``all`` for a country the training data did not rank."""
        if country == US:
            return US
        by_source = self.country_groups.get(source or "", {})
        if country in by_source:
            return by_source[str(country)]
        for groups in self.country_groups.values():  # another source ranked it
            if country in groups:
                return groups[str(country)]
        return OVERALL

    def curve_for(self, source: str | None, country: str | None) -> PercentileCurve:
        """The curve of the job's group (the overall one where the group has none),
        followed by its (source, group)'s drift map where the backtest measured one."""
        group = self.group_of(source, country)
        curve = self.curves.get(group, self.curves[OVERALL])
        return compose(curve, self.drift_curve(source, group))

    def drift_curve(self, source: str | None, group: str) -> PercentileCurve | None:
        """The drift map of a (source, pay-level group): its own, else its source's, else None."""
        return drift_for(self.drift, source, group)

    def calibrate(self, raw_percentile: float, source: str | None, country: str | None) -> float:
        """A raw percentile mapped through the job's group curve."""
        return self.curve_for(source, country).apply(raw_percentile)

    # ----- storage ---------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write the map as plain JSON into a bundle folder."""
        payload = {
            "format": CALIBRATION_FORMAT,
            "country_groups": self.country_groups,
            "curves": {name: _curve_dict(c) for name, c in self.curves.items()},
            "drift": {name: _curve_dict(c) for name, c in self.drift.items()},
        }
        (folder / CALIBRATION_FILE).write_text(json.dumps(payload))

    @classmethod
    def load(cls, folder: Path) -> PercentileCalibration | None:
        """The map a bundle holds; None for a bundle saved without one (raw percentiles)."""
        path = folder / CALIBRATION_FILE
        if not path.is_file():
            return None
        payload = json.loads(path.read_text())
        if payload.get("format") != CALIBRATION_FORMAT:
            raise ValueError(f"{path}: unknown percentile calibration format")
        curves = {name: _curve_of(name, c) for name, c in payload["curves"].items()}
        if OVERALL not in curves:
            raise ValueError(f"{path}: no overall curve")
        listed = payload["country_groups"].items()
        groups = {source: {k: str(v) for k, v in g.items()} for source, g in listed}
        # A drift key is "source|group"; the curve is named by its group.
        drift = {
            key: _curve_of(key.split("|", 1)[1], c) for key, c in payload.get("drift", {}).items()
        }
        return cls(curves, groups, drift)


def _curve_dict(curve: PercentileCurve) -> dict[str, object]:
    return {"records": curve.records, "raw": list(curve.raw), "calibrated": list(curve.calibrated)}


def _curve_of(group: str, stored: dict[str, Any]) -> PercentileCurve:
    return PercentileCurve(
        group,
        int(stored["records"]),
        tuple(float(v) for v in stored["raw"]),
        tuple(float(v) for v in stored["calibrated"]),
    )


def drift_key(source: str, group: str) -> str:
    """A drift map's key: "source|pay-level group" (``all``: the source's own map)."""
    return f"{source}|{group}"


def drift_for(
    drift: dict[str, PercentileCurve], source: str | None, group: str
) -> PercentileCurve | None:
    """A job's drift map: its (source, group)'s, else its source's; None where unmeasured."""
    return drift.get(drift_key(source or "", group)) or drift.get(drift_key(source or "", OVERALL))


def compose(curve: PercentileCurve, drift: PercentileCurve | None) -> PercentileCurve:
    """``curve`` then ``drift`` as one curve on ``curve``'s knots (its group and records).

    Exact at the knots, linear between them as every curve is (101 knots: the
    two readings differ by hundredths of a point).
    """
    if drift is None:
        return curve
    calibrated = tuple(drift.apply(value) for value in curve.calibrated)
    return PercentileCurve(curve.group, curve.records, curve.raw, calibrated)


# ----- fitting (training only) -----------------------------------------------------------
def fit_curve(raw: np.ndarray, group: str, knots: int) -> PercentileCurve:
    """The empirical distribution of ``raw`` percentiles as ``knots`` points of a monotone map.

    Knot k sits at the raw percentile below which k / (knots - 1) of the
    records fall: a record's calibrated percentile is the share of records
    whose raw percentile was lower.
    """
    import numpy as np

    levels = np.linspace(0.0, 100.0, knots)
    points = np.percentile(np.asarray(raw, float), levels)
    points = np.maximum.accumulate(points)  # rounding can break monotony by an ulp
    return PercentileCurve(group, len(raw), tuple(points.tolist()), tuple(levels.tolist()))


def fit_calibration(
    raw: np.ndarray,
    groups: np.ndarray,
    country_groups: dict[str, dict[str, str]],
    min_group_records: int,
    knots: int,
) -> PercentileCalibration:
    """Curves from out-of-fold records' raw percentiles and pay-level groups.

    A group with fewer than ``min_group_records`` records gets no curve of
    its own (its jobs take the overall one).
    """
    import numpy as np

    raw = np.asarray(raw, float)
    groups = np.asarray(groups, dtype=object)
    curves = {OVERALL: fit_curve(raw, OVERALL, knots)}
    for group in sorted(set(groups.tolist()) - {OVERALL}):
        mine = raw[groups == group]
        if len(mine) >= min_group_records:
            curves[group] = fit_curve(mine, group, knots)
    return PercentileCalibration(curves, country_groups)


def cross_fitted(
    raw: np.ndarray,
    groups: np.ndarray,
    folds: np.ndarray,
    min_group_records: int,
    knots: int,
) -> np.ndarray:
    """Each record's calibrated percentile from a map fit on the other folds' records only.

    How the map is evaluated in grouped CV without its own records in it.
    """
    import numpy as np

    raw = np.asarray(raw, float)
    groups = np.asarray(groups, dtype=object)
    out = np.full(len(raw), np.nan)
    for fold in np.unique(folds):
        mine = folds == fold
        fitted = fit_calibration(raw[~mine], groups[~mine], {}, min_group_records, knots)
        for group in set(groups[mine].tolist()):
            rows = mine & (groups == group)
            curve = fitted.curves.get(group, fitted.curves[OVERALL])
            out[rows] = apply_many(curve, raw[rows])
    return out


def apply_many(curve: PercentileCurve, raw: np.ndarray) -> np.ndarray:
    """:meth:`PercentileCurve.apply` on many raw percentiles at once (the same numbers)."""
    import numpy as np

    xs, ys = np.asarray(curve.raw), np.asarray(curve.calibrated)
    values = np.asarray(raw, float)
    i = np.clip(np.searchsorted(xs, values, side="right") - 1, 0, len(xs) - 2)
    span = xs[i + 1] - xs[i]
    share = np.divide(values - xs[i], span, out=np.ones_like(values), where=span > 0)
    out = ys[i] + share * (ys[i + 1] - ys[i])
    return np.where(values <= xs[0], ys[0], np.where(values >= xs[-1], ys[-1], out))
