"""The percentile calibration map, unit by unit, on real raw percentiles (fast).

Raw percentiles here are real salaries read against their source's median and
10th-90th percentile range (``ranges.salary_percentile``); tests/model/
test_group_evaluation.py checks the map on grouped-CV out-of-fold records.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from helpers.real_rows import real_records, real_settings

from salarymodel.core.percentile_calibration import (
    CALIBRATION_FILE,
    OVERALL,
    US,
    PercentileCalibration,
    PercentileCurve,
    apply_many,
    compose,
    cross_fitted,
    drift_for,
    drift_key,
    fit_calibration,
    fit_curve,
    group_description,
)
from salarymodel.core.percentile_drift import drift_corrected, fit_drift
from salarymodel.core.ranges import salary_percentile


@pytest.fixture(scope="module")
def raw_and_groups() -> tuple[np.ndarray, np.ndarray]:
    """Each real record's raw percentile against its source, and a group: US or not."""
    records = real_records()
    raw = np.empty(len(records))
    for source in ("aijobs", "postings"):
        mine = (records["source"] == source).to_numpy()
        pay = records["salary_usd"].to_numpy(float)[mine]
        mid = float(np.median(pay))
        low, high = np.quantile(pay, [0.25, 0.75]).tolist()  # too narrow: tails overconfident
        raw[mine] = [salary_percentile(s, mid, low, high, 0.8) for s in pay]
    groups = np.where(records["country"] == "US", US, "<35%").astype(object)
    return raw, groups


def test_a_curve_interpolates_between_knots_and_is_flat_outside() -> None:
    curve = PercentileCurve("x", 10, (10.0, 20.0, 40.0, 40.0, 80.0), (0.0, 25.0, 50.0, 75.0, 100.0))
    assert curve.apply(5.0) == 0.0 and curve.apply(10.0) == 0.0
    assert curve.apply(95.0) == 100.0 and curve.apply(80.0) == 100.0
    assert curve.apply(15.0) == pytest.approx(12.5)
    assert curve.apply(20.0) == pytest.approx(25.0)
    assert curve.apply(30.0) == pytest.approx(37.5)
    assert curve.apply(40.0) == pytest.approx(75.0)  # a flat knot: its last value
    assert curve.apply(60.0) == pytest.approx(87.5)


def test_a_curve_with_repeated_end_knots_reads_its_first_and_last_value() -> None:
    """Many records share the lowest raw percentile: it maps to the first calibrated one."""
    curve = PercentileCurve("x", 9, (0.0, 0.0, 0.0, 50.0, 100.0, 100.0), (0, 20, 40, 60, 80, 100))
    assert curve.apply(0.0) == 0.0 and curve.apply(100.0) == 100.0
    np.testing.assert_allclose(apply_many(curve, np.array([0.0, 100.0])), [0.0, 100.0])
    assert curve.apply(25.0) == pytest.approx(50.0)
    # Whole-number percentiles (a list of ints) read as the same floats.
    np.testing.assert_allclose(apply_many(curve, [0, 25, 100]), [0.0, 50.0, 100.0])


def test_apply_many_gives_the_same_numbers_as_apply(raw_and_groups) -> None:
    raw, _ = raw_and_groups
    curve = fit_curve(raw, OVERALL, 11)
    probes = np.r_[raw[:200], -1.0, 0.0, 100.0, 101.0, np.array(curve.raw)]
    np.testing.assert_allclose(apply_many(curve, probes), [curve.apply(v) for v in probes])
    step = PercentileCurve("x", 3, (10.0, 20.0, 20.0, 30.0), (0.0, 40.0, 60.0, 100.0))
    values = np.array([5.0, 10.0, 15.0, 19.9, 20.0, 25.0, 30.0, 35.0])
    np.testing.assert_allclose(apply_many(step, values), [step.apply(v) for v in values])


