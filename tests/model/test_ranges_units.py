"""The range arithmetic, unit by unit, on a small real sample (fast: mutation testing runs it).

The range model here is fit on about 1,500 real records with few boosting rounds,
so every test runs in well under a second; tests/model/test_ranges.py checks the
coverage of the shipped configuration on a larger sample.
"""

from __future__ import annotations

import itertools
import json
import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
from helpers.real_rows import real_records, real_settings

from salarymodel.config.settings import Settings
from salarymodel.core.country_levels import CountryLevels
from salarymodel.core.features import FeatureBuilder
from salarymodel.core.periods import record_months
from salarymodel.core.range_calibration import (
    calibrate_range_model,
    calibration_cells,
    calibration_split,
    conformal_offsets,
    finite_sample_quantile,
    fit_quantile_boosters,
    fit_range_model,
    latest_period_mask,
    quantile_levels,
    recency_weights,
    spread_floors,
    tail_scores,
)
from salarymodel.core.ranges import (
    ANY,
    RANGES_FILE,
    RangeModel,
    cell_chain,
    cell_key,
    cell_label,
    log_spread,
    salary_bounds,
    salary_percentile,
    source_names,
    support_counts,
    support_keys,
    support_table,
)
from salarymodel.core.row_spec import AT

ROUNDS = 12  # quantile boosting rounds: enough to rank jobs, fast to fit


@pytest.fixture(scope="module")
def settings() -> Settings:
    """The shipped settings, the range fit made small and single-threaded."""
    shipped = real_settings()
    params = {**shipped.ranges.params, "num_threads": 1}
    ranges = shipped.ranges.model_copy(
        update={"num_boost_round": ROUNDS, "params": params, "min_calibration_cell": 60}
    )
    return shipped.model_copy(update={"ranges": ranges})


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    return real_records().reset_index(drop=True)


@pytest.fixture(scope="module")
def builder(records, settings) -> FeatureBuilder:
    return FeatureBuilder.fit(records, settings.features)


@pytest.fixture(scope="module")
def matrix(builder, records) -> np.ndarray:
    return builder.transform(records)


def level_point_model(records: pd.DataFrame):
    """A plain point model: the proper rows' geometric mean salary per source and level."""
    log_pay = np.log(records["salary_usd"].to_numpy(float))
    keys = (records["source"] + "|" + records["experience_level"].astype(str)).to_numpy()

    def point(proper: np.ndarray, calib: np.ndarray) -> np.ndarray:
        means = pd.Series(log_pay[proper]).groupby(keys[proper]).mean()
        overall = float(log_pay[proper].mean())
        return np.exp(np.array([means.get(k, overall) for k in keys[calib]]))

    return point


@pytest.fixture(scope="module")
def levels(records, settings) -> CountryLevels:
    return CountryLevels.fit(records, settings.country_levels)


@pytest.fixture(scope="module")
def fitted(records, matrix, builder, settings, levels) -> RangeModel:
    return fit_range_model(
        records,
        matrix,
        builder,
        settings.ranges,
        settings.evaluation.seed,
        level_point_model(records),
        salary_bounds(settings),
        levels,
        settings.country_levels,
    )


def model_with(fitted: RangeModel, **changes) -> RangeModel:
    """The fitted model's boosters with chosen corrections, bounds and stretches."""
    base = {
        "coverage": 0.8,
        "low": fitted.low,
        "high": fitted.high,
        "offsets_low": {cell_key(ANY, None): 1.0},
        "offsets_high": {cell_key(ANY, None): 1.0},
        "support": fitted.support,
        "thin_below": 30,
    }
    return RangeModel(**{**base, **changes})


def scale_of(model: RangeModel, matrix: np.ndarray) -> np.ndarray:
    return log_spread(
        model.low.predict(matrix, num_threads=1), model.high.predict(matrix, num_threads=1)
    )


# ----- small pure functions ----------------------------------------------------------------------
def test_quantile_levels_are_the_central_interval() -> None:
    low, high = quantile_levels(0.8)
    assert low == pytest.approx(0.1) and high == pytest.approx(0.9)
    assert quantile_levels(0.5) == (0.25, 0.75)


def test_cell_keys_chains_and_labels() -> None:
    assert cell_key("aijobs", True) == "aijobs|thin"
    assert cell_key("aijobs", False) == "aijobs|ok"
    assert cell_key("aijobs", None) == "aijobs|*"
    assert cell_key("postings", False, "US") == "postings|ok|US"
    assert cell_chain("aijobs", True, None) == ["aijobs|thin", "aijobs|*", "*|*"]
    assert cell_chain("aijobs", False, "<35%") == [
        "aijobs|ok|<35%",
        "aijobs|*|<35%",
        "aijobs|ok",
        "aijobs|*",
        "*|*",
    ]
    assert cell_label("aijobs|thin") == "aijobs, thin support"
    assert cell_label("*|*") == "all sources, any support"
    assert cell_label("postings|ok|US") == "postings, US, enough support"
    assert cell_label("postings|*|35-60%") == "postings, 35-60% of US pay, any support"


