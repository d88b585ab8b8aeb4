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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

CALIBRATION_FILE = "percentile_calibration.json"
CALIBRATION_FORMAT = 1
OVERALL = "all"
US = "US"


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
        """The curve of the job's group, or the overall one where the group has none."""
        return self.curves.get(self.group_of(source, country), self.curves[OVERALL])

    def calibrate(self, raw_percentile: float, source: str | None, country: str | None) -> float:
        """A raw percentile mapped through the job's group curve."""
        return self.curve_for(source, country).apply(raw_percentile)

    # ----- storage ---------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write the map as plain JSON into a bundle folder."""
        payload = {
            "format": CALIBRATION_FORMAT,
            "country_groups": self.country_groups,
            "curves": {
                name: {"records": c.records, "raw": list(c.raw), "calibrated": list(c.calibrated)}
                for name, c in self.curves.items()
            },
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
        curves = {
            name: PercentileCurve(
                name,
                int(c["records"]),
                tuple(float(v) for v in c["raw"]),
                tuple(float(v) for v in c["calibrated"]),
            )
            for name, c in payload["curves"].items()
        }
        if OVERALL not in curves:
            raise ValueError(f"{path}: no overall curve")
        listed = payload["country_groups"].items()
        groups = {source: {k: str(v) for k, v in g.items()} for source, g in listed}
        return cls(curves, groups)


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
