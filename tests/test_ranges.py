"""Calibrated ranges on held-out real data: coverage, ordering, support, percentiles."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from salarymodel.dataset import load_training_data
from salarymodel.features import FeatureBuilder
from salarymodel.model import SalaryModel
from salarymodel.ranges import calibration_split, conformal_offsets, salary_percentile

pytestmark = pytest.mark.slow
COVERAGE_TOLERANCE = 0.05  # about 3.5 binomial standard deviations at n ~ 1,800


@pytest.fixture(scope="module")
def split(settings, sources):
    records = load_training_data(settings, sources, sample=6000, seed=21).records
    held_out = calibration_split(records, 0.2, seed=99)
    return records[~held_out].reset_index(drop=True), records[held_out].reset_index(drop=True)


@pytest.fixture(scope="module")
def model(split, settings):
    train, _ = split
    builder = FeatureBuilder.fit(train, settings.features)
    matrix = builder.transform(train)
    return SalaryModel.fit(train, builder, settings.model, matrix).fit_ranges(
        train, matrix, settings
    )


@pytest.fixture(scope="module")
def held_out_estimates(model, split):
    _, test = split
    return test, model.estimate_records(test)


def test_coverage_on_held_out_data_is_near_the_target(held_out_estimates, settings) -> None:
    test, out = held_out_estimates
    salary = test["salary_usd"].to_numpy()
    inside = (salary >= out["low_usd"].to_numpy()) & (salary <= out["high_usd"].to_numpy())
    assert len(test) > 1000
    assert abs(inside.mean() - settings.ranges.coverage) <= COVERAGE_TOLERANCE


def test_low_le_estimate_le_high_for_every_row(held_out_estimates) -> None:
    _, out = held_out_estimates
    assert (out["low_usd"] <= out["estimate_usd"]).all()
    assert (out["estimate_usd"] <= out["high_usd"]).all()
    assert (out["low_usd"] > 0).all()


def test_single_and_batch_paths_agree(model, split) -> None:
    _, test = split
    batch = model.estimate_records(test.head(25))
    for i, job in enumerate(test.head(25).to_dict("records")):
        one = model.estimate_job(job)
        assert one.estimate_usd == pytest.approx(batch["estimate_usd"].iloc[i], rel=1e-9)
        assert one.low_usd == pytest.approx(batch["low_usd"].iloc[i], rel=1e-9)
        assert one.high_usd == pytest.approx(batch["high_usd"].iloc[i], rel=1e-9)


def test_support_counts_training_records_and_flags_thin(model) -> None:
    us_senior_ds = model.estimate_job(
        {"job_title": "Data Scientist", "experience_level": "SE", "country": "US"}
    )
    assert us_senior_ds.support > model.ranges.thin_below
    assert not us_senior_ds.thin_support
    rare = model.estimate_job(
        {"job_title": "Data Scientist", "experience_level": "EX", "country": "Bhutan"}
    )
    assert rare.support == 0 and rare.thin_support
    assert any("thin support" in w for w in rare.warnings)


def test_thin_support_ranges_are_calibrated_separately(model) -> None:
    offsets = model.ranges.offsets
    assert "*|*" in offsets
    assert any(key.endswith("|thin") or key.endswith("|ok") for key in offsets)


def test_percentile_is_monotone_and_anchored(model) -> None:
    job = {"job_title": "Data Engineer", "experience_level": "MI", "country": "US"}
    estimate = model.estimate_job(job)
    salaries = np.linspace(20_000, 600_000, 60)
    percentiles = [model.percentile(job, s) for s in salaries]
    assert all(b > a for a, b in itertools.pairwise(percentiles))
    assert model.percentile(job, estimate.estimate_usd) == pytest.approx(50.0)
    assert model.percentile(job, estimate.low_usd) == pytest.approx(10.0, abs=0.01)
    assert model.percentile(job, estimate.high_usd) == pytest.approx(90.0, abs=0.01)


def test_percentile_rejects_non_positive_salary() -> None:
    with pytest.raises(ValueError, match="positive"):
        salary_percentile(0, 100_000, 80_000, 130_000, 0.8)


def test_conformal_offsets_hit_the_quantile() -> None:
    rng = np.random.default_rng(0)
    truth = rng.lognormal(11.5, 0.4, 2000)
    point = np.full(2000, np.exp(11.5))
    spread = np.full(2000, 30_000.0)
    sources = np.array(["aijobs"] * 2000)
    offsets = conformal_offsets(truth, point, spread, sources, np.zeros(2000, bool), 0.8, 200)
    inside = np.abs(truth - point) <= offsets["aijobs|*"] * spread
    assert inside.mean() >= 0.8 and inside.mean() < 0.81


def test_bundle_keeps_the_calibration(model, split, tmp_path) -> None:
    _, test = split
    again = SalaryModel.load(model.save(tmp_path / "bundle"))
    np.testing.assert_allclose(
        again.estimate_records(test.head(50))[["low_usd", "high_usd"]].to_numpy(),
        model.estimate_records(test.head(50))[["low_usd", "high_usd"]].to_numpy(),
    )