def test_log_spread_is_half_the_gap_at_least_a_hundredth() -> None:
    low, high = np.array([10.0, 11.0, 11.0, 10.5]), np.array([11.0, 10.0, 11.001, 10.5])
    np.testing.assert_allclose(log_spread(low, high), [0.5, 0.5, 0.01, 0.01])


def test_tail_scores_are_log_gaps_over_the_scale(records) -> None:
    salary = records["salary_usd"].to_numpy(float)[:50]
    point = np.full(50, float(np.median(salary)))
    scale = np.linspace(0.2, 0.7, 50)
    below, above = tail_scores(salary, point, scale)
    np.testing.assert_allclose(above, np.log(salary / point) / scale)
    np.testing.assert_allclose(below, -above)


def test_finite_sample_quantile_takes_the_corrected_rank() -> None:
    values = np.array([5.0, 1.0, 4.0, 2.0, 3.0, 9.0, 7.0, 8.0, 6.0, 10.0])
    # np.quantile(values, ceil((n + 1) level) / n, "higher"): for n = 10 and 0.8 that is
    # q = 0.9, position 8.1, rounded up to the 10th smallest (one rank above the
    # docstring's 9th; the weighted path below takes the 9th).
    assert finite_sample_quantile(values, 0.8, None) == 10.0
    assert finite_sample_quantile(values, 0.5, None) == 7.0  # q = 0.6, position 5.4
    assert finite_sample_quantile(values, 0.3, None) == 5.0  # q = 0.4, position 3.6
    assert finite_sample_quantile(values, 0.99, None) == 10.0  # q capped at 1
    # ceil(11 x 0.45) = 5: q = 0.5, position 4.5 (ceil((n + 2) level) would take q = 0.6).
    assert finite_sample_quantile(values, 0.45, None) == 6.0
    # Equal weights: n_eff = n, level x 11/10 of the cumulative share.
    equal = np.ones(10)
    assert finite_sample_quantile(values, 0.8, equal) == 9.0
    assert finite_sample_quantile(values, 0.5, equal) == 6.0
    assert finite_sample_quantile(values, 0.95, equal) == 10.0  # capped, not past the end
    # Weight on the small scores pulls the quantile down.
    heavy_small = np.where(values <= 3, 10.0, 1.0)
    assert finite_sample_quantile(values, 0.5, heavy_small) == 3.0  # unweighted: 7.0


def test_weighted_quantile_uses_the_effective_sample_size() -> None:
    values, weights = np.array([4.0, 1.0, 3.0, 2.0]), np.array([4.0, 1.0, 3.0, 2.0])
    # n_eff = 10^2 / 30 = 3.33; level 0.3 x 4.33 / 3.33 = 0.39 of the cumulative
    # weight (0.1, 0.3, 0.6, 1.0): the 3rd smallest. Uncorrected (0.3) it is the 2nd.
    assert finite_sample_quantile(values, 0.3, weights) == 3.0
    # 0.5 x 1.3 = 0.65: the 4th.
    assert finite_sample_quantile(values, 0.5, weights) == 4.0
    assert finite_sample_quantile(values, 0.2, weights) == 2.0  # 0.26
    assert finite_sample_quantile(values, 0.05, weights) == 1.0  # 0.065


def test_calibration_cells_refuse_small_cells_but_keep_the_global_one() -> None:
    sources = np.array(["a"] * 6 + ["b"] * 3)
    thin = np.array([True, True, False, False, False, False, True, False, False])
    groups = np.array(["US", "US", "US", "low", "low", "low", "US", "US", "US"], dtype=object)
    cells = calibration_cells(sources, thin, 3)
    assert set(cells) == {"*|*", "a|*", "a|ok", "b|*"}
    assert cells["a|ok"].tolist() == [False, False, True, True, True, True, False, False, False]
    assert cells["*|*"].all()
    grouped = calibration_cells(sources, thin, 3, groups)
    assert set(grouped) == {"*|*", "a|*", "a|ok", "b|*", "a|*|US", "a|*|low", "a|ok|low", "b|*|US"}
    # A cell of exactly min_cell records is kept; one fewer is refused.
    assert "b|*" in calibration_cells(sources, thin, 3)
    assert "b|*" not in calibration_cells(sources, thin, 4)
    only_global = calibration_cells(sources, thin, 100)
    assert list(only_global) == ["*|*"]
    # Thin records get a cell of their own (beside the others) once there are enough.
    two = calibration_cells(sources, thin, 2, groups)
    assert cell_key("a", True) in two and cell_key("a", True, "US") in two
    assert two[cell_key("a", True)].tolist() == thin.tolist()[:6] + [False] * 3
    assert cell_key("b", True) not in two  # one thin record