def test_a_fitted_curve_is_the_empirical_distribution(raw_and_groups) -> None:
    raw, _ = raw_and_groups
    curve = fit_curve(raw, "g", 101)
    assert curve.group == "g" and curve.records == len(raw) and len(curve.raw) == 101
    assert curve.calibrated == tuple(float(v) for v in np.linspace(0, 100, 101))
    assert all(b >= a for a, b in itertools.pairwise(curve.raw))
    assert curve.raw[0] == raw.min() and curve.raw[-1] == raw.max()
    # A record's calibrated percentile is about the share of records below it.
    calibrated = apply_many(curve, raw)
    share_below = np.array([(raw < r).mean() * 100 for r in raw])
    gap = np.abs(calibrated - share_below)  # repeated salaries tie
    assert gap.max() < 3.0 and gap.mean() < 0.5
    # The raw tails were overconfident: the map pulls them in.
    assert (raw < 5).mean() > 0.1 and abs((calibrated < 5).mean() - 0.05) < 0.01


def test_fit_calibration_gives_big_enough_groups_their_own_curve(raw_and_groups) -> None:
    raw, groups = raw_and_groups
    n_us = int((groups == US).sum())
    n_other = len(groups) - n_us
    assert 100 < n_other < n_us
    table = {"aijobs": {"IN": "<35%"}}
    both = fit_calibration(raw, groups, table, n_other, 21)
    assert set(both.curves) == {OVERALL, US, "<35%"} and both.country_groups == table
    assert both.curves["<35%"].records == n_other and both.curves[OVERALL].records == len(raw)
    assert both.curves[US].raw == fit_curve(raw[groups == US], US, 21).raw
    one = fit_calibration(raw, groups, {}, n_other + 1, 21)
    assert set(one.curves) == {OVERALL, US}
    # An "all" group is the overall curve, never a group's own.
    named_all = fit_calibration(raw, np.where(groups == US, groups, OVERALL), {}, 1, 21)
    assert named_all.curves[OVERALL].records == len(raw)


def test_cross_fitting_uses_only_the_other_folds(raw_and_groups) -> None:
    raw, groups = raw_and_groups
    folds = np.arange(len(raw)) % 3
    out = cross_fitted(raw, groups, folds, 150, 21)
    assert not np.isnan(out).any()
    for fold in range(3):
        mine = folds == fold
        fitted = fit_calibration(raw[~mine], groups[~mine], {}, 150, 21)
        for group in (US, "<35%"):
            rows = mine & (groups == group)
            curve = fitted.curves.get(group, fitted.curves[OVERALL])
            np.testing.assert_allclose(out[rows], apply_many(curve, raw[rows]))
    # Without a group curve (too few records) a group takes the overall one.
    pooled = cross_fitted(raw, groups, folds, 10**6, 21)
    mine = folds == 0
    overall = fit_calibration(raw[~mine], groups[~mine], {}, 10**6, 21).curves[OVERALL]
    np.testing.assert_allclose(pooled[mine], apply_many(overall, raw[mine]))
    assert not np.allclose(pooled, out)


def test_a_jobs_group_is_found_by_source_then_any_source() -> None:
    curve = PercentileCurve(OVERALL, 1, (0.0, 100.0), (0.0, 100.0))
    us = PercentileCurve(US, 1, (0.0, 50.0, 100.0), (0.0, 80.0, 100.0))
    low = PercentileCurve("<35%", 1, (0.0, 50.0, 100.0), (0.0, 20.0, 100.0))
    calibration = PercentileCalibration(
        {OVERALL: curve, US: us, "<35%": low},
        {"aijobs": {"IN": "<35%", "DE": "60-90%"}, "postings": {"IN": "90%+", "BR": "<35%"}},
    )
    assert calibration.group_of("postings", US) == US
    assert calibration.group_of("aijobs", "IN") == "<35%"
    assert calibration.group_of("postings", "IN") == "90%+"
    assert calibration.group_of("aijobs", "BR") == "<35%"  # another source ranked it
    assert calibration.group_of(None, "BR") == "<35%"
    assert calibration.group_of("aijobs", "ZZ") == OVERALL
    assert calibration.group_of("aijobs", None) == OVERALL
    assert calibration.curve_for("aijobs", "DE") is curve  # a group without a curve
    assert calibration.curve_for("aijobs", "IN") is low
    assert calibration.calibrate(50.0, "aijobs", "IN") == 20.0
    assert calibration.calibrate(50.0, "postings", US) == 80.0
    assert calibration.calibrate(50.0, "aijobs", "ZZ") == 50.0
    # A country each source ranks differently reads the job's own source's group.
    assert calibration.curve_for("postings", "IN") is curve
    assert calibration.calibrate(50.0, "postings", "IN") == 50.0


