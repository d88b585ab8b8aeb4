"""The evaluation as reported: the CV and range tables and the verdict against baselines."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from salarymodel.evaluation.backtest import (
    BacktestReport,
)
from salarymodel.evaluation.metrics import metrics
from salarymodel.vocabulary import ALL, FUSED_MODEL, RAW_MODEL, SINGLE_SOURCE_MODEL


# ----- cross-validation -------------------------------------------------------
@dataclass
class EvaluationReport:
    """Per-model, per-source CV metrics and the fused model's out-of-fold estimates."""

    table: pd.DataFrame
    oof: dict[str, np.ndarray]
    folds: np.ndarray
    salary: np.ndarray
    sources: np.ndarray
    seconds: dict[str, float] = field(default_factory=dict)
    # Calibrated ranges vs constant bands (``evaluate_ranges``' table) when
    # the same pass evaluated them, and the seconds its jobs took.
    ranges: pd.DataFrame | None = None
    range_seconds: float = 0.0
    # The rolling out-of-time backtest, when the same pass ran it.
    backtest: BacktestReport | None = None
    # With ranges: one row per record, its fold, keys, salary and the fused
    # model's out-of-fold estimate and calibrated range (``row_keys``).
    cv_rows: pd.DataFrame | None = None
    # Per-group accuracy, ranges and percentile check (``group_evaluation``),
    # and the per-row frames they were measured on (for the percentile plot).
    groups: dict[str, object] | None = None
    group_rows: dict[str, pd.DataFrame] | None = None
    # Each record's group (a record's repeats, a posting's reposts): the
    # verdicts' bootstrap resamples whole groups. Aligned with ``oof``.
    group_ids: np.ndarray | None = None
    # The fused model against its rivals with the MAE difference and its
    # paired interval (``salarymodel.promotion.verdicts``), once computed.
    verdicts: list[dict[str, object]] | None = None

    def metric(self, model: str, source: str, name: str) -> float:
        row = self.table[(self.table["model"] == model) & (self.table["source"] == source)]
        return float(row[name].iloc[0])

    def folds_won(self, model: str, other: str, source: str) -> int:
        """In how many folds ``model`` has a lower MAE than ``other`` on ``source``."""
        mask = (self.sources == source) if source != ALL else np.ones(len(self.folds), bool)
        won = 0
        for fold in np.unique(self.folds):
            in_fold = mask & (self.folds == fold)
            truth = self.salary[in_fold]
            ours = np.mean(np.abs(self.oof[model][in_fold] - truth))
            theirs = np.mean(np.abs(self.oof[other][in_fold] - truth))
            won += int(ours < theirs)
        return won

    def fusion_verdict(self) -> dict[str, dict[str, float | bool | str]]:
        """Per source: does the fused model beat single-source and raw models (MAE)?

        The effect is the CV verdict's word (``salarymodel.promotion.verdicts``: "level"
        when the paired interval spans zero), with its difference and interval;
        folds won out of K are kept as a second view.
        """
        if not {FUSED_MODEL, SINGLE_SOURCE_MODEL, RAW_MODEL} <= set(self.oof):
            return {}
        cv = {(v["source"], v["theirs"]): v for v in self.verdicts or [] if v["split"] == "cv"}
        verdict: dict[str, dict[str, float | bool | str]] = {}
        n_folds = len(np.unique(self.folds))
        for source in sorted(set(self.sources)):
            row: dict[str, float | bool | str] = {
                "fused_mae_usd": self.metric(FUSED_MODEL, source, "mae_usd"),
                f"{SINGLE_SOURCE_MODEL}_mae_usd": self.metric(
                    SINGLE_SOURCE_MODEL, source, "mae_usd"
                ),
                f"{RAW_MODEL}_mae_usd": self.metric(RAW_MODEL, source, "mae_usd"),
            }
            for rival, key in ((SINGLE_SOURCE_MODEL, "fusion"), (RAW_MODEL, RAW_MODEL)):
                won = self.folds_won(FUSED_MODEL, rival, source)
                row[f"folds_won_vs_{rival}"] = f"{won}/{n_folds}"
                found = cv.get((source, rival))
                if found is not None:
                    row[f"{key}_effect"] = str(found["verdict"])
                    row[f"{key}_difference_usd"] = float(found["difference"])  # type: ignore[arg-type]
                    row[f"{key}_interval_usd"] = f"[{found['low']:+,.0f}, {found['high']:+,.0f}]"
            verdict[source] = row
        return verdict

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "table": self.table.to_dict("records"),
            "fusion": self.fusion_verdict(),
            "seconds": self.seconds,
        }
        if self.backtest is not None:
            out["backtest"] = self.backtest.to_dict()
        if self.groups is not None:
            out["groups"] = self.groups
        if self.verdicts is not None:
            out["verdicts"] = self.verdicts
        return out


def row_keys(records: pd.DataFrame) -> pd.DataFrame:
    """Each record's position and the keys its group is read from (per-row tables)."""
    keys = [c for c in ("source", "country", "state") if c in records.columns]
    return records[keys].reset_index(drop=True).assign(record=np.arange(len(records)))


def cv_table(records: pd.DataFrame, oof: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per model and source (and all), the metrics of the out-of-fold estimates."""
    salary = records["salary_usd"].to_numpy(float)
    sources = records["source"].to_numpy()
    rows = []
    for name, estimates in oof.items():
        for source in [*sorted(set(sources)), ALL]:
            mask = np.ones(len(records), bool) if source == ALL else sources == source
            rows.append({"model": name, "source": source, **metrics(salary[mask], estimates[mask])})
    return pd.DataFrame(rows)


def ranges_table(cv_rows: list[dict[str, object]], backtest: BacktestReport | None) -> pd.DataFrame:
    """The range table: the CV folds' rows pooled, then the backtest's (per fold, pooled)."""
    parts = [_pool_folds(pd.DataFrame(cv_rows))]
    if backtest is not None and backtest.ranges is not None:
        parts.append(backtest.ranges)
    return pd.concat(parts, ignore_index=True)


def _pool_folds(cv: pd.DataFrame) -> pd.DataFrame:
    """Pool per-fold rows: coverage and widths weighted by fold size."""
    rows = []
    for (split, method, source), group in cv.groupby(["split", "method", "source"], sort=False):
        weights = group["n"].to_numpy(float)
        row = {
            "split": split,
            "method": method,
            "source": source,
            "n": int(weights.sum()),
            "coverage": float(np.average(group["coverage"], weights=weights)),
            "below_low": float(np.average(group["below_low"], weights=weights)),
            "above_high": float(np.average(group["above_high"], weights=weights)),
            "mean_width_usd": float(np.average(group["mean_width_usd"], weights=weights)),
            "width_at_target_usd": float(np.average(group["width_at_target_usd"], weights=weights)),
        }
        if "coverage_by_pay_fifth" in group and group["coverage_by_pay_fifth"].notna().all():
            tiers = np.array(group["coverage_by_pay_fifth"].tolist())
            row["coverage_by_pay_fifth"] = np.average(tiers, axis=0, weights=weights).tolist()
            row["median_relative_width"] = float(
                np.average(group["median_relative_width"], weights=weights)
            )
        rows.append(row)
    return pd.DataFrame(rows)