def test_conformal_offsets_are_each_cells_quantile(records) -> None:
    n = 300
    scores = np.log(records["salary_usd"].to_numpy(float)[:n])
    sources = records["source"].to_numpy()[:n]
    thin = np.arange(n) % 3 == 0
    weights = np.linspace(0.5, 1.0, n)
    offsets = conformal_offsets(scores, sources, thin, 0.9, 40, weights)
    for key, mask in calibration_cells(sources, thin, 40).items():
        assert offsets[key] == finite_sample_quantile(scores[mask], 0.9, weights[mask])
    plain = conformal_offsets(scores, sources, thin, 0.9, 40)
    assert plain["*|*"] == finite_sample_quantile(scores, 0.9, None)
    assert plain != offsets


def test_spread_floors_are_the_blend_of_each_sources_median() -> None:
    spread = np.array([0.1, 0.2, 0.3, 0.5, 0.9])
    sources = np.array(["a", "a", "a", "b", "b"])
    floors = spread_floors(spread, sources, 0.5)
    assert floors == pytest.approx({ANY: 0.15, "a": 0.1, "b": 0.35})
    assert spread_floors(spread, sources, 0.0) == {ANY: 0.0, "a": 0.0, "b": 0.0}


def test_salary_bounds_are_validations(settings) -> None:
    assert salary_bounds(settings) == (
        settings.validation.salary_usd_min,
        settings.validation.salary_usd_max,
    )


# ----- the percentile ----------------------------------------------------------------------------
def test_percentile_is_anchored_at_the_range_and_the_estimate() -> None:
    est, low, high = 100_000.0, 70_000.0, 160_000.0
    assert salary_percentile(est, est, low, high, 0.8) == pytest.approx(50.0)
    assert salary_percentile(low, est, low, high, 0.8) == pytest.approx(10.0)
    assert salary_percentile(high, est, low, high, 0.8) == pytest.approx(90.0)
    assert salary_percentile(high, est, low, high, 0.9) == pytest.approx(95.0)
    # Each side has its own spread: the same ratio reads further out on the tight side.
    z = NormalDist().inv_cdf(0.9)
    below = salary_percentile(est / 1.2, est, low, high, 0.8)
    above = salary_percentile(est * 1.2, est, low, high, 0.8)
    assert below == pytest.approx(100 * NormalDist().cdf(-math.log(1.2) * z / math.log(est / low)))
    assert above == pytest.approx(100 * NormalDist().cdf(math.log(1.2) * z / math.log(high / est)))


def test_percentile_is_monotone_in_the_salary_on_real_salaries(records) -> None:
    salaries = np.sort(records["salary_usd"].to_numpy(float))
    est = float(np.median(salaries))
    low, high = np.quantile(salaries, [0.1, 0.9]).tolist()
    read = [salary_percentile(s, est, low, high, 0.8) for s in salaries]
    assert all(b >= a for a, b in itertools.pairwise(read))
    assert read[0] < 2 and read[-1] > 98


def test_a_tiny_salary_reads_at_the_bottom() -> None:
    assert salary_percentile(0.5, 100_000.0, 70_000.0, 160_000.0, 0.8) == pytest.approx(0.0)


def test_percentile_of_a_degenerate_range_is_a_step_not_a_crash() -> None:
    assert salary_percentile(100_001.0, 100_000.0, 100_000.0, 100_000.0, 0.8) == 100.0
    assert salary_percentile(99_999.0, 100_000.0, 100_000.0, 100_000.0, 0.8) == 0.0


@pytest.mark.parametrize("salary", [0.0, -1.0])
def test_percentile_refuses_a_salary_that_is_not_positive(salary) -> None:
    with pytest.raises(ValueError, match=r"^salary must be positive$"):
        salary_percentile(salary, 100_000.0, 70_000.0, 160_000.0, 0.8)


# ----- support, sources --------------------------------------------------------------------------
def test_support_keys_name_family_level_and_country(builder, matrix, records) -> None:
    countries = records["country"].tolist()
    keys = support_keys(builder, matrix, countries)
    for i in range(0, len(records), 53):
        family = builder.role_families[int(matrix[i, AT["role_family"]])]
        level = records["experience_level"].iloc[i]
        level = "?" if pd.isna(level) else level
        country = countries[i] if isinstance(countries[i], str) else "?"
        assert keys[i] == f"{family}|{level}|{country}"
    odd = matrix[:2].copy()
    odd[:, AT["experience_level"]] = np.nan
    assert [k.split("|")[1:] for k in support_keys(builder, odd, [None, ""])] == [
        ["?", "?"],
        ["?", "?"],
    ]


