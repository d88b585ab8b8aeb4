"""The rolling out-of-time backtest: folds that only look back, and ranges one period ahead."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from salarymodel.core.periods import record_months
from salarymodel.data.dataset import load_training_data
from salarymodel.evaluation.backtest import (
    backtest_folds,
    drift_corrected,
    stretch_band,
    tail_stretch,
)
from salarymodel.evaluation.cv import cross_validate
from salarymodel.evaluation.range_eval import SplitBands


@pytest.fixture(scope="module")
def records(settings, sources):
    """Every shipped record: folds depend on how many records each period holds."""
    return load_training_data(settings, sources, accepted=False).records


@pytest.fixture(scope="module")
def folds(records, settings):
    return backtest_folds(records, settings.evaluation.backtest)


def test_folds_per_source_as_configured(folds) -> None:
    names = [f.name for f in folds]
    # The survey knows years: 2022 has too few records before it (289 < 1,000).
    # Postings know months: three 3-month windows after the first quarter.
    assert names == [
        "aijobs 2023",
        "aijobs 2024",
        "postings 2023-04..2023-06",
        "postings 2023-07..2023-09",
        "postings 2023-10..2023-12",
    ]


def test_every_fold_trains_on_the_past_only(folds, records) -> None:
    start, end = record_months(records)
    groups = records["group_id"].to_numpy()
    for fold in folds:
        assert fold.test.sum() >= 200 and fold.train.sum() >= 1000
        assert (records["source"].to_numpy()[fold.test] == fold.source).all()
        # Every training record's period ended before any test record's began.
        assert end[fold.train].max() < start[fold.test].min(), fold.name
        # No group (a record's repeats, a posting's reposts) on both sides.
        assert not set(groups[fold.train]) & set(groups[fold.test]), fold.name


def test_reposts_across_the_cut_off_leave_training(folds, records) -> None:
    """A posting reposted in the test window is not trained on in its earlier month."""
    _, end = record_months(records)
    first = next(f for f in folds if f.source == "postings")
    before = end < record_months(records)[0][first.test].min()
    dropped = before & ~first.train
    assert dropped.sum() > 0
    test_groups = set(records["group_id"].to_numpy()[first.test])
    assert set(records["group_id"].to_numpy()[dropped]) <= test_groups


def test_too_little_history_gives_no_fold(records, settings) -> None:
    shipped = settings.evaluation.backtest
    strict = shipped.model_copy(update={"min_train_rows": 40_000})
    assert backtest_folds(records, strict) == []
    one = shipped.model_copy(update={"max_folds_per_source": 1})
    assert [f.name for f in backtest_folds(records, one)] == [
        "aijobs 2024",
        "postings 2023-10..2023-12",
    ]


def _residual_bands(records, fold, half: float = 0.35) -> SplitBands:
    """Bands of half-width ``half`` (log) around each year's median: a real, drifting centre."""
    train, test = records[fold.train], records[fold.test]
    point = np.full(int(fold.test.sum()), float(train["salary_usd"].median()))
    low, high = point * np.exp(-half), point * np.exp(half)
    salary = test["salary_usd"].to_numpy(float)
    return SplitBands(salary, test["source"].to_numpy(), point, {"calibrated": (low, high)})


def test_stretch_makes_each_tail_miss_its_share(records, folds) -> None:
    bands = _residual_bands(records, folds[1])
    low, high = bands.bands["calibrated"]
    stretch = tail_stretch(bands.salary, bands.point, low, high, 0.8)
    new_low, new_high = stretch_band(bands.point, low, high, stretch, (0.0, np.inf))
    assert np.mean(bands.salary < new_low) == pytest.approx(0.10, abs=0.002)
    assert np.mean(bands.salary > new_high) == pytest.approx(0.10, abs=0.002)
    # Pay rose: a median of earlier years sits low, so the high side had to stretch more.
    assert stretch["high"] > stretch["low"]


def test_a_folds_correction_comes_from_earlier_folds_only(records, folds) -> None:
    bands = [_residual_bands(records, f) for f in folds]
    corrected, overall = drift_corrected(folds, bands, 0.8, (5_000.0, 5_000_000.0))
    first = corrected[0].bands
    # The first fold of a source has nothing before it: left as it was.
    np.testing.assert_array_equal(first["calibrated"][0], first["calibrated_in_time"][0])
    # Changing a later fold's salaries changes neither an earlier fold's bands...
    shifted = [bands[0], replace(bands[1], salary=bands[1].salary * 3)]
    again, _ = drift_corrected(folds[:2], shifted, 0.8, (5_000.0, 5_000_000.0))
    np.testing.assert_array_equal(again[0].bands["calibrated"][0], first["calibrated"][0])
    # ...while the served stretch uses every fold, and no bound leaves the salary bounds.
    assert set(overall) == {"aijobs", "postings"}
    for split in corrected:
        low, high = split.bands["calibrated"]
        assert (low >= 5_000).all() and (low <= split.point).all() and (high >= split.point).all()


@pytest.mark.slow
def test_backtest_scores_every_model_on_the_same_rows(settings, sources) -> None:
    sample = load_training_data(settings, sources, sample=2500, seed=3, accepted=False).records
    config = settings.evaluation.backtest.model_copy(update={"min_train_rows": 300})
    # Two CV folds: this test is about the backtest, which runs beside the CV.
    evaluation = settings.evaluation.model_copy(update={"backtest": config, "n_folds": 2})
    small = settings.model_copy(update={"evaluation": evaluation})
    report = cross_validate(
        sample, small, models=("raw_lightgbm", "global_median"), ranges=True, backtest=True
    )
    backtest = report.backtest
    assert backtest is not None and backtest.folds
    pooled = backtest.table[backtest.table["fold"] == "all"]
    assert set(pooled["model"]) == {"fused_lightgbm", "raw_lightgbm", "global_median"}
    for model in ("fused_lightgbm", "raw_lightgbm"):
        # The product and the baselines are compared on the same test records.
        assert backtest.estimates[model].notna().all()
        assert backtest.metric(model, "all", "mae_usd") < backtest.metric(
            "global_median", "all", "mae_usd"
        )
    ranges = backtest.ranges[backtest.ranges["split"] == "backtest"]
    assert {"calibrated", "calibrated_in_time", "constant_usd", "constant_log"} <= set(
        ranges["method"]
    )
    for row in ranges.to_dict("records"):
        assert row["coverage"] + row["below_low"] + row["above_high"] == pytest.approx(1.0)
    metrics = backtest.metric_dict()
    assert "backtest.fused_lightgbm.all.mae_usd" in metrics
    # Each row keeps its range and keys for the per-group tables (group_evaluation).
    rows = backtest.estimates
    assert (rows["low_usd"] <= rows["fused_lightgbm"]).all()
    assert (rows["fused_lightgbm"] <= rows["high_usd"]).all()
    inside = (rows["salary_usd"] >= rows["low_usd"]) & (rows["salary_usd"] <= rows["high_usd"])
    calibrated = ranges[(ranges["method"] == "calibrated") & (ranges["source"] == "all")]
    assert inside.mean() == pytest.approx(calibrated["coverage"].iloc[0])
    records = sample.reset_index(drop=True)
    countries = records.loc[rows["record"], "country"].fillna("").to_numpy()
    assert (countries == rows["country"].fillna("").to_numpy()).all()
    assert "backtest.ranges.calibrated.all.coverage" in metrics
