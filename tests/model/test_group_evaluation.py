"""Per-group accuracy, ranges and the calibrated percentile, on the shipped records.

The out-of-fold frame here is real: every record's salary, an estimate from
the group-median baseline fit on the other folds (no LightGBM: fast), and a
constant multiplicative band fit on the other folds at half the width it
needs (the overconfident tails issue 22 measured on the served percentile).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from salarymodel.core.percentile_calibration import (
    CALIBRATION_FILE,
    OVERALL,
    US,
    PercentileCalibration,
    apply_many,
    cross_fitted,
    fit_calibration,
)
from salarymodel.core.percentile_drift import drift_corrected, fit_drift
from salarymodel.core.ranges import salary_percentile
from salarymodel.core.track_record import TRACK_RECORD_FILE, TrackRecord
from salarymodel.data.dataset import load_training_data
from salarymodel.data.role_family import with_role_family
from salarymodel.evaluation.baselines import group_median
from salarymodel.evaluation.folds import assign_folds
from salarymodel.evaluation.groups import (
    NO_COUNTRY,
    UNRANKED,
    country_pay_groups,
    evaluate_groups,
    group_table,
    map_groups,
    pay_level_labels,
    pay_level_of,
    percentile_check,
    raw_percentiles,
    split_tables,
    with_groups,
)
from salarymodel.evaluation.report import row_keys

# Reading and grouping every shipped record once takes 30-40 s on a busy machine.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def records(settings, sources) -> pd.DataFrame:
    data = load_training_data(settings, sources, accepted=False)
    return with_role_family(data.records.reset_index(drop=True), settings)


@pytest.fixture(scope="module")
def oof(records, settings) -> pd.DataFrame:
    """Each record's out-of-fold estimate and an overconfident band (see the module doc)."""
    folds = assign_folds(records, settings.evaluation.n_folds, settings.evaluation.seed)
    salary = records["salary_usd"].to_numpy(float)
    estimate, low, high = (np.full(len(records), np.nan) for _ in range(3))
    for fold in np.unique(folds):
        test = folds == fold
        train = records[~test]
        estimate[test] = group_median(train, records[test], settings)
        train_guess = group_median(train, train, settings)
        k = 0.5 * np.quantile(
            np.abs(np.log(train["salary_usd"].to_numpy(float) / train_guess)), 0.8
        )
        low[test], high[test] = estimate[test] * np.exp(-k), estimate[test] * np.exp(k)
    return row_keys(records).assign(
        fold=folds, salary_usd=salary, estimate_usd=estimate, low_usd=low, high_usd=high
    )


# ----- groups ----------------------------------------------------------------------------------
def test_pay_level_labels_and_cuts(settings) -> None:
    cuts = settings.group_evaluation.pay_level_cuts
    assert pay_level_labels(cuts) == ["under 35%", "35-60%", "60-90%", "90% and over"]
    assert pay_level_of(0.2, cuts) == "under 35%"
    assert pay_level_of(0.35, cuts) == "35-60%"  # a cut belongs to the group above it
    assert pay_level_of(0.89, cuts) == "60-90%"
    assert pay_level_of(1.3, cuts) == "90% and over"


def test_india_is_under_35_percent_in_the_survey_and_the_us_is_its_own_group(
    records, settings
) -> None:
    groups = country_pay_groups(records, settings.group_evaluation)
    survey = records[records["source"] == "aijobs"]
    medians = survey.groupby("country")["salary_usd"].median()
    assert medians["IN"] / medians["US"] < 0.35  # by hand: the survey's own medians
    assert groups["aijobs"]["IN"] == "under 35%"
    assert groups["aijobs"][US] == US and groups["postings"][US] == US
    # The postings put India much nearer the US: each source is grouped by its own level.
    postings = records[records["source"] == "postings"]
    level = postings.groupby("country")["salary_usd"].median()
    assert groups["postings"]["IN"] == pay_level_of(level["IN"] / level["US"], [0.35, 0.6, 0.9])
    assert groups["postings"]["IN"] != "under 35%"


def test_a_country_with_few_records_in_a_source_takes_the_pooled_level(records, settings) -> None:
    config = settings.group_evaluation
    counts = records.groupby(["source", "country"]).size()
    rare = counts[(counts < config.min_country_records) & (counts > 0)].index[0]
    source, country = rare
    pooled = records.groupby("country")["salary_usd"].median()
    expected = pay_level_of(pooled[country] / pooled[US], config.pay_level_cuts)
    assert country_pay_groups(records, config)[source][country] == expected