def test_support_table_counts_and_orders_by_count(builder, matrix, records) -> None:
    countries = records["country"].tolist()
    table = support_table(builder, matrix, countries)
    assert sum(table.values()) == len(records)
    counts = list(table.values())
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]
    found = support_counts(table, builder, matrix, countries)
    keys = support_keys(builder, matrix, countries)
    assert found.tolist() == [table[k] for k in keys]
    assert support_counts({}, builder, matrix[:5], countries[:5]).tolist() == [0] * 5


def test_source_names_mark_a_missing_source(builder, matrix, records) -> None:
    names = source_names(builder, matrix)
    assert names.tolist() == records["source"].tolist()
    unknown = matrix[:3].copy()
    unknown[:, AT["source"]] = np.nan
    assert source_names(builder, unknown).tolist() == [ANY] * 3


# ----- splits and weights ------------------------------------------------------------------------
def test_random_calibration_split_keeps_groups_whole(records, settings) -> None:
    calib = calibration_split(records, settings.ranges, seed=4)
    share = calib.mean()
    assert 0.1 < share < 0.3
    groups = records["group_id"].to_numpy()
    assert not set(groups[calib]) & set(groups[~calib])
    assert not np.array_equal(calib, calibration_split(records, settings.ranges, seed=5))


def test_latest_calibration_takes_each_sources_latest_period(records, settings) -> None:
    latest = settings.ranges.model_copy(update={"calibration": "latest", "latest_months": 3})
    mask = calibration_split(records, latest, seed=4)
    np.testing.assert_array_equal(mask, latest_period_mask(records, 3))
    start, _ = record_months(records)
    for source in ("aijobs", "postings"):
        mine = (records["source"] == source).to_numpy()
        last = np.nanmax(start[mine])
        by_year = records.loc[mine, "month"].isna().all()
        first = last - last % 12 if by_year else last - 2
        in_period = mine & (start >= first)
        assert in_period.any() and mask[in_period].all()
        # Besides groups reaching into the period, nothing earlier is in.
        groups = set(records["group_id"][in_period])
        earlier = mine & (start < first) & ~records["group_id"].isin(groups).to_numpy()
        assert earlier.any() and not mask[earlier].any()
    # A source with years only takes its last year, however many months are asked for.
    survey = (records["source"] == "aijobs").to_numpy()
    assert records.loc[survey, "month"].isna().all()
    np.testing.assert_array_equal(latest_period_mask(records, 13)[survey], mask[survey])
    wider = latest_period_mask(records, 6)
    assert wider.sum() > mask.sum() and (wider | mask).sum() == wider.sum()
    # Each source's period is its own: a source alone gets the same records.
    for source in ("aijobs", "postings"):
        mine = (records["source"] == source).to_numpy()
        alone = records[mine].reset_index(drop=True)
        np.testing.assert_array_equal(latest_period_mask(alone, 3), mask[mine])


def test_recency_weights_halve_every_half_life(records) -> None:
    assert recency_weights(records, None) is None
    weights = recency_weights(records, 6.0)
    _, end = record_months(records)
    for source in ("aijobs", "postings"):
        mine = (records["source"] == source).to_numpy()
        age = np.nanmax(end[mine]) - end[mine]
        np.testing.assert_allclose(weights[mine], 0.5 ** (age / 6.0))
        assert weights[mine].max() == 1.0 and weights[mine].min() < 1.0


# ----- boosters and the fit ----------------------------------------------------------------------
def test_quantile_boosters_bracket_the_salaries(records, matrix, builder, settings) -> None:
    y = np.log(records["salary_usd"].to_numpy(float))
    low, high = fit_quantile_boosters(matrix, y, builder, settings.ranges)
    assert low.num_trees() == ROUNDS and high.num_trees() == ROUNDS
    below = (y < low.predict(matrix, num_threads=1)).mean()
    above = (y > high.predict(matrix, num_threads=1)).mean()
    # In sample each tail misses about its share (0.1), never half.
    assert 0.03 < below < 0.25 and 0.03 < above < 0.25
    # The categorical columns are categories to the boosters.
    assert sorted(low.params.get("categorical_column", builder.categorical_indices)) == sorted(
        builder.categorical_indices
    )
    # A shared start (init_score) is not in the prediction: only the spread is used.
    started, _ = fit_quantile_boosters(matrix, y, builder, settings.ranges, np.full(len(y), 11.0))
    gap = np.median(low.predict(matrix, num_threads=1)) - np.median(started.predict(matrix))
    assert gap > 5