def test_basis_and_group_words() -> None:
    assert group_description(US) == "US jobs"
    assert group_description(OVERALL) == "jobs in every country"
    assert group_description("<35%") == "jobs in countries paying <35% of US pay"
    assert PercentileCurve(US, 1234, (0.0,), (0.0,)).basis() == "1,234 records of US jobs"


def test_the_map_round_trips_through_its_json_file(raw_and_groups, tmp_path) -> None:
    raw, groups = raw_and_groups
    table = {"aijobs": {"IN": "<35%"}, "postings": {"DE": "60-90%"}}
    calibration = fit_calibration(raw, groups, table, 100, 21)
    assert PercentileCalibration.load(tmp_path) is None  # a bundle without one
    calibration.save(tmp_path)
    again = PercentileCalibration.load(tmp_path)
    assert again == calibration
    stored = json.loads((tmp_path / CALIBRATION_FILE).read_text())
    assert stored["format"] == 1 and set(stored["curves"]) == set(calibration.curves)


def test_a_map_of_another_format_or_without_its_overall_curve_is_refused(
    raw_and_groups, tmp_path
) -> None:
    raw, groups = raw_and_groups
    fit_calibration(raw, groups, {}, 100, 21).save(tmp_path)
    path = tmp_path / CALIBRATION_FILE
    stored = json.loads(path.read_text())
    path.write_text(json.dumps({**stored, "format": 2}))
    with pytest.raises(ValueError, match="unknown percentile calibration format"):
        PercentileCalibration.load(tmp_path)
    del stored["curves"][OVERALL]
    path.write_text(json.dumps(stored))
    with pytest.raises(ValueError, match="no overall curve"):
        PercentileCalibration.load(tmp_path)