def test_records_without_a_state_column_get_no_state_rows_and_with_one_do(oof, settings) -> None:
    # Records trained since the location merge carry a state column: drop it
    # to see a frame without one.
    head = oof.head(3000).drop(columns="state", errors="ignore")
    frame = with_groups(head, country_pay_groups(oof, settings.group_evaluation))
    assert "state" not in frame.columns
    assert not any(row["dimension"] == "state" for row in group_table(frame, 60))
    us = (frame["country"] == US).to_numpy()
    state = np.where(us, np.where(np.arange(len(frame)) % 2 == 0, "CA", "TX"), None)
    rows = group_table(frame.assign(state=state), 60)
    states = {row["group"]: row["n"] for row in rows if row["dimension"] == "state"}
    assert set(states) == {"CA", "TX"} and sum(states.values()) == int(us.sum())
    # A state with fewer records than the minimum gets no row of its own.
    rare = group_table(frame.assign(state=np.where(us, "CA", None)), int(us.sum()) + 1)
    assert not any(row["dimension"] == "state" for row in rare)


# ----- the per-group table --------------------------------------------------------------------
def test_group_table_matches_a_hand_computation_on_real_german_and_indian_records(
    oof, settings
) -> None:
    groups = country_pay_groups(oof, settings.group_evaluation)
    rows = oof[(oof["source"] == "aijobs") & oof["country"].isin(["DE", "IN"])].head(60)
    table = group_table(with_groups(rows, groups), settings.group_evaluation.min_place_records)
    india = next(r for r in table if r["dimension"] == "pay_level" and r["group"] == "under 35%")
    mine = [r for r in rows.to_dict("records") if r["country"] == "IN"]
    assert india["n"] == len(mine) > 0
    ratios = [r["estimate_usd"] / r["salary_usd"] for r in mine]
    assert india["median_ratio"] == pytest.approx(statistics.median(ratios) - 1)
    errors = [abs(r["estimate_usd"] - r["salary_usd"]) for r in mine]
    assert india["mae_usd"] == pytest.approx(sum(errors) / len(mine))
    below = sum(r["salary_usd"] < r["low_usd"] for r in mine)
    above = sum(r["salary_usd"] > r["high_usd"] for r in mine)
    assert india["below_low"] == pytest.approx(below / len(mine))
    assert india["above_high"] == pytest.approx(above / len(mine))
    assert india["coverage"] == pytest.approx(1 - (below + above) / len(mine))
    overall = next(r for r in table if r["dimension"] == "all")
    assert overall["n"] == 60


def test_unranked_countries_are_named_not_pooled_into_all(oof, settings) -> None:
    groups = country_pay_groups(oof, settings.group_evaluation)
    unknown = oof.head(5).assign(country=[None, "ZZ", "US", "DE", float("nan")])
    levels = with_groups(unknown, groups)["pay_level"].tolist()
    assert levels[:3] == [NO_COUNTRY, UNRANKED, US] and levels[4] == NO_COUNTRY
    # Both take the overall map, as a served job of an unranked country does.
    assert map_groups(with_groups(unknown, groups))[[0, 1]].tolist() == [OVERALL, OVERALL]


# ----- the percentile -------------------------------------------------------------------------
def test_vectorised_raw_percentiles_are_salary_percentile(oof) -> None:
    rows = oof.sample(200, random_state=3)
    expected = [
        salary_percentile(r["salary_usd"], r["estimate_usd"], r["low_usd"], r["high_usd"], 0.8)
        for r in rows.to_dict("records")
    ]
    assert raw_percentiles(rows, 0.8) == pytest.approx(expected, abs=1e-9)