def test_fit_calibrates_each_tail_per_cell(fitted, records, settings) -> None:
    assert fitted.coverage == settings.ranges.coverage
    assert fitted.thin_below == settings.ranges.thin_support_below
    assert fitted.max_factor == settings.ranges.max_factor
    assert (fitted.salary_floor, fitted.salary_ceiling) == salary_bounds(settings)
    assert fitted.offsets_low.keys() == fitted.offsets_high.keys() == fitted.cell_records.keys()
    assert fitted.cell_records[cell_key(ANY, None)] == pytest.approx(0.2 * len(records), rel=0.5)
    assert all(n >= settings.ranges.min_calibration_cell for n in fitted.cell_records.values())
    # Per pay-level group too (country_levels.calibrate_ranges in the shipped settings).
    assert settings.country_levels.calibrate_ranges
    assert any(key.count("|") == 2 for key in fitted.offsets_low)
    assert fitted.levels is not None
    # Salaries mostly escape above: each tail its own correction.
    assert fitted.offsets_low != fitted.offsets_high
    assert sum(fitted.support.values()) == len(records)
    assert set(fitted.spread_floor) == {ANY, "aijobs", "postings"}


def test_calibration_reproduces_the_fitted_corrections(
    fitted, records, matrix, builder, settings
) -> None:
    """calibrate_range_model on the fit's own calibration records gives its corrections,
    each the conformal quantile of that tail's scores."""
    calib = calibration_split(records, settings.ranges, settings.evaluation.seed)
    point = level_point_model(records)(~calib, calib)
    spread = scale_of(fitted, matrix[calib])
    countries = records["country"][calib].tolist()
    support = support_counts(fitted.support, builder, matrix[calib], countries)
    blend = settings.ranges.model_copy(update={"spread_blend": 0.5})
    model = calibrate_range_model(
        records[calib], point, spread, support, (fitted.low, fitted.high), fitted.support, blend
    )
    sources = records["source"][calib].to_numpy()
    floors = spread_floors(spread, sources, 0.5)
    assert model.spread_floor == floors and floors["aijobs"] > 0
    scale = spread + np.array([floors[s] for s in sources])
    below, above = tail_scores(records["salary_usd"][calib].to_numpy(float), point, scale)
    weights = recency_weights(records[calib], settings.ranges.recency_half_life_months)
    thin = support < settings.ranges.thin_support_below
    assert model.offsets_high["*|*"] == finite_sample_quantile(above, 0.9, weights)
    assert model.offsets_low["*|*"] == finite_sample_quantile(below, 0.9, weights)
    for key in model.offsets_high:
        source, flag = key.split("|")
        mask = np.ones(len(sources), bool) if source == ANY else sources == source
        if flag != ANY:
            mask &= thin == (flag == "thin")
        assert model.cell_records[key] == mask.sum()
        assert model.offsets_high[key] == finite_sample_quantile(above[mask], 0.9, weights[mask])
    assert model.salary_floor == 0.0 and model.salary_ceiling == math.inf
    assert not any(key.count("|") == 2 for key in model.offsets_low)
    assert model.low is fitted.low and model.high is fitted.high
    assert {"aijobs|ok", "postings|ok"} <= model.offsets_high.keys()
    # Support at the threshold is enough support.
    at = calibrate_range_model(
        records[calib],
        point,
        spread,
        np.full(len(point), settings.ranges.thin_support_below),
        (fitted.low, fitted.high),
        fitted.support,
        blend,
    )
    assert not any(key.endswith("|thin") for key in at.offsets_high)
    assert at.cell_records["aijobs|ok"] == at.cell_records["aijobs|*"]


# ----- bounds ------------------------------------------------------------------------------------
def test_bounds_are_the_estimate_times_each_tails_correction(fitted, builder, matrix, records):
    rows = matrix[::4][:200]
    point = records["salary_usd"].to_numpy(float)[::4][:200]
    countries = records["country"].tolist()[::4][:200]
    floors = {ANY: 0.05, "aijobs": 0.02, "postings": 0.07}
    model = model_with(
        fitted,
        offsets_low={"*|*": 0.9},
        offsets_high={"*|*": 1.3},
        spread_floor=floors,
    )
    low, high, support = model.bounds(builder, rows, point, countries, num_threads=1)
    scale = scale_of(model, rows) + np.array([floors[s] for s in records["source"][::4][:200]])
    np.testing.assert_allclose(low, point * np.exp(-0.9 * scale))
    np.testing.assert_allclose(high, point * np.exp(1.3 * scale))
    assert support.tolist() == support_counts(fitted.support, builder, rows, countries).tolist()


