"""The promotion gate's arithmetic (``promotion.gate``), fast: real survey pay, cheap estimates.

The rows are 400 real 2024 survey records; the two "models" are the 2023
records' median pay per experience level (the champion) and per experience
level and company size (the challenger). No model is trained, so these tests
run in a second and can run against every mutant of the module.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from salarymodel.evaluation.metrics import metrics
from salarymodel.promotion.gate import (
    BETTER,
    HIGHER_IS_BETTER,
    TIE,
    WITHIN,
    WORSE,
    PairedInterval,
    describe,
    group_codes,
    interval_metrics,
    paired_interval,
    promotes,
    verdict,
    weighted_metric,
)


@pytest.fixture(scope="module")
def rows(aijobs_raw: pd.DataFrame) -> pd.DataFrame:
    """400 records of 2024 with their real pay, two estimates and a group (the job title)."""
    raw = aijobs_raw.assign(pay=pd.to_numeric(aijobs_raw["salary_in_usd"]))
    before, later = raw[raw["work_year"] == "2023"], raw[raw["work_year"] == "2024"]
    test = later.sample(400, random_state=3)
    by_level = before.groupby("experience_level")["pay"].median()
    by_size = before.groupby(["experience_level", "company_size"])["pay"].median()
    keys = pd.MultiIndex.from_frame(test[["experience_level", "company_size"]])
    return pd.DataFrame(
        {
            "salary": test["pay"].to_numpy(float),
            "champion": test["experience_level"].map(by_level).to_numpy(float),
            "challenger": by_size.reindex(keys).to_numpy(float),
            "group": test["job_title"].to_numpy(),
        }
    )


def _repeated(salary: np.ndarray, estimate: np.ndarray, counts: np.ndarray) -> dict:
    """``evaluation.metrics`` on the rows repeated ``counts`` times (a weight as copies)."""
    return metrics(np.repeat(salary, counts), np.repeat(estimate, counts))


def test_the_sample_is_real_and_the_estimates_differ(rows: pd.DataFrame) -> None:
    assert rows.notna().all().all() and len(rows) == 400
    assert rows["group"].nunique() < 200  # job titles repeat: groups hold several rows
    assert not np.allclose(rows["challenger"], rows["champion"])


@pytest.mark.parametrize("name", sorted(HIGHER_IS_BETTER))
def test_each_weighted_metric_is_the_metric_of_the_rows_repeated(
    rows: pd.DataFrame, name: str
) -> None:
    salary, estimate = rows["salary"].to_numpy(), rows["challenger"].to_numpy()
    rng = np.random.default_rng(11)
    # Several resamples at once (one per row of the matrix), zeros and repeats among them.
    counts = rng.integers(0, 4, size=(5, len(salary)))
    counts[0] = 1
    counts[1, ::2] = 0  # an odd or even number of rows left: both medians' cases
    found = weighted_metric(name, salary, estimate, counts.astype(float))
    assert found.shape == (5,)
    for i in range(5):
        expected = _repeated(salary, estimate, counts[i])[name]
        assert found[i] == pytest.approx(expected, rel=1e-12), (name, i)


def test_an_unknown_metric_is_refused_naming_the_known_ones(rows: pd.DataFrame) -> None:
    salary = rows["salary"].to_numpy()
    with pytest.raises(ValueError, match=r"unknown gate metric 'rmse'; one of \['mae_usd', "):
        weighted_metric("rmse", salary, salary, np.ones((1, len(salary))))


def test_group_codes_number_the_groups(rows: pd.DataFrame) -> None:
    assert group_codes(None, 4).tolist() == [0, 1, 2, 3]
    codes = group_codes(rows["group"].to_numpy(), len(rows))
    assert codes.shape == (len(rows),) and codes.min() == 0
    assert codes.max() + 1 == rows["group"].nunique()
    same = pd.Series(codes).groupby(rows["group"].to_numpy()).nunique()
    assert (same == 1).all()  # a group's rows share one code, and codes differ by group
    assert pd.Series(codes).nunique() == rows["group"].nunique()


def _plain_bootstrap(rows: pd.DataFrame, metric: str, groups, resamples: int, seed: int):
    """The bootstrap written out one resample at a time (the module batches it)."""
    salary = rows["salary"].to_numpy()
    codes = group_codes(groups, len(salary))
    count = codes.max() + 1
    rng = np.random.default_rng(seed)
    spread = []
    for start in range(0, resamples, 64):  # the module's batches draw in this order
        draws = rng.integers(0, count, size=(min(64, resamples - start), count))
        for drawn in draws:
            weights = np.bincount(drawn, minlength=count)[codes].astype(float)[None, :]
            ours = weighted_metric(metric, salary, rows["challenger"].to_numpy(), weights)
            theirs = weighted_metric(metric, salary, rows["champion"].to_numpy(), weights)
            spread.append(float(ours[0] - theirs[0]))
    return spread


@pytest.mark.parametrize(("metric", "grouped"), [("mae_usd", True), ("r2_log", False)])
def test_paired_interval_is_the_percentile_interval_of_the_paired_resamples(
    rows: pd.DataFrame, metric: str, grouped: bool
) -> None:
    groups = rows["group"].to_numpy() if grouped else None
    resamples = 150  # not a whole number of batches
    found = paired_interval(metric, rows["salary"], rows["challenger"], rows["champion"],
                            groups, resamples, 0.9, 7)  # fmt: skip
    spread = _plain_bootstrap(rows, metric, groups, resamples, 7)
    assert len(spread) == resamples
    low, high = np.quantile(spread, [0.05, 0.95])
    assert (found.low, found.high) == pytest.approx((low, high), rel=1e-9)
    ours = metrics(rows["salary"].to_numpy(), rows["challenger"].to_numpy())[metric]
    theirs = metrics(rows["salary"].to_numpy(), rows["champion"].to_numpy())[metric]
    assert (found.challenger, found.champion) == pytest.approx((ours, theirs), rel=1e-12)
    assert found.difference == pytest.approx(ours - theirs, rel=1e-12)
    assert (found.metric, found.confidence, found.resamples, found.rows) == (
        metric, 0.9, resamples, 400,
    )  # fmt: skip
    assert found.groups == (rows["group"].nunique() if grouped else 400)


def test_interval_metrics_are_the_numbers_only() -> None:
    interval = PairedInterval("mae_usd", 10.0, 12.0, -2.0, -3.0, -1.0, 0.95, 2000, 40, 30)
    assert interval_metrics(interval) == {
        "challenger": 10.0, "champion": 12.0, "difference": -2.0, "low": -3.0, "high": -1.0,
        "confidence": 0.95, "resamples": 2000.0, "rows": 40.0, "groups": 30.0,
    }  # fmt: skip
    assert all(type(v) is float for v in interval_metrics(interval).values())


def _interval(metric: str, low: float, high: float, champion: float = 100.0) -> PairedInterval:
    return PairedInterval(metric, champion, champion, 0.0, low, high, 0.95, 100, 10, 10)


@pytest.mark.parametrize(
    ("metric", "low", "high", "tolerance", "expected"),
    [
        # MAE: lower is better, so a negative difference is a gain.
        ("mae_usd", -10.0, -1.0, 0.0, BETTER),
        ("mae_usd", -10.0, 0.0, 0.0, TIE),  # touching zero is not beyond noise
        ("mae_usd", 0.0, 5.0, 0.0, TIE),
        ("mae_usd", -3.0, 4.0, 0.0, TIE),
        ("mae_usd", 2.0, 9.0, 0.02, WITHIN),  # the least loss (2) is 2% of 100: within
        ("mae_usd", 2.0, 9.0, 0.0199, WORSE),
        # R²: higher is better, so a positive difference is a gain.
        ("r2_log", 1.0, 10.0, 0.0, BETTER),
        ("r2_log", 0.0, 10.0, 0.0, TIE),
        ("r2_log", -5.0, 0.0, 0.0, TIE),
        ("r2_log", -9.0, -2.0, 0.02, WITHIN),
        ("r2_log", -9.0, -2.0, 0.0199, WORSE),
    ],
)
def test_the_verdict_at_each_edge(metric, low, high, tolerance, expected) -> None:
    assert verdict(_interval(metric, low, high), tolerance) == expected


def test_the_tolerance_scales_with_the_size_of_a_negative_champion() -> None:
    # R² can be negative: the tolerance is a share of its size, not of its sign.
    assert verdict(_interval("r2_log", -0.3, -0.2, champion=-10.0), 0.02) == WITHIN
    assert verdict(_interval("r2_log", -0.3, -0.2, champion=-10.0), 0.019) == WORSE


@pytest.mark.parametrize(
    ("found", "tie_rule", "expected"),
    [(BETTER, False, True), (BETTER, True, True), (WORSE, True, False), (WORSE, False, False),
     (TIE, True, True), (TIE, False, False), (WITHIN, True, True), (WITHIN, False, False)],
)  # fmt: skip
def test_promotes_only_a_win_or_what_the_tie_rule_allows(found, tie_rule, expected) -> None:
    assert promotes(found, tie_rule) is expected


def test_the_sentence_states_every_number_and_the_tie_rule_only_for_a_tie() -> None:
    interval = PairedInterval("mae_usd", 41234.5, 40000.0, 1234.5, -120.25, 2589.125,
                              0.95, 2000, 1234, 1100)  # fmt: skip
    clear = describe(interval, WORSE, "champion v3", 0.025, "the tie goes to the challenger")
    assert clear == (
        "challenger 41,234.50 is worse than champion v3 40,000.00: difference +1,234.50, "
        "95% interval [-120.25, +2,589.12] (1,234 rows in 1,100 groups, 2,000 resamples; "
        "tolerance 2.5%)"
    )
    for tie in (TIE, WITHIN):
        line = describe(interval, tie, "champion v3", 0.025, "the tie goes to the challenger")
        assert line.endswith("tolerance 2.5%); the tie goes to the challenger")
        assert f" is {tie} champion v3 " in line
    assert describe(interval, BETTER, "champion v3", 0.025, "rule").endswith("tolerance 2.5%)")