def test_the_map_is_monotone_and_calibrates_held_out_real_records(oof, settings) -> None:
    config = settings.group_evaluation
    groups = country_pay_groups(oof, config)
    frame = with_groups(oof, groups)
    frame = frame.assign(raw_percentile=raw_percentiles(frame, settings.ranges.coverage))
    fit_rows = frame["fold"].isin([0, 1, 2]).to_numpy()  # whole folds: whole groups
    held = frame[~fit_rows]
    calibration = fit_calibration(
        frame.loc[fit_rows, "raw_percentile"].to_numpy(),
        frame.loc[fit_rows, "pay_level"].to_numpy(),
        groups,
        settings.percentile_calibration.min_group_records,
        settings.percentile_calibration.knots,
    )
    assert {OVERALL, US} <= set(calibration.curves)
    for curve in calibration.curves.values():
        assert np.all(np.diff(curve.raw) >= 0) and np.all(np.diff(curve.calibrated) > 0)
        grid = np.linspace(0, 100, 1001)
        assert np.all(np.diff(apply_many(curve, grid)) >= 0)
    calibrated = [
        calibration.calibrate(p, s, c)
        for p, s, c in zip(held["raw_percentile"], held["source"], held["country"], strict=True)
    ]
    held = held.assign(percentile=calibrated)
    check = {
        column: percentile_check(held, column, config.percentile_levels, 2.0, 2.0,
                                 config.min_group_records, config.min_place_records)
        for column in ("raw_percentile", "percentile")
    }  # fmt: skip
    raw_all = next(r for r in check["raw_percentile"] if r["dimension"] == "all")
    calibrated_all = next(r for r in check["percentile"] if r["dimension"] == "all")
    assert raw_all["within"] is False and raw_all["worst_gap"] > 10  # the band is overconfident
    assert raw_all["p5"] > 15  # far more than 5% read below the 5th percentile
    assert calibrated_all["within"] is True and calibrated_all["worst_gap"] <= 2.0
    us = next(r for r in check["percentile"] if r["group"] == US)
    assert us["within"] is True


def test_cross_fitting_never_uses_a_folds_own_records(oof, settings) -> None:
    raw = raw_percentiles(oof, 0.8)
    levels = np.full(len(oof), OVERALL, dtype=object)
    folds = oof["fold"].to_numpy()
    out = cross_fitted(raw, levels, folds, 10**9, 101)
    # Fold 0's numbers come from the map of the other folds alone...
    moved = raw.copy()
    moved[folds == 0] = 99.0
    again = cross_fitted(moved, levels, folds, 10**9, 101)
    assert np.array_equal(out[folds == 0], apply_many(
        fit_calibration(raw[folds != 0], levels[folds != 0], {}, 10**9, 101).curves[OVERALL],
        raw[folds == 0]))  # fmt: skip
    # ...and its records are in every other fold's map.
    assert not np.array_equal(out[folds != 0], again[folds != 0])  # fold 0 is in their maps


def test_evaluate_groups_reports_cv_tables_and_fits_the_served_map(records, oof, settings) -> None:
    tables, served, frames = evaluate_groups(records, oof, None, settings)
    assert set(tables) == {"pay_levels", "cv"}
    dimensions = {row["dimension"] for row in tables["cv"]["groups"]}
    # US postings name a state (features.location), so states with enough records get rows.
    assert dimensions == {"all", "source", "pay_level", "source_region", "country", "state"}
    # A country gets its row from min_place_records records, as a state does.
    countries = {r["group"]: r["n"] for r in tables["cv"]["groups"] if r["dimension"] == "country"}
    counts = frames["cv"]["country"].value_counts()
    expected = counts[counts >= settings.group_evaluation.min_place_records]
    assert countries == expected.to_dict() and {"US", "IN", "GB"} <= set(countries)
    check = tables["cv"]["percentile_check"]
    overall = {c: next(r for r in check[c] if r["dimension"] == "all") for c in check}
    assert overall["raw_percentile"]["worst_gap"] > 10
    assert overall["percentile"]["worst_gap"] <= settings.group_evaluation.tolerance_cv_points
    assert served.curves[OVERALL].records == len(frames["cv"])
    assert served.group_of("aijobs", "IN") == "under 35%"
    # Records whose country no source ranked, or without one, take the overall map.
    unranked = frames["cv"]["pay_level"].isin([UNRANKED, NO_COUNTRY])
    assert unranked.any() and not {UNRANKED, NO_COUNTRY} & set(served.curves)