def test_bounds_take_the_most_specific_calibrated_cell(fitted, builder, matrix, records):
    rows, point = matrix[::4][:300], records["salary_usd"].to_numpy(float)[::4][:300]
    countries = records["country"].tolist()[::4][:300]
    offsets = {"*|*": 0.5, "aijobs|*": 1.0, "aijobs|thin": 2.0, "postings|ok": 3.0}
    model = model_with(fitted, offsets_low=offsets, offsets_high=offsets)
    low, high, support = model.bounds(builder, rows, point, countries, num_threads=1)
    used = np.log(high / point) / scale_of(model, rows)
    sources = records["source"].to_numpy()[::4][:300]
    thin = support < model.thin_below
    expected = np.select(
        [(sources == "aijobs") & thin, sources == "aijobs", ~thin], [2.0, 1.0, 3.0], 0.5
    )
    assert len(set(expected.tolist())) == 4  # every cell is used on this sample
    np.testing.assert_allclose(used, expected)
    np.testing.assert_allclose(np.log(point / low) / scale_of(model, rows), expected)


def test_bounds_use_each_tails_drift_stretch_per_source(fitted, builder, matrix, records):
    rows, point = matrix[::4][:200], records["salary_usd"].to_numpy(float)[::4][:200]
    countries = records["country"].tolist()[::4][:200]
    drift = {"postings": {"low": 0.5, "high": 2.0}, "aijobs": {"high": 1.5}}
    plain = model_with(fitted)
    stretched = model_with(fitted, drift=drift)
    low0, high0, _ = plain.bounds(builder, rows, point, countries, num_threads=1)
    low1, high1, _ = stretched.bounds(builder, rows, point, countries, num_threads=1)
    sources = records["source"].to_numpy()[::4][:200]
    up = np.where(sources == "postings", 2.0, 1.5)
    down = np.where(sources == "postings", 0.5, 1.0)
    np.testing.assert_allclose(np.log(high1 / point), up * np.log(high0 / point))
    np.testing.assert_allclose(np.log(point / low1), down * np.log(point / low0))


def test_negative_corrections_never_cross_the_estimate(fitted, builder, matrix, records):
    rows, point = matrix[::4][:100], records["salary_usd"].to_numpy(float)[::4][:100]
    model = model_with(fitted, offsets_low={"*|*": -0.4}, offsets_high={"*|*": -0.2})
    low, high, _ = model.bounds(builder, rows, point, records["country"].tolist()[::4][:100])
    np.testing.assert_array_equal(low, point)
    np.testing.assert_array_equal(high, point)


def test_bounds_stop_at_max_factor_each_side(fitted, builder, matrix, records):
    rows, point = matrix[::4][:200], records["salary_usd"].to_numpy(float)[::4][:200]
    countries = records["country"].tolist()[::4][:200]
    wide = model_with(fitted, offsets_low={"*|*": 40.0}, offsets_high={"*|*": 40.0})
    free_low, free_high, _ = wide.bounds(builder, rows, point, countries)
    assert (free_high / point).min() > 3 and (point / free_low).min() > 3
    capped = model_with(
        fitted, offsets_low={"*|*": 40.0}, offsets_high={"*|*": 40.0}, max_factor=3.0
    )
    low, high, _ = capped.bounds(builder, rows, point, countries)
    np.testing.assert_allclose(high, point * 3.0)
    np.testing.assert_allclose(low, point / 3.0)
    # Where the cap does not bind it changes nothing.
    narrow = model_with(fitted, max_factor=3.0)
    np.testing.assert_allclose(
        narrow.bounds(builder, rows, point, countries)[1],
        model_with(fitted).bounds(builder, rows, point, countries)[1],
    )


def test_bounds_stay_within_the_salary_bounds_and_around_the_estimate(
    fitted, builder, matrix, records
):
    rows, point = matrix[::4][:200], records["salary_usd"].to_numpy(float)[::4][:200]
    countries = records["country"].tolist()[::4][:200]
    floor, ceiling = float(np.quantile(point, 0.3)), float(np.quantile(point, 0.7))
    model = model_with(
        fitted,
        offsets_low={"*|*": 3.0},
        offsets_high={"*|*": 3.0},
        salary_floor=floor,
        salary_ceiling=ceiling,
    )
    low, high, _ = model.bounds(builder, rows, point, countries)
    free_low, free_high, _ = model_with(
        fitted, offsets_low={"*|*": 3.0}, offsets_high={"*|*": 3.0}
    ).bounds(builder, rows, point, countries)
    np.testing.assert_allclose(low, np.minimum(np.maximum(free_low, floor), point))
    np.testing.assert_allclose(high, np.maximum(np.minimum(free_high, ceiling), point))
    # Some estimates sit below the floor and above the ceiling: the estimate wins.
    assert (low == point).any() and (high == point).any()
    assert (low == floor).any() and (high == ceiling).any()


