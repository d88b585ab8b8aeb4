"""Model behaviour on a small real sample: directions that hold in the data."""

from __future__ import annotations

import numpy as np
import pytest

from salarymodel.core.bundle_files import BundleError, write_manifest
from salarymodel.core.features import FeatureBuilder
from salarymodel.core.model import SalaryModel
from salarymodel.data.dataset import load_training_data
from salarymodel.evaluation.cv import cross_validate

pytestmark = pytest.mark.slow

US_DATA_SCIENTIST = {
    "job_title": "Data Scientist",
    "experience_level": "MI",
    "company_size": "M",
    "country": "US",
    "company_country": "US",
    "remote_ratio": 0,
    "employment_type": "FT",
    "year": 2024,
    "source": "aijobs",
}


@pytest.fixture(scope="module")
def sample(settings, sources):
    return load_training_data(settings, sources, sample=5000, seed=11).records


@pytest.fixture(scope="module")
def model(sample, settings):
    return SalaryModel.fit(
        sample,
        FeatureBuilder.fit(sample, settings.features),
        settings.model,
        country_levels=settings.country_levels,
    )


def _estimate(model, **changes) -> float:
    return model.estimate_job({**US_DATA_SCIENTIST, **changes}).estimate_usd


def test_senior_above_entry_in_data_and_model(sample, model) -> None:
    survey = sample[(sample["source"] == "aijobs") & (sample["country"] == "US")]
    medians = survey.groupby("experience_level")["salary_usd"].median()
    assert medians["SE"] > medians["EN"]  # the data says so ...
    assert _estimate(model, experience_level="SE") > _estimate(model, experience_level="EN")


def test_us_above_india_in_data_and_model(sample, model) -> None:
    medians = sample.groupby("country")["salary_usd"].median()
    assert medians["US"] > medians["IN"]
    assert _estimate(model, country="US") > _estimate(model, country="IN", company_country="IN")


def test_senior_posting_title_above_plain_title(sample, model) -> None:
    postings = sample[sample["source"] == "postings"]
    senior = postings["job_title"].str.contains("Senior", case=False)
    assert (
        postings.loc[senior, "salary_usd"].median() > postings.loc[~senior, "salary_usd"].median()
    )
    job = {
        "country": "US",
        "remote_ratio": 0,
        "employment_type": "FT",
        "year": 2023,
        "source": "postings",
        "skills": ["python", "sql"],
    }
    plain = model.estimate_job({**job, "job_title": "Data Engineer"}).estimate_usd
    senior_est = model.estimate_job(
        {**job, "job_title": "Senior Data Engineer", "experience_level": "SE"}
    ).estimate_usd
    assert senior_est > plain


def test_estimates_are_plausible_salaries(model) -> None:
    value = _estimate(model)
    assert 50_000 < value < 400_000


def test_bundle_round_trip_gives_identical_estimates(model, sample, tmp_path) -> None:
    model.save(tmp_path / "bundle")
    again = SalaryModel.load(tmp_path / "bundle")
    np.testing.assert_array_equal(
        again.estimate_records(sample.head(200))["estimate_usd"],
        model.estimate_records(sample.head(200))["estimate_usd"],
    )


def test_a_model_without_ranges_gives_no_range_and_no_percentile(model, sample) -> None:
    """The point-only model (no ``fit_ranges``) says so instead of inventing a range."""
    one = model.estimate_job(US_DATA_SCIENTIST)
    assert (one.low_usd, one.high_usd, one.coverage) == (None, None, None)
    assert one.percentile(one.estimate_usd) is None
    frame = model.estimate_records(sample.head(20))
    assert list(frame.columns) == ["estimate_usd"]
    assert frame.index.equals(sample.head(20).index)


def test_corrupt_bundle_is_refused_clearly(model, tmp_path) -> None:
    folder = model.save(tmp_path / "bundle")
    (folder / "booster.txt").write_text("not a model")
    with pytest.raises(BundleError, match=r"booster\.txt is corrupt"):
        SalaryModel.load(folder)
    write_manifest(folder)  # a bad file saved as such: the checksums agree, LightGBM does not
    with pytest.raises(BundleError, match="unreadable"):
        SalaryModel.load(folder)
    (folder / "features.json").unlink()
    with pytest.raises(BundleError, match=r"missing features\.json"):
        SalaryModel.load(folder)


def test_fused_model_beats_median_baselines_on_grouped_cv(sample, settings) -> None:
    report = cross_validate(
        sample, settings, models=("fused_lightgbm", "group_median", "global_median")
    )
    fused = report.metric("fused_lightgbm", "all", "mae_usd")
    assert fused < report.metric("group_median", "all", "mae_usd")
    assert fused < report.metric("global_median", "all", "mae_usd")
    assert report.metric("fused_lightgbm", "all", "r2_log") > 0.2