def test_the_map_is_a_plain_json_file_that_round_trips(oof, settings, tmp_path: Path) -> None:
    raw = raw_percentiles(oof, 0.8)
    fitted = fit_calibration(raw, np.full(len(raw), OVERALL, dtype=object),
                             {"aijobs": {"IN": "under 35%"}}, 500, 101)  # fmt: skip
    fitted.save(tmp_path)
    assert (tmp_path / CALIBRATION_FILE).read_text().startswith("{")
    loaded = PercentileCalibration.load(tmp_path)
    assert loaded is not None and loaded.curves == fitted.curves
    assert loaded.calibrate(3.0, "aijobs", "IN") == fitted.calibrate(3.0, "aijobs", "IN")
    assert PercentileCalibration.load(tmp_path / "nothing") is None


def test_small_groups_get_no_map_and_no_verdict_of_their_own(oof, settings) -> None:
    frame = with_groups(oof, country_pay_groups(oof, settings.group_evaluation))
    raw = raw_percentiles(frame, 0.8)
    levels = frame["pay_level"].to_numpy()
    n_under = int((levels == "under 35%").sum())
    fitted = fit_calibration(raw, levels, {"aijobs": {"IN": "under 35%"}}, n_under + 1, 101)
    assert "under 35%" not in fitted.curves and US in fitted.curves
    assert fitted.curve_for("aijobs", "IN") is fitted.curves[OVERALL]
    assert fitted.curve_for("aijobs", "IN").basis().endswith("records of jobs in every country")
    own = fit_calibration(raw, levels, {"aijobs": {"IN": "under 35%"}}, n_under, 101)
    assert own.curve_for("aijobs", "IN").records == n_under
    few = frame.head(50).assign(percentile=raw[:50])
    check = percentile_check(few, "percentile", [5, 50, 95], 2.0, 2.0, 200, 60)
    assert all(row["within"] is None for row in check)  # too few records to judge
    # Records without a country are reported, never judged: no person asks for one.
    nowhere = frame.head(300).assign(percentile=raw[:300], pay_level=NO_COUNTRY)
    rows = percentile_check(nowhere, "percentile", [5, 50, 95], 2.0, 2.0, 200, 60)
    row = next(r for r in rows if r["group"] == NO_COUNTRY)
    assert row["n"] == 300 and row["within"] is None
    assert next(r for r in rows if r["dimension"] == "all")["within"] is not None


# ----- the drift map: the percentile one period ahead --------------------------------------------
@pytest.fixture(scope="module")
def yearly(records, settings) -> pd.DataFrame:
    """The survey's 2022-2024 records, each year estimated out of time: the group median of
    the years before it, with a band holding 80% of those years' own residuals."""
    survey = records[records["source"] == "aijobs"]
    parts = []
    for year in (2022, 2023, 2024):
        past, now = survey[survey["year"] < year], survey[survey["year"] == year]
        estimate = group_median(past, now, settings)
        k = np.quantile(
            np.abs(np.log(past["salary_usd"] / group_median(past, past, settings))), 0.8
        )
        parts.append(
            row_keys(now).assign(
                fold=f"aijobs {year}", salary_usd=now["salary_usd"].to_numpy(float),
                estimate_usd=estimate, low_usd=estimate * np.exp(-k), high_usd=estimate * np.exp(k),
            )
        )  # fmt: skip
    frame = pd.concat(parts, ignore_index=True)
    frame = with_groups(frame, country_pay_groups(records, settings.group_evaluation))
    return frame.assign(raw_percentile=raw_percentiles(frame, 0.8))


def _worst_gap(values: np.ndarray) -> float:
    return max(abs(100 * np.mean(values < p) - p) for p in (5, 10, 25, 50, 75, 90, 95))


def test_the_drift_map_corrects_a_later_year_from_earlier_years_only(yearly, settings) -> None:
    config = settings.percentile_calibration.model_copy(update={"drift_sources": ["aijobs"]})
    raw = yearly["raw_percentile"].to_numpy()
    keys = (yearly["source"].to_numpy(), map_groups(yearly))
    folds = yearly["fold"].to_numpy()
    out = drift_corrected(raw, *keys, folds, config)
    first, last = folds == "aijobs 2022", folds == "aijobs 2024"
    assert np.array_equal(out[first], raw[first])  # nothing earlier: no drift map
    # 2024 read through the map of 2022-2023 alone...
    earlier = ~last
    drift = fit_drift(raw[earlier], keys[0][earlier], keys[1][earlier], config)
    calibration = PercentileCalibration({OVERALL: _identity()}, {}, drift)
    by_hand = [
        calibration.drift_curve("aijobs", g).apply(r)
        for r, g in zip(raw[last], keys[1][last], strict=True)
    ]
    assert out[last] == pytest.approx(by_hand, abs=1e-9)
    # ...which makes the earlier years' own percentiles uniform (where it is fit, it holds).
    assert _worst_gap(raw[earlier & ~first]) > 3
    fitted_on = fit_drift(raw[earlier], keys[0][earlier], keys[1][earlier], config.model_copy(
        update={"drift_prior": 0, "drift_min_group_records": len(raw)}))  # fmt: skip
    assert _worst_gap(apply_many(fitted_on["aijobs|all"], raw[earlier])) < 0.5