def test_basis_names_the_cell_and_its_records(fitted, builder, matrix, records):
    rows = matrix[::4][:300]
    support = support_counts(fitted.support, builder, rows, records["country"].tolist()[::4][:300])
    basis = fitted.basis(builder, rows, support)
    groups = fitted.pay_groups(builder, rows)
    sources = source_names(builder, rows)
    for i in range(0, 300, 7):
        key = RangeModel.cell(fitted.offsets_low, sources[i], support[i] < 30, groups[i])
        assert basis[i] == (cell_label(key), fitted.cell_records[key])
    assert len({b for b in basis}) > 1
    without = model_with(fitted, offsets_low={"*|*": 1.0}, cell_records={"*|*": 77})
    assert without.pay_groups(builder, rows[:3]).tolist() == [None] * 3
    assert without.basis(builder, rows[:2], support[:2]) == [("all sources, any support", 77)] * 2
    assert model_with(fitted).basis(builder, rows[:1], support[:1]) == [
        ("all sources, any support", 0)
    ]


def test_a_model_without_a_global_cell_says_so(fitted) -> None:
    with pytest.raises(KeyError, match="no global offset"):
        RangeModel.offset({"aijobs|ok": 1.0}, "postings", False)
    assert RangeModel.offset({"aijobs|ok": 1.0, "*|*": 2.0}, "aijobs", False) == 1.0
    assert model_with(fitted, spread_floor={ANY: 0.2, "aijobs": 0.1}).floor_of("postings") == 0.2
    assert model_with(fitted, spread_floor={ANY: 0.2, "aijobs": 0.1}).floor_of("aijobs") == 0.1
    assert model_with(fitted).floor_of("aijobs") == 0.0


# ----- storage -----------------------------------------------------------------------------------
def _read_booster(path):
    import lightgbm as lgb

    return lgb.Booster(model_file=str(path))


def test_save_and_load_keep_every_number(fitted, builder, matrix, records, tmp_path) -> None:
    model = model_with(
        fitted,
        offsets_low=fitted.offsets_low,
        offsets_high=fitted.offsets_high,
        spread_floor={ANY: 0.03, "aijobs": 0.01},
        salary_floor=15_000.0,
        salary_ceiling=900_000.0,
        max_factor=3.0,
        drift={"postings": {"low": 1.1, "high": 1.7}},
        cell_records=fitted.cell_records,
    )
    model.save(tmp_path)
    again = RangeModel.load(tmp_path, _read_booster)
    for name in (
        "coverage",
        "offsets_low",
        "offsets_high",
        "support",
        "thin_below",
        "spread_floor",
        "salary_floor",
        "salary_ceiling",
        "max_factor",
        "drift",
        "cell_records",
    ):
        assert getattr(again, name) == getattr(model, name), name
    rows, point = matrix[:100], records["salary_usd"].to_numpy(float)[:100]
    countries = records["country"].tolist()[:100]
    pairs = zip(
        again.bounds(builder, rows, point, countries),
        model.bounds(builder, rows, point, countries),
        strict=True,
    )
    for a, b in pairs:
        np.testing.assert_allclose(a, b)


def test_unbounded_ranges_round_trip_as_unbounded(fitted, tmp_path) -> None:
    model_with(fitted).save(tmp_path)
    stored = json.loads((tmp_path / RANGES_FILE).read_text())
    assert stored["salary_ceiling"] is None and stored["max_factor"] is None
    assert stored["format"] == 2
    again = RangeModel.load(tmp_path, _read_booster)
    assert again.salary_ceiling == math.inf and again.max_factor == math.inf
    assert again.salary_floor == 0.0 and again.drift == {} and again.cell_records == {}


def test_ranges_of_another_format_are_refused(fitted, tmp_path) -> None:
    model_with(fitted).save(tmp_path)
    stored = json.loads((tmp_path / RANGES_FILE).read_text())
    del stored["drift"], stored["cell_records"], stored["salary_floor"]
    (tmp_path / RANGES_FILE).write_text(json.dumps(stored))
    assert RangeModel.load(tmp_path, _read_booster).drift == {}
    (tmp_path / RANGES_FILE).write_text(json.dumps({**stored, "format": 1}))
    with pytest.raises(ValueError, match=r"older salarymodel.*retrain"):
        RangeModel.load(tmp_path, _read_booster)


