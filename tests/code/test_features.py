"""The shared feature builder: one encoding for training and serving."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from helpers.country_spellings import COUNTRY_SPELLINGS

from salarymodel.core.features import FeatureBuilder
from salarymodel.core.row_spec import AT
from salarymodel.data.dataset import load_training_data
from salarymodel.data.sources import adapt


@pytest.fixture(scope="module")
def sample(settings, sources):
    # The real shipped files have no invalid rows, so nothing is written.
    return load_training_data(settings, sources, sample=3000, seed=5).records


@pytest.fixture(scope="module")
def builder(sample, settings):
    return FeatureBuilder.fit(sample, settings.features)


def test_encode_one_job_equals_the_batch_transform(builder, sample) -> None:
    matrix = builder.transform(sample)
    for i in range(0, len(sample), 97):
        row, _ = builder.encode(sample.iloc[i].to_dict())
        np.testing.assert_array_equal(row, matrix[i])


def test_encode_many_equals_encode_job_by_job(builder, sample) -> None:
    """The batch path gives each job the row and warnings `encode` gives it alone."""
    jobs = [sample.iloc[i].to_dict() for i in range(0, len(sample), 7)]
    jobs += [
        {"job_title": "Chief Vibes Officer", "country": "Atlantis", "skills": ["zorglang"]},
        {"job_title": "Data Analyst", "country": "Bhutan", "skills": ["PowerBI", "power bi"]},
        {"job_title": "Data Scientist", "source": "nowhere", "skills": []},
        {"job_title": "Data Scientist", "country": None, "company_country": "DE"},
    ]
    matrix, warnings, countries = builder.encode_many(jobs)
    assert matrix.shape == (len(jobs), len(builder.columns))
    for i, job in enumerate(jobs):
        row, expected = builder.encode(job)
        np.testing.assert_array_equal(matrix[i], row)
        assert warnings[i] == expected
        assert builder.encode_job(job).country == countries[i]  # resolved once, carried on
    assert countries[-1] is None and countries[-3] == "BT"
    assert any("zorglang" in w for w in warnings[-4]) and any("nowhere" in w for w in warnings[-2])
    # The warnings of one job are its own list, not shared with another's.
    warnings[-4].append("x")
    assert "x" not in warnings[-3] and builder.encode_many(jobs)[1][-4][-1] != "x"


def test_encode_many_resolves_the_employers_country_as_encode_does(builder) -> None:
    """``employer_abroad`` compares resolved countries on both paths, however they are spelled."""
    pairs = [  # (where the job is, where the employer is, abroad?)
        ("Germany", "germany", 0.0),
        ("DE", "Deutschland", 0.0),
        ("United States", "USA", 0.0),
        ("US", "United States of America", 0.0),
        ("United Kingdom", "UK", 0.0),
        ("GB", " gb ", 0.0),
        ("France", "Germany", 1.0),
        ("IN", "United States", 1.0),
    ]
    jobs = [
        {"job_title": "Data Scientist", "country": country, "company_country": company}
        for country, company, _ in pairs
    ]
    matrix, _, _ = builder.encode_many(jobs)
    single = np.array([builder.encode(job)[0] for job in jobs])
    np.testing.assert_array_equal(matrix, single)
    expected = [abroad for _, _, abroad in pairs]
    assert matrix[:, AT["employer_abroad"]].tolist() == expected
    assert single[:, AT["employer_abroad"]].tolist() == expected


def test_a_title_that_says_nothing_reads_the_short_title(builder) -> None:
    alone = builder.job_title("Vibes Wrangler")
    assert alone.family == "other" and math.isnan(alone.seniority)
    assert alone.code == builder.titles.index("other")
    helped = builder.job_title("Vibes Wrangler", "Senior Data Scientist")
    assert helped[:3] == builder.job_title("Senior Data Scientist")[:3]
    # Words are the title's own: the short title lends none.
    assert helped.words == alone.words
    assert helped.family != "other" and helped.code == builder.titles.index("data scientist")
    # A title that names its own family keeps it; only what it lacks is borrowed.
    own = builder.job_title("Data Engineer", "Senior Data Scientist")
    assert own.family == builder.job_title("Data Engineer").family != helped.family
    assert own.seniority == helped.seniority


def test_title_words_are_the_same_on_every_path_on_real_rows(builder, sample) -> None:
    """A title's word flags come out the same from transform, encode and encode_many."""
    words = builder.word_columns
    assert len(builder.title_words) >= 20 and "machine learning" in builder.title_words
    matrix = builder.transform(sample)
    assert (matrix[:, words].sum(axis=1) > 0).mean() > 0.9  # not a column of zeros
    jobs = sample.to_dict("records")
    np.testing.assert_array_equal(builder.encode_many(jobs)[0][:, words], matrix[:, words])
    for i in range(0, len(jobs), 31):
        np.testing.assert_array_equal(builder.encode(jobs[i])[0][words], matrix[i, words])
    row, _ = builder.encode({"job_title": "Senior Machine Learning Engineer"})
    flagged = {builder.title_words[j] for j in np.flatnonzero(row[words])}
    assert {"machine learning", "engineer"} <= flagged and "data" not in flagged