def _identity():
    from salarymodel.core.percentile_calibration import PercentileCurve

    return PercentileCurve(OVERALL, 1, (0.0, 100.0), (0.0, 100.0))


def test_a_small_group_takes_its_sources_drift_map_and_a_large_one_is_shrunk(yearly, settings):
    raw = yearly["raw_percentile"].to_numpy()
    sources, groups = yearly["source"].to_numpy(), map_groups(yearly)
    n_us = int((groups == US).sum())
    n_small = int((groups == "under 35%").sum())
    assert 0 < n_small < n_us
    update = {"drift_min_group_records": n_small + 1, "drift_sources": ["aijobs"]}
    config = settings.percentile_calibration.model_copy(update=update)
    drift = fit_drift(raw, sources, groups, config)
    assert "aijobs|under 35%" not in drift and "aijobs|US" in drift  # too few: no map of its own
    calibration = PercentileCalibration({OVERALL: _identity()}, {}, drift)
    assert calibration.drift_curve("aijobs", "under 35%") is drift["aijobs|all"]
    assert calibration.drift_curve("postings", US) is None  # a source the backtest never saw
    # The US map sits between the US's own distribution and the source's, by the prior.
    own = np.percentile(raw[groups == US], np.linspace(0, 100, config.knots))
    pooled = np.asarray(drift["aijobs|all"].raw)
    expected = (n_us * np.maximum.accumulate(own) + config.drift_prior * pooled) / (
        n_us + config.drift_prior
    )
    assert np.asarray(drift["aijobs|US"].raw) == pytest.approx(expected)
    # A source not listed gets no drift map at all: its in-time percentile stands.
    assert fit_drift(raw, sources, groups, config.model_copy(update={"drift_sources": []})) == {}
    unshrunk = fit_drift(raw, sources, groups, config.model_copy(update={"drift_prior": 0}))
    assert np.asarray(unshrunk["aijobs|US"].raw) == pytest.approx(np.maximum.accumulate(own))


def test_served_curves_compose_the_drift_map_and_round_trip(yearly, settings, tmp_path) -> None:
    config = settings.percentile_calibration.model_copy(update={"drift_sources": ["aijobs"]})
    raw = yearly["raw_percentile"].to_numpy()
    groups = map_groups(yearly)
    fitted = fit_calibration(raw, groups, {"aijobs": {"IN": "under 35%"}}, 10**9, config.knots)
    fitted.drift = fit_drift(raw, yearly["source"].to_numpy(), groups, config)
    curve = fitted.curve_for("aijobs", US)
    for p in (1.0, 10.0, 50.0, 90.0, 99.0):
        in_time = fitted.curves[OVERALL].apply(p)
        # Composed on the knots: within a tenth of a point of the two maps in turn.
        assert curve.apply(p) == pytest.approx(fitted.drift["aijobs|US"].apply(in_time), abs=0.1)
    assert fitted.calibrate(50.0, "aijobs", US) != fitted.curves[OVERALL].apply(50.0)
    assert curve.basis() == fitted.curves[OVERALL].basis()  # it still names its records
    fitted.save(tmp_path)
    loaded = PercentileCalibration.load(tmp_path)
    assert loaded is not None and loaded.drift == fitted.drift
    assert loaded.calibrate(7.0, "aijobs", "IN") == fitted.calibrate(7.0, "aijobs", "IN")
    # A bundle saved before the drift map loads with none: in-time percentiles.
    stored = json.loads((tmp_path / CALIBRATION_FILE).read_text())
    without = {k: v for k, v in stored.items() if k != "drift"}
    (tmp_path / CALIBRATION_FILE).write_text(json.dumps(without))
    older = PercentileCalibration.load(tmp_path)
    assert older is not None and older.drift == {}
    assert older.calibrate(7.0, "aijobs", US) == fitted.curves[OVERALL].apply(7.0)


