"""Verdicts with a size: one model against another, the MAE difference and its interval.

"better" or "worse" alone hides how much, and how sure: an $8 difference
said "better". Every comparison `train` and `evaluate` print is a paired
bootstrap of MAE(ours) - MAE(theirs) on the same rows (``gate.paired_interval``,
whole groups at a time, the gate's resamples, confidence and seed):

- "better": the whole interval below zero (ours has the lower MAE);
- "worse": the whole interval above zero;
- "level": the interval spans zero (noise alone could make the difference).

On the grouped CV the rows are every record's out-of-fold estimates; on the
backtest, each fold's test records (``BacktestReport.estimates``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from salarymodel.promotion.gate import PairedInterval, paired_interval
from salarymodel.vocabulary import (
    ALL,
    FUSED_MODEL,
    GLOBAL_MEDIAN_MODEL,
    GROUP_MEDIAN_MODEL,
    RAW_MODEL,
    SINGLE_SOURCE_MODEL,
)

if TYPE_CHECKING:
    import pandas as pd

    from salarymodel.config.evaluation import GateConfig
    from salarymodel.evaluation.backtest import BacktestReport
    from salarymodel.evaluation.report import EvaluationReport

BETTER, WORSE, LEVEL = "better", "worse", "level"
METRIC = "mae_usd"  # lower is better; the verdicts speak of dollars
OURS = FUSED_MODEL
# Whom the product is compared with, on each split (when the split has them).
CV_RIVALS = (SINGLE_SOURCE_MODEL, RAW_MODEL)
BACKTEST_RIVALS = (RAW_MODEL, GROUP_MEDIAN_MODEL, GLOBAL_MEDIAN_MODEL)
NAMES = {
    FUSED_MODEL: "fused",
    SINGLE_SOURCE_MODEL: "single-source",
    RAW_MODEL: "plain LightGBM on raw columns",
    GROUP_MEDIAN_MODEL: "group median",
    GLOBAL_MEDIAN_MODEL: "global median",
}
SPLIT_NAMES = {"cv": "grouped CV", "backtest": "backtest"}


def word(low: float, high: float) -> str:
    """The verdict on an interval of MAE(ours) - MAE(theirs): zero inside it is "level"."""
    if high < 0:
        return BETTER
    if low > 0:
        return WORSE
    return LEVEL


def _dollars(value: float) -> str:
    sign = "-" if value < 0 else "+"
    return f"{sign}${abs(value):,.0f}"


def _signed(value: float) -> str:
    return f"{value:+,.0f}"


@dataclass(frozen=True)
class Verdict:
    """``ours`` against ``theirs`` on one split's rows of ``source`` (or ``all``)."""

    split: str  # "cv" or "backtest"
    source: str
    ours: str
    theirs: str
    interval: PairedInterval

    @property
    def word(self) -> str:
        return word(self.interval.low, self.interval.high)

    def line(self) -> str:
        """E.g. "postings: fused vs single-source: level, MAE +$8 [-120, +131]"."""
        i = self.interval
        return (
            f"{self.source}: {NAMES.get(self.ours, self.ours)} vs "
            f"{NAMES.get(self.theirs, self.theirs)}: {self.word}, MAE {_dollars(i.difference)} "
            f"[{_signed(i.low)}, {_signed(i.high)}]"
        )

    def as_dict(self) -> dict[str, object]:
        i = self.interval
        return {
            "split": self.split,
            "source": self.source,
            "ours": self.ours,
            "theirs": self.theirs,
            "verdict": self.word,
            "metric": i.metric,
            "ours_value": i.challenger,
            "theirs_value": i.champion,
            "difference": i.difference,
            "low": i.low,
            "high": i.high,
            "confidence": i.confidence,
            "rows": i.rows,
            "groups": i.groups,
            "line": self.line(),
        }


def compare(
    split: str,
    source: str,
    theirs: str,
    salary: np.ndarray,
    estimates: dict[str, np.ndarray],
    groups: np.ndarray | None,
    gate: GateConfig,
) -> Verdict:
    """The fused model against ``theirs`` on these rows: paired bootstrap of the MAE."""
    interval = paired_interval(
        METRIC,
        salary,
        estimates[OURS],
        estimates[theirs],
        groups,
        gate.resamples,
        gate.confidence,
        gate.seed,
    )
    return Verdict(split, source, OURS, theirs, interval)


def _scopes(sources: np.ndarray) -> list[tuple[str, np.ndarray]]:
    scopes = [(str(s), sources == s) for s in sorted(set(sources.tolist()))]
    return [*scopes, (ALL, np.ones(len(sources), bool))]


def cv_verdicts(report: EvaluationReport, gate: GateConfig) -> list[Verdict]:
    """The fused model against each CV rival the report has, per source and overall."""
    if OURS not in report.oof:
        return []
    out = []
    for source, mask in _scopes(np.asarray(report.sources)):
        groups = None if report.group_ids is None else np.asarray(report.group_ids)[mask]
        estimates = {name: oof[mask] for name, oof in report.oof.items()}
        out += [
            compare("cv", source, rival, report.salary[mask], estimates, groups, gate)
            for rival in CV_RIVALS
            if rival in estimates
        ]
    return out


def backtest_verdicts(backtest: BacktestReport, gate: GateConfig) -> list[Verdict]:
    """The fused model against each backtest rival, pooled over folds per source and overall."""
    rows: pd.DataFrame = backtest.estimates
    if OURS not in rows.columns or rows.empty:
        return []
    out = []
    for source, mask in _scopes(rows["source"].to_numpy()):
        part = rows[mask]
        estimates = {c: part[c].to_numpy(float) for c in (OURS, *BACKTEST_RIVALS) if c in part}
        salary, groups = part["salary_usd"].to_numpy(float), part["group_id"].to_numpy()
        out += [
            compare("backtest", source, rival, salary, estimates, groups, gate)
            for rival in BACKTEST_RIVALS
            if rival in estimates
        ]
    return out


def report_verdicts(report: EvaluationReport, gate: GateConfig) -> list[dict[str, object]]:
    """Every verdict of a training's evaluation (CV, then backtest), as JSON-ready dicts."""
    verdicts = cv_verdicts(report, gate)
    if report.backtest is not None:
        verdicts += backtest_verdicts(report.backtest, gate)
    return [v.as_dict() for v in verdicts]


def printed_lines(verdicts: list[dict[str, object]]) -> list[str]:
    """The lines `train` and `evaluate` print: one per verdict, under its split's name."""
    return [f"{SPLIT_NAMES.get(str(v['split']), v['split'])}: {v['line']}" for v in verdicts]
