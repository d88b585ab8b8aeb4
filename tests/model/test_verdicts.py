"""Verdicts with a size: the word follows the paired interval, and the interval is the gate's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from salarymodel.data.dataset import load_training_data
from salarymodel.data.role_family import with_role_family
from salarymodel.evaluation.backtest import BacktestReport
from salarymodel.evaluation.baselines import PREDICTORS
from salarymodel.evaluation.folds import assign_folds
from salarymodel.evaluation.report import EvaluationReport, cv_table
from salarymodel.promotion.gate import PairedInterval, paired_interval
from salarymodel.promotion.verdicts import (
    backtest_verdicts,
    cv_verdicts,
    printed_lines,
    report_verdicts,
    word,
)


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (-214.0, -49.0, "better"),  # the whole interval below zero: ours has the lower MAE
        (49.0, 214.0, "worse"),
        (-120.0, 131.0, "level"),  # spans zero
        (-222.0, 208.0, "level"),
        (0.0, 131.0, "level"),  # touching zero is not beyond noise
        (-131.0, 0.0, "level"),
    ],
)
def test_the_word_follows_the_interval(low: float, high: float, expected: str) -> None:
    assert word(low, high) == expected


def _interval(difference: float, low: float, high: float) -> PairedInterval:
    return PairedInterval("mae_usd", 25_048.0, 25_048.0 - difference, difference, low, high,
                          0.95, 2000, 3945, 3900)  # fmt: skip


def test_a_printed_verdict_carries_word_difference_and_interval() -> None:
    from salarymodel.promotion.verdicts import Verdict

    level = Verdict("cv", "postings", "fused_lightgbm", "single_source", _interval(8, -120, 131))
    assert level.line() == "postings: fused vs single-source: level, MAE +$8 [-120, +131]"
    better = Verdict("backtest", "postings", "fused_lightgbm", "raw_lightgbm",
                     _interval(-132.4, -214, -49))  # fmt: skip
    assert better.line() == (
        "postings: fused vs plain LightGBM on raw columns: better, MAE -$132 [-214, -49]"
    )
    lines = printed_lines([level.as_dict(), better.as_dict()])
    assert lines == [
        "grouped CV: postings: fused vs single-source: level, MAE +$8 [-120, +131]",
        "backtest: postings: fused vs plain LightGBM on raw columns: better, MAE -$132 [-214, -49]",
    ]


# ----- on real records ----------------------------------------------------------------
@pytest.fixture(scope="module")
def records(settings, sources) -> pd.DataFrame:
    data = load_training_data(settings, sources, sample=1500, seed=3, accepted=False).records
    return with_role_family(data.reset_index(drop=True), settings)


def _oof(records: pd.DataFrame, settings, name: str, folds: np.ndarray) -> np.ndarray:
    out = np.full(len(records), np.nan)
    for fold in np.unique(folds):
        test = folds == fold
        out[test] = PREDICTORS[name](records[~test], records[test], settings)
    return out


def _report(records: pd.DataFrame, settings, oof: dict[str, np.ndarray], folds) -> EvaluationReport:
    salary = records["salary_usd"].to_numpy(float)
    report = EvaluationReport(
        cv_table(records, oof), oof, folds, salary, records["source"].to_numpy()
    )
    report.group_ids = records["group_id"].to_numpy()
    return report


def test_cv_verdicts_are_the_paired_bootstrap_of_the_out_of_fold_maes(records, settings) -> None:
    folds = assign_folds(records, settings.evaluation.n_folds, settings.evaluation.seed)
    grouped = _oof(records, settings, "group_median", folds)
    flat = _oof(records, settings, "global_median", folds)
    # The group median stands in for the product and the global median for a
    # rival: a real difference of thousands of dollars, in one direction.
    oof = {"fused_lightgbm": grouped, "single_source": flat, "raw_lightgbm": grouped.copy()}
    report = _report(records, settings, oof, folds)
    verdicts = {(v.source, v.theirs): v for v in cv_verdicts(report, settings.gate)}
    assert set(verdicts) == {
        (s, r) for s in ("aijobs", "postings", "all") for r in ("single_source", "raw_lightgbm")
    }
    for source in ("aijobs", "postings", "all"):
        versus_flat = verdicts[(source, "single_source")]
        difference = report.metric("fused_lightgbm", source, "mae_usd") - report.metric(
            "single_source", source, "mae_usd"
        )
        assert versus_flat.interval.difference == pytest.approx(difference)
        assert versus_flat.interval.low < difference < versus_flat.interval.high
        assert versus_flat.word == "better"
        # The same estimates on both sides: no difference at all, and "level".
        same = verdicts[(source, "raw_lightgbm")]
        assert (same.interval.low, same.interval.high, same.word) == (0.0, 0.0, "level")
    # Whole groups are resampled: the interval is the gate's, on the records' groups.
    mask = records["source"].to_numpy() == "postings"
    expected = paired_interval(
        "mae_usd",
        records["salary_usd"].to_numpy(float)[mask],
        grouped[mask],
        flat[mask],
        records["group_id"].to_numpy()[mask],
        settings.gate.resamples,
        settings.gate.confidence,
        settings.gate.seed,
    )
    assert verdicts[("postings", "single_source")].interval == expected
    assert expected.groups < expected.rows  # repeats share a group in this sample


def test_worse_and_level_on_real_estimates(records, settings) -> None:
    folds = assign_folds(records, settings.evaluation.n_folds, settings.evaluation.seed)
    grouped = _oof(records, settings, "group_median", folds)
    flat = _oof(records, settings, "global_median", folds)
    rng = np.random.default_rng(0)
    # A rival that is the product's estimates with 0.1% noise either way: level.
    jitter = grouped * (1 + rng.choice([-0.001, 0.001], size=len(grouped)))
    oof = {"fused_lightgbm": flat, "single_source": grouped, "raw_lightgbm": jitter}
    report = _report(records, settings, oof, folds)
    verdicts = {(v.source, v.theirs): v for v in cv_verdicts(report, settings.gate)}
    assert verdicts[("all", "single_source")].word == "worse"
    assert verdicts[("all", "single_source")].interval.low > 0
    report.oof = {"fused_lightgbm": grouped, "raw_lightgbm": jitter}
    level = {v.source: v for v in cv_verdicts(report, settings.gate)}
    assert level["all"].interval.low < 0 < level["all"].interval.high
    assert level["all"].word == "level"


def test_backtest_verdicts_pool_the_folds_rows_per_source(records, settings) -> None:
    flat = np.full(len(records), float(records["salary_usd"].median()))
    rows = pd.DataFrame(
        {
            "fold": "postings 2023",
            "source": records["source"].to_numpy(),
            "group_id": records["group_id"].to_numpy(),
            "salary_usd": records["salary_usd"].to_numpy(float),
            "fused_lightgbm": records["salary_usd"].to_numpy(float) * 1.05,
            "group_median": flat,
        }
    )
    backtest = BacktestReport(pd.DataFrame(), None, rows)
    verdicts = backtest_verdicts(backtest, settings.gate)
    assert [(v.source, v.theirs, v.split) for v in verdicts] == [
        ("aijobs", "group_median", "backtest"),
        ("postings", "group_median", "backtest"),
        ("all", "group_median", "backtest"),
    ]
    assert all(v.word == "better" and v.interval.high < 0 for v in verdicts)
    assert verdicts[-1].interval.rows == len(records)


def test_a_training_report_serialises_its_verdicts(records, settings) -> None:
    folds = assign_folds(records, settings.evaluation.n_folds, settings.evaluation.seed)
    grouped = _oof(records, settings, "group_median", folds)
    oof = {
        "fused_lightgbm": grouped,
        "single_source": _oof(records, settings, "global_median", folds),
        "raw_lightgbm": grouped.copy(),
    }
    report = _report(records, settings, oof, folds)
    report.verdicts = report_verdicts(report, settings.gate)
    payload = report.to_dict()
    assert [v["line"] for v in payload["verdicts"]][:2] == [  # type: ignore[index]
        report.verdicts[0]["line"],
        report.verdicts[1]["line"],
    ]
    fusion = payload["fusion"]["postings"]  # type: ignore[index]
    assert fusion["fusion_effect"] == "better"
    assert fusion["raw_lightgbm_effect"] == "level"
    assert fusion["raw_lightgbm_interval_usd"] == "[+0, +0]"