# ----- the track record: each group's record on a later year ------------------------------------
def _yearly_tables(yearly, settings) -> dict:
    """The out-of-time group tables of the survey's 2022-2024 years, as a run tabulates them."""
    frame = yearly.assign(percentile=yearly["raw_percentile"])
    return split_tables(frame, (3.0, 5.0), settings.group_evaluation)


def test_the_track_record_is_each_groups_out_of_time_row(yearly, settings) -> None:
    tables = _yearly_tables(yearly, settings)
    track = TrackRecord.from_tables(tables, 0.05, 200, ignore=(UNRANKED, NO_COUNTRY))
    levels = set(yearly["pay_level"]) - {UNRANKED, NO_COUNTRY}
    assert set(track.groups) == levels | {OVERALL}
    for group in ("under 35%", US):
        mine = yearly[yearly["pay_level"] == group]
        record = track.of(group)
        assert record is not None and record.records == len(mine)
        by_hand = float(np.median(mine["estimate_usd"] / mine["salary_usd"]) - 1)
        assert record.median_ratio == pytest.approx(by_hand)
        inside = (mine["salary_usd"] >= mine["low_usd"]) & (mine["salary_usd"] <= mine["high_usd"])
        assert record.coverage == pytest.approx(inside.mean())
        check = tables["percentile_check"]["percentile"]
        gap = next(r for r in check if r["group"] == group)["worst_gap"]
        assert record.percentile_gap == gap
    # A group the backtest never saw (a country no source ranked) reads the overall row.
    assert track.of("a group never seen") is track.groups[OVERALL]


def test_a_group_is_warned_only_past_the_ratio_and_with_enough_records(yearly, settings) -> None:
    tables = _yearly_tables(yearly, settings)
    rows = {r["group"]: r for r in tables["groups"] if r["dimension"] == "pay_level"}
    missed = max(rows.values(), key=lambda r: abs(r["median_ratio"]))
    assert abs(missed["median_ratio"]) > 0.05 and missed["n"] >= 200
    track = TrackRecord.from_tables(tables, 0.05, 200)
    assert track.groups[missed["group"]].warn
    warned = {g for g, r in track.groups.items() if r.warn}
    assert warned == {
        g for g, r in rows.items() if abs(r["median_ratio"]) > 0.05 and r["n"] >= 200
    } | ({OVERALL} if track.groups[OVERALL].warn else set())
    # The bar says no: a ratio above every miss warns nobody, and so does a group too small.
    ratio = abs(missed["median_ratio"])
    assert not any(r.warn for r in TrackRecord.from_tables(tables, ratio, 200).groups.values())
    fewer = TrackRecord.from_tables(tables, 0.05, missed["n"] + 1)
    assert not fewer.groups[missed["group"]].warn


def test_a_warned_groups_answer_says_so_in_words_and_others_do_not(yearly, settings) -> None:
    track = TrackRecord.from_tables(_yearly_tables(yearly, settings), 0.05, 200)
    warned = next(r for r in track.groups.values() if r.warn)
    quiet = next(r for r in track.groups.values() if not r.warn)
    warnings: list[list[str]] = [["thin support"], [], []]
    out = track.for_rows([warned.group, quiet.group, "a group never seen"], warnings)
    assert out == [warned, quiet, track.groups[OVERALL]]
    direction = "high" if warned.median_ratio > 0 else "low"
    assert warnings[0][0] == "thin support" and len(warnings[0]) == 2
    assert f"ran {abs(warned.median_ratio):.0%} {direction}" in warnings[0][1]
    assert f"{warned.records:,} records" in warnings[0][1]
    assert warnings[1] == [] and len(warnings[2]) == int(track.groups[OVERALL].warn)
    assert f"held {quiet.coverage:.0%}" in quiet.text()


