"""Each source's yearly growth, carried past the last training year and nowhere else."""

from __future__ import annotations

import numpy as np
import pytest

from salarymodel.core.country_levels import ANY, US, CountryLevels
from salarymodel.core.features import FeatureBuilder
from salarymodel.core.model import SalaryModel
from salarymodel.core.row_spec import AT
from salarymodel.core.year_trend import YearTrend, fit_trend
from salarymodel.data.dataset import load_training_data

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def records(settings, sources):
    return load_training_data(settings, sources, sample=4000, seed=7).records.reset_index(drop=True)


@pytest.fixture(scope="module")
def until_2023(records):
    """The survey up to 2023 with the 2023 postings: the backtest's 2024 cut-off."""
    return records[records["year"] <= 2023].reset_index(drop=True)


def no_trend(settings):
    return settings.country_levels.model_copy(update={"trend": False})


# ----- the estimate ----------------------------------------------------------------------
def test_the_survey_grew_before_2024_and_the_postings_have_one_year(until_2023, settings):
    levels = CountryLevels.fit(until_2023, settings.country_levels)
    survey, postings = levels.by_source["aijobs"].trends, levels.by_source["postings"].trends
    # Several survey years: a growth read from them (its sign is the sample's).
    assert survey[US].last_year == 2023 and abs(survey[US].slope) > 1e-3
    # Each group has its own growth, extended from the source's last year.
    assert len({t.slope for t in survey.values()}) == len(survey) > 1
    assert {t.last_year for t in survey.values()} == {2023}
    # One year of postings: no line to fit, no growth.
    assert set(postings.values()) == {YearTrend(0.0, 2023.0)}
    # Pooled, the mix of sources changes by year: no trend is read from it.
    assert levels.by_source[ANY].trends == {}


def test_the_slope_is_shrunk_toward_no_growth(until_2023, settings):
    survey = until_2023[until_2023["source"] == "aijobs"]
    config = settings.country_levels
    loose = config.model_copy(update={"trend_prior_strength": 1e-6})
    strict = config.model_copy(update={"trend_prior_strength": 1e9})
    slope = CountryLevels.fit(survey, config).by_source["aijobs"].trends[US].slope
    unshrunk = CountryLevels.fit(survey, loose).by_source["aijobs"].trends[US].slope
    assert 0 < slope / unshrunk < 1
    assert abs(CountryLevels.fit(survey, strict).by_source["aijobs"].trends[US].slope) < 1e-4


def test_growth_is_added_past_the_last_year_only_and_capped():
    trend = YearTrend(0.05, 2023.0)
    years = np.array([2021.0, 2023.0, 2024.0, 2030.0, np.nan])
    np.testing.assert_allclose(trend.ahead(years, 1.0), [0, 0, 0.05, 0.05, 0])
    np.testing.assert_allclose(trend.ahead(years, 0.0), 0)


def test_a_single_year_or_no_year_has_no_trend():
    residual = np.array([0.1, -0.2, 0.3])
    assert fit_trend(residual, np.array([2023.0] * 3), 10).slope == 0
    assert fit_trend(residual, np.full(3, np.nan), 10) == YearTrend()


# ----- the model -------------------------------------------------------------------------
def test_a_2024_survey_job_gets_the_growth_and_nothing_else_moves(until_2023, records, settings):
    builder = FeatureBuilder.fit(until_2023, settings.features)
    matrix = builder.transform(until_2023)
    on = SalaryModel.fit(
        until_2023, builder, settings.model, matrix, country_levels=settings.country_levels
    )
    off = SalaryModel.fit(
        until_2023, builder, settings.model, matrix, country_levels=no_trend(settings)
    )
    assert on.levels is not None
    later = records[(records["year"] == 2024) & (records["source"] == "aijobs")]
    scored = builder.transform(later)
    trends = on.levels.by_source["aijobs"].trends
    slope = np.array([trends[g].slope for g in on.levels.groups(builder, scored)])
    assert len(set(slope.tolist())) > 1  # the groups' own growths, not one
    np.testing.assert_allclose(on.predict_log(scored, 1) - off.predict_log(scored, 1), slope)
    # Within the training years (every row the trees saw) the trend adds nothing.
    np.testing.assert_allclose(on.predict_log(matrix, 1), off.predict_log(matrix, 1))
    # Two years on, still one year's growth (trend_max_years).
    scored[:, AT["year"]] = 2025
    two = on.predict_log(scored, 1) - off.predict_log(scored, 1)
    np.testing.assert_allclose(two, slope * settings.country_levels.trend_max_years)


def test_the_trend_is_saved_and_an_older_bundle_loads_without_it(until_2023, settings, tmp_path):
    levels = CountryLevels.fit(until_2023, settings.country_levels)
    levels.save(tmp_path)
    again = CountryLevels.load(tmp_path)
    assert again is not None and again.to_dict() == levels.to_dict()
    assert again.by_source["aijobs"].trends == levels.by_source["aijobs"].trends != {}
    older = levels.to_dict() | {"format": 1}
    del older["trend_max_years"]
    for source in older["by_source"].values():
        del source["trends"]
    loaded = CountryLevels.from_dict(older)
    assert loaded.trend_max_years == 0 and loaded.by_source["aijobs"].trends == {}
    with pytest.raises(ValueError, match="unknown format"):
        CountryLevels.from_dict(levels.to_dict() | {"format": 3})
