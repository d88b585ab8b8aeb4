"""evaluate_groups with backtest rows: the drift map is fit, applied out of time and served.

A small real sample of both sources. The CV rows are each record's
group-median estimate from the other folds with an overconfident band (as in
test_group_evaluation); the backtest rows are each rolling-backtest fold's
test records estimated from the records before its cut-off alone, the band
again too narrow. No LightGBM: the path under test is the percentile's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from salarymodel.core.percentile_drift import drift_corrected, fit_drift
from salarymodel.data.dataset import load_training_data
from salarymodel.data.role_family import with_role_family
from salarymodel.evaluation.backtest import backtest_folds
from salarymodel.evaluation.baselines import group_median
from salarymodel.evaluation.folds import assign_folds
from salarymodel.evaluation.groups import evaluate_groups, map_groups
from salarymodel.evaluation.report import row_keys
from salarymodel.vocabulary import FUSED_MODEL

# Reading the sample and running the group evaluation takes 20-25 s on a busy machine.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def records(settings, sources) -> pd.DataFrame:
    data = load_training_data(settings, sources, sample=8000, seed=23, accepted=False)
    return with_role_family(data.records.reset_index(drop=True), settings)


@pytest.fixture(scope="module")
def small(settings):
    """The settings with a survey year's backtest fold possible on the sample's ~1,000
    survey records before 2024 (the shipped data has 5,938)."""
    evaluation = settings.evaluation
    backtest = evaluation.backtest.model_copy(update={"min_train_rows": 500})
    update = {"evaluation": evaluation.model_copy(update={"backtest": backtest})}
    return settings.model_copy(update=update)


def _band(train: pd.DataFrame, test: pd.DataFrame, settings) -> tuple[np.ndarray, ...]:
    """The group-median estimate of ``test`` from ``train``, and a band half as wide as
    ``train``'s own residuals need (overconfident, like the issue's tails)."""
    estimate = group_median(train, test, settings)
    residual = np.log(train["salary_usd"].to_numpy(float) / group_median(train, train, settings))
    k = 0.5 * np.quantile(np.abs(residual), 0.8)
    return estimate, estimate * np.exp(-k), estimate * np.exp(k)


@pytest.fixture(scope="module")
def evaluated(records, small):
    settings = small
    folds = assign_folds(records, settings.evaluation.n_folds, settings.evaluation.seed)
    estimate, low, high = (np.full(len(records), np.nan) for _ in range(3))
    for fold in np.unique(folds):
        test = folds == fold
        estimate[test], low[test], high[test] = _band(records[~test], records[test], settings)
    cv_rows = row_keys(records).assign(
        fold=folds, salary_usd=records["salary_usd"].to_numpy(float),
        estimate_usd=estimate, low_usd=low, high_usd=high,
    )  # fmt: skip
    parts = []
    time_folds = backtest_folds(records, settings.evaluation.backtest)
    for fold in time_folds:
        test = records[fold.test]
        point, lo, hi = _band(records[fold.train], test, settings)
        parts.append(
            row_keys(records)[fold.test].assign(
                fold=fold.name, salary_usd=test["salary_usd"].to_numpy(float),
                **{FUSED_MODEL: point}, low_usd=lo, high_usd=hi,
            )
        )  # fmt: skip
    backtest_rows = pd.concat(parts, ignore_index=True)
    return time_folds, evaluate_groups(records, cv_rows, backtest_rows, settings)


def test_the_sample_has_several_backtest_folds_of_each_source(evaluated, settings) -> None:
    time_folds, _ = evaluated
    by_source = pd.Series([f.source for f in time_folds]).value_counts()
    assert by_source.get("postings", 0) >= 2 and by_source.get("aijobs", 0) >= 1
    assert settings.percentile_calibration.drift_sources == ["postings"]


def test_the_backtest_reads_the_drift_map_of_earlier_folds_only(evaluated, settings) -> None:
    time_folds, (tables, _, frames) = evaluated
    backtest = frames["backtest"]
    config = settings.percentile_calibration
    in_time, served_pct = backtest["percentile_in_time"], backtest["percentile"]
    postings = [f.name for f in time_folds if f.source == "postings"]
    fold = backtest["fold"].astype(str)
    # The survey is not a drift source, and a source's first fold has nothing earlier.
    unchanged = (backtest["source"] == "aijobs") | (fold == postings[0])
    assert np.array_equal(served_pct[unchanged], in_time[unchanged])
    # Every later postings fold is moved, by the map of the folds before it, by hand.
    keys = (backtest["source"].astype(str).to_numpy(), map_groups(backtest))
    for name in postings[1:]:
        mine = (fold == name).to_numpy()
        earlier = fold.isin(postings[: postings.index(name)]).to_numpy()
        drift = fit_drift(in_time[earlier], keys[0][earlier], keys[1][earlier], config)
        assert drift, "a later fold has an earlier fold's map"
        by_hand = drift_corrected(
            in_time[earlier | mine].to_numpy(), keys[0][earlier | mine],
            keys[1][earlier | mine], fold[earlier | mine].to_numpy(), config,
        )[mine[earlier | mine]]  # fmt: skip
        assert served_pct[mine].to_numpy() == pytest.approx(by_hand, abs=1e-9)
        assert not np.allclose(served_pct[mine], in_time[mine])
    # The backtest's checks read both the in-time and the served percentile.
    checked = tables["backtest"]["percentile_check"]
    assert {"raw_percentile", "percentile_in_time", "percentile"} <= set(checked)


def test_the_served_map_carries_the_drift_of_every_backtest_fold(evaluated, settings) -> None:
    _, (_, served, frames) = evaluated
    backtest = frames["backtest"]
    postings = (backtest["source"] == "postings").to_numpy()
    expected = fit_drift(
        backtest["percentile_in_time"].to_numpy(),
        backtest["source"].astype(str).to_numpy(),
        map_groups(backtest),
        settings.percentile_calibration,
    )
    assert served.drift == expected and "postings|all" in served.drift
    assert not any(key.startswith("aijobs|") for key in served.drift)
    # A served US postings job reads through the drift map, a US survey job does not.
    in_time = served.curves.get("US", served.curves["all"]).apply(30.0)
    assert served.calibrate(30.0, "aijobs", "US") == pytest.approx(in_time, abs=1e-9)
    assert served.calibrate(30.0, "postings", "US") != pytest.approx(in_time, abs=0.1)
    assert postings.any()
