"""SHAP explanations: additivity, grouping by concept, premiums and plots."""

from __future__ import annotations

import math

import matplotlib.image
import numpy as np
import pytest

from salarymodel.core.explanations import (
    Explainer,
    concept_index,
    distinct_rows,
    dollar_shares,
    premiums_table,
)
from salarymodel.core.features import FeatureBuilder
from salarymodel.core.model import SalaryModel
from salarymodel.core.row_spec import AT, WORD_PREFIX
from salarymodel.data.dataset import load_training_data
from salarymodel.report.explanation_plots import write_global_explanations

pytestmark = pytest.mark.slow
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def records(settings, sources):
    return load_training_data(settings, sources, sample=3000, seed=8).records


@pytest.fixture(scope="module")
def explainer(records, settings):
    builder = FeatureBuilder.fit(records, settings.features)
    model = SalaryModel.fit(
        records, builder, settings.model, country_levels=settings.country_levels
    )
    model.metadata["default_source"] = "aijobs"
    return Explainer.from_model(model)


def test_grouped_shap_adds_up_to_the_log_estimate(explainer, records) -> None:
    matrix = explainer.model.builder.transform(records.head(300))
    grouped = explainer.grouped(matrix)
    log_estimate = explainer.model.predict_log(matrix)
    np.testing.assert_allclose(explainer.base_log + grouped.sum(axis=1), log_estimate, atol=1e-6)


def test_skill_rows_say_whether_the_job_lists_the_skill(explainer) -> None:
    base = {"job_title": "Data Scientist", "country": "US", "year": 2024, "source": "postings"}
    skills = explainer.model.builder.skills
    listed = explainer.explain_job({**base, "skills": [skills[0]]})
    values = {c.concept: c.value for c in listed.contributions if c.concept.startswith("skill: ")}
    assert values, "a postings-view job with skills gets skill contributions"
    for concept, value in values.items():
        assert value == ("listed" if concept == f"skill: {skills[0]}" else "not listed")
    unstated = explainer.explain_job({**base, "skills": None})
    assert {c.value for c in unstated.contributions if c.concept.startswith("skill: ")} <= {
        "not stated"
    }


def test_a_listed_skill_the_trees_never_use_is_shown_at_zero(explainer) -> None:
    builder = explainer.model.builder
    used = explainer.model.booster.feature_importance("split")[builder.skill_columns]
    unused = [s for s, n in zip(builder.skills, used, strict=True) if n == 0]
    assert unused, "every skill of the vocabulary is split on: pick a smaller sample"
    job = {"job_title": "Data Scientist", "country": "US", "year": 2024, "source": "postings"}
    answer = explainer.explain_job({**job, "skills": [unused[0], builder.skills[0]]})
    rows = {c.concept: c for c in answer.contributions}
    row = rows[f"skill: {unused[0]}"]
    assert (row.value, row.dollars, row.percent) == ("listed", 0.0, 0.0)
    # Unlisted skills the trees never use stay out: only the person's own inputs show at $0.
    assert all(c.dollars != 0.0 or c.value == "listed" for c in answer.contributions)


def test_one_job_explanation_adds_up_in_dollars_and_percent(explainer) -> None:
    job = {
        "job_title": "Senior Data Engineer",
        "experience_level": "SE",
        "country": "US",
        "company_size": "M",
        "remote_ratio": 0,
        "employment_type": "FT",
        "year": 2024,
    }
    result = explainer.explain_job(job)
    estimate = explainer.model.estimate_job(job).estimate_usd
    assert result.estimate_usd == pytest.approx(estimate, rel=1e-9)
    dollars = sum(c.dollars for c in result.contributions)
    assert result.base_usd + dollars == pytest.approx(estimate, rel=1e-9)
    product = math.prod(1 + c.percent / 100 for c in result.contributions)
    assert result.base_usd * product == pytest.approx(estimate, rel=1e-9)
    concepts = {c.concept for c in result.contributions}
    assert {"job title", "experience level", "country"} <= concepts
    assert [abs(c.dollars) for c in result.contributions] == sorted(
        (abs(c.dollars) for c in result.contributions), reverse=True
    )


def test_columns_of_one_input_are_one_concept(explainer) -> None:
    names, position = concept_index(explainer.model.builder.columns)
    columns = explainer.model.builder.columns
    title_columns = [c for c, p in zip(columns, position, strict=True) if names[p] == "job title"]
    words = [WORD_PREFIX + w for w in explainer.model.builder.title_words]
    assert words and title_columns == ["role_family", "title", "title_seniority", *words]
    assert names.count("country") == 1 and "skill: python" in names