# ----- one fit, checked piece by piece ---------------------------------------------------------
@pytest.mark.parametrize("quantile_start", [False, True])
def test_a_fit_is_its_pieces(records, matrix, builder, settings, levels, quantile_start) -> None:
    """fit_range_model = its split, its boosters (started from the levels or not), the point
    model on the proper rows, and calibrate_range_model on the calibration rows."""
    config = settings.ranges
    level_config = settings.country_levels.model_copy(update={"quantile_start": quantile_start})
    calls = []
    point_model = level_point_model(records)

    def point(proper: np.ndarray, calib: np.ndarray) -> np.ndarray:
        calls.append((proper, calib))
        return point_model(proper, calib)

    seed = settings.evaluation.seed
    model = fit_range_model(
        records, matrix, builder, config, seed, point, (9_000.0, 800_000.0), levels, level_config
    )
    calib = calibration_split(records, config, seed)
    assert len(calls) == 1
    np.testing.assert_array_equal(calls[0][0], ~calib)
    np.testing.assert_array_equal(calls[0][1], calib)
    y = np.log(records["salary_usd"].to_numpy(float))
    init = levels.offset(builder, matrix[~calib]) if quantile_start else None
    low, high = fit_quantile_boosters(matrix[~calib], y[~calib], builder, config, init)
    np.testing.assert_array_equal(model.low.predict(matrix), low.predict(matrix))
    np.testing.assert_array_equal(model.high.predict(matrix), high.predict(matrix))
    countries = records["country"].tolist()
    support = support_table(builder, matrix, countries)
    assert model.support == support
    calib_countries = [countries[i] for i in np.flatnonzero(calib)]
    assert any(not isinstance(c, str) for c in calib_countries)  # missing countries too
    expected = calibrate_range_model(
        records[calib],
        point_model(~calib, calib),
        log_spread(low.predict(matrix[calib]), high.predict(matrix[calib])),
        support_counts(support, builder, matrix[calib], calib_countries),
        (low, high),
        support,
        config,
        (9_000.0, 800_000.0),
        levels.groups(builder, matrix[calib]),
    )
    for name in ("offsets_low", "offsets_high", "cell_records", "spread_floor", "thin_below"):
        assert getattr(model, name) == getattr(expected, name), name
    assert (model.salary_floor, model.salary_ceiling) == (9_000.0, 800_000.0)
    assert model.levels is levels
    # Without calibrate_ranges, no pay-level cells.
    plain = fit_range_model(
        records,
        matrix,
        builder,
        config,
        seed,
        point_model,
        levels=levels,
        level_config=level_config.model_copy(update={"calibrate_ranges": False}),
    )
    assert plain.offsets_low.keys() == {k for k in expected.offsets_low if k.count("|") == 1}
    assert (plain.salary_floor, plain.salary_ceiling) == (0.0, math.inf)


def test_support_at_the_threshold_is_not_thin(fitted, builder, matrix, records) -> None:
    rows, point = matrix[::10][:150], records["salary_usd"].to_numpy(float)[::10][:150]
    countries = records["country"].tolist()[::10][:150]
    keys = support_keys(builder, rows, countries)
    offsets = {"*|*": 1.0, "aijobs|thin": 2.0, "postings|thin": 2.0}
    for count, thin in ((30, False), (29, True)):
        model = model_with(
            fitted,
            support=dict.fromkeys(keys, count),
            offsets_low=offsets,
            offsets_high=offsets,
            cell_records={"*|*": 5, "aijobs|thin": 6, "postings|thin": 7},
        )
        _, high, support = model.bounds(builder, rows, point, countries)
        assert (support == count).all()
        used = np.log(high / point) / scale_of(model, rows)
        np.testing.assert_allclose(used, 2.0 if thin else 1.0)
        labels = {label for label, _ in model.basis(builder, rows, support)}
        assert labels == (
            {"aijobs, thin support", "postings, thin support"}
            if thin
            else {"all sources, any support"}
        )


def test_bounds_take_a_pay_level_groups_own_cell(fitted, builder, matrix, records, levels):
    """With country levels, a (source, thin, group) cell wins over its source's cells."""
    rows, point = matrix[::4][:300], records["salary_usd"].to_numpy(float)[::4][:300]
    countries = records["country"].tolist()[::4][:300]
    groups = levels.groups(builder, rows)
    sources = records["source"].to_numpy()[::4][:300]
    group = pd.Series(groups[sources == "postings"]).mode()[0]
    offsets = {
        "*|*": 0.5,
        cell_key("postings", False, group): 3.0,
        cell_key("postings", True, group): 2.0,
    }
    model = model_with(fitted, offsets_low=offsets, offsets_high=offsets)
    model.levels = levels
    low, high, support = model.bounds(builder, rows, point, countries, num_threads=1)
    mine = (sources == "postings") & (groups == group)
    thin = support < model.thin_below
    expected = np.where(mine, np.where(thin, 2.0, 3.0), 0.5)
    assert {2.0, 3.0, 0.5} <= set(expected.tolist())
    np.testing.assert_allclose(np.log(high / point) / scale_of(model, rows), expected)
    np.testing.assert_allclose(np.log(point / low) / scale_of(model, rows), expected)