def test_title_words_can_be_turned_off_and_old_bundles_have_none(sample, settings) -> None:
    off = settings.features.model_copy(
        update={"title_words": settings.features.title_words.model_copy(update={"min_count": None})}
    )
    plain = FeatureBuilder.fit(sample, off)
    assert plain.title_words == [] and not any(c.startswith("word:") for c in plain.columns)
    saved = plain.to_dict()
    del saved["title_words"]  # as bundles saved before title words were written
    del saved["features"]["title_words"]  # nor their settings
    again = FeatureBuilder.from_dict(json.loads(json.dumps(saved)))
    head = sample.head(50)
    np.testing.assert_array_equal(again.transform(head), plain.transform(head))
    row, _ = again.encode(sample.iloc[0].to_dict())
    assert len(row) == len(again.columns)


def test_vocabulary_round_trips_through_json(builder, sample) -> None:
    again = FeatureBuilder.from_dict(json.loads(json.dumps(builder.to_dict())))
    np.testing.assert_array_equal(
        again.transform(sample.head(50)), builder.transform(sample.head(50))
    )


def test_no_leaky_or_identifying_column_is_a_feature(builder) -> None:
    for column in builder.columns:
        assert "salary" not in column and "currency" not in column and "company_name" not in column


def test_unknown_values_warn_and_never_crash(builder) -> None:
    row, warnings = builder.encode(
        {
            "job_title": "Chief Vibes Officer",
            "country": "Atlantis",
            "skills": ["python", "zorglang"],
            "experience_level": "SE",
            "source": "postings",  # the view that reads skills
        }
    )
    text = " ".join(warnings)
    assert "Atlantis" in text and "zorglang" in text
    assert math.isnan(row[AT["country"]])
    assert row[AT["n_skills"]] == 2


def test_country_names_and_codes_encode_alike(builder) -> None:
    by_code, _ = builder.encode({"job_title": "Data Scientist", "country": "us"})
    by_name, _ = builder.encode({"job_title": "Data Scientist", "country": "United States"})
    np.testing.assert_array_equal(by_code, by_name)


def test_rare_country_is_other_with_a_warning(builder) -> None:
    row, warnings = builder.encode({"job_title": "Data Scientist", "country": "Bhutan"})
    assert row[AT["country"]] == builder.countries.index("other")
    assert any("rare or unseen" in w for w in warnings)


def test_skills_missing_vs_empty(builder) -> None:
    unknown, _ = builder.encode({"job_title": "Data Scientist"})
    empty, _ = builder.encode({"job_title": "Data Scientist", "skills": []})
    skills = builder.skill_columns
    assert math.isnan(unknown[AT["n_skills"]]) and np.isnan(unknown[skills]).all()
    assert empty[AT["n_skills"]] == 0 and (empty[skills] == 0).all()
    # Unstated skills say nothing about the title: its words are still known.
    np.testing.assert_array_equal(unknown[builder.word_columns], empty[builder.word_columns])
    assert not np.isnan(unknown[builder.word_columns]).any()


def test_skill_aliases_fold_to_the_vocabulary(builder) -> None:
    assert "power bi" in builder.skills
    a, _ = builder.encode({"job_title": "Data Analyst", "skills": ["PowerBI"]})
    b, _ = builder.encode({"job_title": "Data Analyst", "skills": ["power bi"]})
    np.testing.assert_array_equal(a, b)


def test_adapters_and_serving_encode_country_spellings_alike(builder, sources, settings) -> None:
    # Employee and employer country given as differently spelled names of one
    # country (and the employer as its code): never "employer abroad".
    texts = list(COUNTRY_SPELLINGS)
    codes = list(COUNTRY_SPELLINGS.values())
    raw = pd.DataFrame(
        {"job_title": "Data Scientist", "country": texts, "company_country": codes[::-1]}
    )
    raw = pd.concat([raw, raw.assign(company_country=codes)], ignore_index=True)
    records = adapt(raw, "canonical", sources.sources["canonical"], settings).records
    assert records["country"].tolist() == codes + codes
    matrix = builder.transform(records)
    for i, job in raw.iterrows():
        row, warnings = builder.encode(job.to_dict())
        columns = [AT["country"], AT["region"], AT["employer_abroad"]]
        np.testing.assert_array_equal(row[columns], matrix[i, columns])
        assert not any("not recognised" in w for w in warnings)
    same = len(texts) + np.arange(len(texts))
    assert (matrix[same, AT["employer_abroad"]] == 0).all()
    assert builder.encode({"job_title": "Data Scientist", "country": "UK"})[0][AT["country"]] == (
        builder.countries.index("GB")
    )


def test_an_unknown_country_code_warns_and_is_missing(builder) -> None:
    row, warnings = builder.encode({"job_title": "Data Scientist", "country": "XX"})
    assert math.isnan(row[AT["country"]]) and math.isnan(row[AT["region"]])
    assert any("'XX' not recognised" in w for w in warnings)