def test_grouping_sums_signed_values_not_absolute_ones(explainer, records) -> None:
    matrix = explainer.model.builder.transform(records.head(200))
    raw = explainer.shap_values(matrix)
    grouped = explainer.grouped(matrix)
    names, position = concept_index(explainer.model.builder.columns)
    title = names.index("job title")
    np.testing.assert_allclose(grouped[:, title], raw[:, position == title].sum(axis=1))
    assert np.abs(grouped[:, title]).mean() <= np.abs(raw[:, position == title]).sum(1).mean()


def test_premiums_agree_with_raw_shap_values(explainer, records) -> None:
    sample = records.sample(1500, random_state=1).reset_index(drop=True)
    builder = explainer.model.builder
    matrix = builder.transform(sample)
    raw = explainer.shap_values(matrix)
    grouped = explainer.grouped(matrix)
    table = premiums_table(sample, builder, matrix, grouped, explainer.concepts)
    median = sample["salary_usd"].median()
    senior = (sample["experience_level"] == "SE").to_numpy()
    expected = math.expm1(raw[senior, builder.columns.index("experience_level")].mean())
    row = table[(table["concept"] == "experience level") & (table["value"] == "SE")].iloc[0]
    assert row["count"] == senior.sum()
    assert row["mean_premium_pct"] == pytest.approx(expected * 100)
    assert row["dollars_at_median"] == pytest.approx(expected * median)
    python = matrix[:, builder.columns.index("skill:python")] == 1
    skill = table[table["concept"] == "skill: python"].iloc[0]
    assert skill["count"] == python.sum()
    expected = math.expm1(raw[python, builder.columns.index("skill:python")].mean())
    assert skill["mean_premium_pct"] == pytest.approx(expected * 100)


def test_dollar_shares_sum_to_the_difference() -> None:
    phi = np.array([0.3, -0.1, 0.05])
    shares = dollar_shares(phi, math.log(100_000))
    assert shares.sum() == pytest.approx(100_000 * (math.exp(0.25) - 1))
    tiny = dollar_shares(np.array([1e-14, -1e-14]), math.log(100_000))
    assert np.all(np.isfinite(tiny))


def test_global_outputs_are_valid_pngs_and_tables(explainer, records, tmp_path) -> None:
    table, paths = write_global_explanations(explainer, records, tmp_path, 600, 10)
    pngs = [p for p in paths if p.suffix == ".png"]
    names = {p.name for p in pngs}
    assert {
        "shap_beeswarm.png",
        "shap_importance.png",
        "premium_skills.png",
        "premium_country.png",
        "premium_experience_level.png",
        "premium_company_size.png",
        "premium_remote_ratio.png",
        "premium_employment_type.png",
    } <= names
    for png in pngs:
        assert png.read_bytes()[:8] == PNG_SIGNATURE
        image = matplotlib.image.imread(png)
        assert image.shape[0] > 200 and image.shape[1] > 300
        assert image.std() > 0.01  # not a blank canvas
    assert (tmp_path / "premiums.csv").stat().st_size > 100
    assert {"concept", "value", "mean_premium_pct", "dollars_at_median", "count"} <= set(
        table.columns
    )


def test_a_training_record_without_skills_explains(explainer, records) -> None:
    # Canonical records carry a missing skill list as NaN, not None.
    survey = records[records["source"] == "aijobs"].iloc[0].to_dict()
    assert not isinstance(survey["skills"], list)
    result = explainer.explain_job(survey)
    values = {c.concept: c.value for c in result.contributions}
    assert values.get("number of skills", "unknown") == "unknown"
    assert result.estimate_usd == pytest.approx(
        explainer.model.estimate_job(survey).estimate_usd, rel=1e-9
    )


def test_repeated_rows_are_explained_once_with_the_same_values(explainer, records) -> None:
    matrix = explainer.model.builder.transform(records.head(400))
    distinct, inverse = distinct_rows(matrix)
    assert len(distinct) < len(matrix)  # real records repeat jobs: there is something to save
    assert np.array_equal(distinct[inverse], matrix, equal_nan=True)
    per_row = np.asarray(explainer.model.booster.predict(matrix, num_threads=1, pred_contrib=True))
    # The country levels the trees start from join the country and pay-view columns.
    country, source, _ = explainer.model.levels.parts(explainer.model.builder, matrix)
    per_row[:, AT["country"]] += country
    per_row[:, AT["source"]] += source
    assert np.array_equal(explainer.shap_values(matrix), per_row[:, :-1])