# ----- the drift map one period ahead (core.percentile_drift) ------------------------------------
@pytest.fixture(scope="module")
def backtest_like(raw_and_groups) -> dict[str, np.ndarray]:
    """The real records' raw percentiles as in-time ones, with each record's source and a
    backtest fold per source and period ("postings 2023-1" ... by quarter, "aijobs 2024")."""
    raw, groups = raw_and_groups
    records = real_records()
    sources = records["source"].to_numpy(dtype=object)
    quarter = ((records["month"].fillna(1) - 1) // 3 + 1).astype(int).astype(str)
    period = records["year"].astype(int).astype(str).where(sources == "aijobs", "2023-" + quarter)
    folds = (records["source"] + " " + period).to_numpy(dtype=object)
    return {"calibrated": raw, "sources": sources, "groups": groups, "folds": folds}


def drift_config(**changes):
    """The shipped drift settings (postings only, prior 200), small knots unless changed."""
    shipped = real_settings().percentile_calibration
    return shipped.model_copy(update={"knots": 21, "drift_min_group_records": 50, **changes})


def shrunk_knots(values: np.ndarray, toward: np.ndarray, prior: float, knots: int) -> np.ndarray:
    """``values``' ECDF knots blended with ``toward``: (n x own + prior x toward) / (n + prior)."""
    own = np.array(fit_curve(values, "x", knots).raw)
    return (len(values) * own + prior * toward) / (len(values) + prior)


def test_drift_maps_are_each_sources_ecdf_shrunk_toward_no_drift(backtest_like) -> None:
    data = backtest_like
    config = drift_config()
    assert config.drift_sources == ["postings"] and config.drift_prior == 200
    drift = fit_drift(data["calibrated"], data["sources"], data["groups"], config)
    postings = data["sources"] == "postings"
    non_us = postings & (data["groups"] != US)
    assert non_us.sum() >= 50  # both postings groups are big enough for their own map
    # The survey (not a drift source) gets none: its in-time percentile stands.
    assert set(drift) == {"postings|all", "postings|US", "postings|<35%"}
    pooled = drift["postings|all"]
    identity = np.linspace(0.0, 100.0, 21)
    assert pooled.group == OVERALL and pooled.records == postings.sum()
    assert pooled.calibrated == tuple(identity.tolist())
    np.testing.assert_allclose(
        pooled.raw, shrunk_knots(data["calibrated"][postings], identity, 200, 21)
    )
    # A group's map is its own ECDF shrunk toward its source's map, not toward none.
    us = postings & (data["groups"] == US)
    mine = drift["postings|US"]
    assert mine.group == US and mine.records == us.sum() and mine.calibrated == pooled.calibrated
    expected = shrunk_knots(data["calibrated"][us], np.array(pooled.raw), 200, 21)
    np.testing.assert_allclose(mine.raw, expected)
    assert all(b >= a for a, b in itertools.pairwise(mine.raw))  # monotone
    # Without a prior the source's map is its plain ECDF: the tails really drifted.
    plain = fit_drift(
        data["calibrated"], data["sources"], data["groups"], drift_config(drift_prior=0)
    )
    np.testing.assert_allclose(
        plain["postings|all"].raw, fit_curve(data["calibrated"][postings], OVERALL, 21).raw
    )
    assert np.abs(np.array(plain["postings|all"].raw) - identity).max() > 5


def test_a_small_group_or_a_source_not_listed_gets_no_drift_map(backtest_like) -> None:
    data = backtest_like
    non_us = int(((data["sources"] == "postings") & (data["groups"] != US)).sum())
    args = data["calibrated"], data["sources"], data["groups"]
    # Exactly at the threshold a group gets its own map; one record short, it takes its source's.
    assert "postings|<35%" in fit_drift(*args, drift_config(drift_min_group_records=non_us))
    small = fit_drift(*args, drift_config(drift_min_group_records=non_us + 1))
    assert set(small) == {"postings|all", "postings|US"}
    both = fit_drift(*args, drift_config(drift_sources=["aijobs", "postings"]))
    assert {"aijobs|all", "postings|all"} <= set(both)
    assert both["aijobs|all"].records == (data["sources"] == "aijobs").sum()
    assert fit_drift(*args, drift_config(drift_sources=[])) == {}
    # Records already labelled "all" are the source's own map, never a group's over it.
    labelled_all = np.full(len(data["groups"]), OVERALL, dtype=object)
    only = fit_drift(data["calibrated"], data["sources"], labelled_all, drift_config())
    assert set(only) == {"postings|all"}
    np.testing.assert_allclose(
        only["postings|all"].raw, fit_drift(*args, drift_config())["postings|all"].raw
    )


def test_each_backtest_fold_reads_through_drift_from_its_sources_earlier_folds_only(
    backtest_like,
) -> None:
    data = backtest_like
    config = drift_config()
    keys = ("calibrated", "sources", "groups", "folds")
    out = drift_corrected(*(data[k] for k in keys), config)
    folds = data["folds"]
    first = folds == "postings 2023-1"
    assert first.sum() > 50
    # The first fold of a source has no earlier one; the survey is no drift source.
    np.testing.assert_array_equal(out[first], data["calibrated"][first])
    survey = data["sources"] == "aijobs"
    np.testing.assert_array_equal(out[survey], data["calibrated"][survey])
    for name in ("postings 2023-2", "postings 2023-4"):
        rows = folds == name
        earlier = (data["sources"] == "postings") & (folds < name)
        drift = fit_drift(*(data[k][earlier] for k in keys[:3]), config)
        for group in (US, "<35%"):
            these = rows & (data["groups"] == group)
            curve = drift.get(f"postings|{group}") or drift["postings|all"]
            np.testing.assert_allclose(out[these], apply_many(curve, data["calibrated"][these]))
    later = data["sources"] == "postings"
    assert not np.allclose(out[later & ~first], data["calibrated"][later & ~first])
    # Whole-number percentiles (a list of ints) read as the same floats, never truncated.
    whole = np.round(data["calibrated"])
    rest = [data[k] for k in keys[1:]]
    as_ints = drift_corrected(whole.astype(int).tolist(), *rest, config)
    np.testing.assert_allclose(as_ints, drift_corrected(whole, *rest, config))
    assert not np.allclose(as_ints, np.round(as_ints))
    # No look-ahead: changing the last fold's records changes no earlier fold's reading.
    moved = data["calibrated"].copy()
    last = folds == "postings 2023-4"
    moved[last] = 100 - moved[last]
    again = drift_corrected(moved, *(data[k] for k in keys[1:]), config)
    np.testing.assert_array_equal(again[~last], out[~last])


def test_the_served_curve_is_the_groups_map_then_its_drift(raw_and_groups) -> None:
    raw, groups = raw_and_groups
    table = {"postings": {"IN": "<35%", "DE": "60-90%"}, "aijobs": {"IN": "<35%"}}
    in_time = fit_calibration(raw, groups, table, 100, 21)
    source_drift = PercentileCurve(OVERALL, 500, (0.0, 30.0, 100.0), (0.0, 50.0, 100.0))
    us_drift = PercentileCurve(US, 300, (0.0, 70.0, 100.0), (0.0, 50.0, 100.0))
    drift = {drift_key("postings", OVERALL): source_drift, drift_key("postings", US): us_drift}
    served = PercentileCalibration(in_time.curves, table, drift)
    # A US posting: its group's in-time map, then the US postings' own drift map.
    curve = served.curve_for("postings", US)
    us = in_time.curves[US]
    assert (curve.group, curve.records, curve.raw) == (US, us.records, us.raw)
    assert curve.basis() == us.basis()  # "calibrated on N records of US jobs", as before
    for value in (*us.raw[1:-1:3], 3.0, 50.0, 97.0):
        assert served.calibrate(value, "postings", US) == pytest.approx(
            us_drift.apply(us.apply(value)), abs=0.5
        )
    for value in us.raw:  # exact at the knots
        assert curve.apply(value) == pytest.approx(us_drift.apply(us.apply(value)))
    assert compose(us, None) is us  # no drift measured: the in-time map itself
    # A group without its own drift map takes its source's; the survey has none.
    other = in_time.curves["<35%"]
    assert served.calibrate(40.0, "postings", "IN") == pytest.approx(
        source_drift.apply(other.apply(40.0)), abs=0.5
    )
    assert served.drift_curve("postings", "<35%") is source_drift
    assert served.drift_curve("postings", US) is us_drift
    assert served.drift_curve("aijobs", US) is None and served.drift_curve(None, US) is None
    assert served.curve_for("aijobs", "IN") is other
    assert served.calibrate(40.0, "aijobs", US) == us.apply(40.0)
    assert drift_for(drift, "postings", "60-90%") is source_drift
    assert drift_for({}, "postings", US) is None
    assert drift_for({drift_key("postings", US): us_drift}, "postings", "<35%") is None


def test_the_drift_maps_round_trip_and_a_bundle_before_them_loads(raw_and_groups, tmp_path) -> None:
    raw, groups = raw_and_groups
    in_time = fit_calibration(raw, groups, {"postings": {"IN": "<35%"}}, 100, 21)
    drift = {
        "postings|all": PercentileCurve(OVERALL, 500, (0.0, 30.0, 100.0), (0.0, 50.0, 100.0)),
        "postings|<35%": PercentileCurve("<35%", 120, (0.0, 60.0, 100.0), (0.0, 50.0, 100.0)),
    }
    served = PercentileCalibration(in_time.curves, in_time.country_groups, drift)
    served.save(tmp_path)
    again = PercentileCalibration.load(tmp_path)
    assert again == served and again.drift["postings|<35%"].group == "<35%"
    assert again.calibrate(50.0, "postings", "IN") == served.calibrate(50.0, "postings", "IN")
    # A bundle saved before the drift maps has no "drift" entry: in-time percentiles.
    path = tmp_path / CALIBRATION_FILE
    stored = json.loads(path.read_text())
    del stored["drift"]
    path.write_text(json.dumps(stored))
    old = PercentileCalibration.load(tmp_path)
    assert old is not None and old.drift == {} and old.curves == in_time.curves