def test_the_track_record_is_a_plain_json_file_that_round_trips(yearly, settings, tmp_path):
    track = TrackRecord.from_tables(_yearly_tables(yearly, settings), 0.05, 200)
    track.save(tmp_path)
    assert TrackRecord.load(tmp_path) == track
    assert TrackRecord.load(tmp_path / "nothing") is None  # a bundle saved before it
    stored = json.loads((tmp_path / TRACK_RECORD_FILE).read_text())
    (tmp_path / TRACK_RECORD_FILE).write_text(json.dumps({**stored, "format": 99}))
    with pytest.raises(ValueError, match="format"):
        TrackRecord.load(tmp_path)
    # A record with a field this code does not know is a bundle it cannot read, said so.
    stored["groups"][0]["dimension"] = "country"
    (tmp_path / TRACK_RECORD_FILE).write_text(json.dumps(stored))
    with pytest.raises(ValueError, match="unexpected keyword argument 'dimension'"):
        TrackRecord.load(tmp_path)


def test_a_reading_of_a_group_whose_percentile_was_off_later_says_by_how_much(yearly, settings):
    from dataclasses import replace

    from salarymodel.serving.pay_terms import USD_YEARLY, percentile_reading, with_terms
    from salarymodel.serving.scoring import track_record_response

    tables = _yearly_tables(yearly, settings)
    track = TrackRecord.from_tables(tables, 0.05, 200)
    check = {r["group"]: r for r in tables["percentile_check"]["percentile"]}
    off = next(r for g, r in track.groups.items() if check[g]["within"] is False)
    held = next(r for g, r in track.groups.items() if check[g]["within"] is True)
    assert off.percentile_within is False and held.percentile_within is True
    assert f"off by up to {off.percentile_gap:.0f} points" in off.percentile_caveat()
    assert held.percentile_caveat() is None
    small = replace(off, percentile_within=None)  # too few records to be judged: no caveat
    assert small.percentile_caveat() is None
    job = {"estimate_usd": 100_000.0, "low_usd": 70_000.0, "high_usd": 140_000.0,
           "coverage": 0.8, "warnings": []}  # fmt: skip
    pay = replace(USD_YEARLY, salary=100_000.0, salary_usd=100_000.0)
    for record, caveat in ((off, off.percentile_caveat()), (held, None)):
        answer = with_terms({**job, "track_record": track_record_response(record)}, pay)
        plain = percentile_reading(50.0)
        reading = answer["current_salary"].reading
        assert reading == (f"{plain}; {caveat}" if caveat else plain)


def test_the_record_reads_in_words_which_way_and_how_far_the_estimates_missed(yearly, settings):
    from dataclasses import replace

    record = TrackRecord.from_tables(_yearly_tables(yearly, settings), 0.05, 200).of(US)
    assert record is not None
    high, low, on = (replace(record, median_ratio=r) for r in (0.071, -0.161, 0.004))
    assert high.text() == (
        f"Tested on a later year than it was trained on ({record.records:,} records), the "
        "model's estimates for US jobs ran 7% high (median), and the range held "
        f"{record.coverage:.0%} of their salaries."
    )
    assert "estimates for US jobs ran 16% low (median)" in low.text()
    assert "estimates for US jobs were on target (median)" in on.text()
    assert "ran 1% high" in replace(record, median_ratio=0.006).text()  # rounds to 1%
    assert low.warning() == (
        "on a later year than it was trained on, the model's estimates for US jobs ran 16% "
        f"low (median of {record.records:,} records): this estimate may be low"
    )
    ending = f"ran 7% high (median of {record.records:,} records): this estimate may be high"
    assert high.warning().endswith(ending)


def test_the_record_needs_no_percentile_check_and_warns_from_exactly_min_records(yearly, settings):
    tables = _yearly_tables(yearly, settings)
    rows = {r["group"]: r for r in tables["groups"] if r["dimension"] == "pay_level"}
    missed = max(rows.values(), key=lambda r: abs(r["median_ratio"]))
    # A bundle's backtest without a percentile check: the record, no gaps.
    bare = TrackRecord.from_tables({"groups": tables["groups"]}, 0.05, 200)
    assert bare.groups[missed["group"]].percentile_gap is None
    assert bare.groups[missed["group"]].percentile_within is None
    exactly = TrackRecord.from_tables(tables, 0.05, missed["n"])
    assert exactly.groups[missed["group"]].warn  # n records is enough at min_records = n
    # Rows without a warnings list (the evaluation's scoring) still get their records.
    assert exactly.for_rows([missed["group"], US], None) == [
        exactly.groups[missed["group"]],
        exactly.groups[US],
    ]
