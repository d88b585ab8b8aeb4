"""One row specification feeds the three encoders: encode_job, encode_many, transform."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.country_spellings import COUNTRY_SPELLINGS

from salarymodel.core.features import FeatureBuilder
from salarymodel.core.row_spec import AT, BASE, BASE_COLUMNS, CATEGORICAL_COLUMNS, N_BASE, RowLayout
from salarymodel.data.dataset import load_training_data

# Odd spellings a person writes (and the empty and missing country).
ODD = [*COUNTRY_SPELLINGS, "Atlantis", "", None]


@pytest.fixture(scope="module")
def sample(settings, sources):
    return load_training_data(settings, sources, sample=2000, seed=11).records


@pytest.fixture(scope="module")
def builder(sample, settings):
    return FeatureBuilder.fit(sample, settings.features)


@pytest.fixture(scope="module")
def odd_records(sample):
    """Real records with odd country spellings for job and employer, and skills
    missing, empty, aliased, repeated and unknown."""
    records = sample.sample(400, random_state=3).reset_index(drop=True)  # both sources
    skills = records["skills"].astype(object).tolist()
    for i in range(len(records)):
        if i % 3 == 0:
            records.loc[i, "country"] = ODD[i % len(ODD)]
            records.loc[i, "company_country"] = ODD[(i // 3) % len(ODD)]
        if i % 5 == 0:
            skills[i] = [] if i % 2 else None
        elif i % 7 == 0 and isinstance(skills[i], list):
            skills[i] = [*skills[i], "PowerBI", "power bi", "zorglang"]
    records["skills"] = skills
    return records


def test_the_three_encoders_give_bit_identical_rows_on_odd_real_records(
    builder, odd_records
) -> None:
    jobs = odd_records.to_dict("records")
    matrix = builder.transform(odd_records)
    many, warnings, countries = builder.encode_many(jobs)
    assert matrix.tobytes() == many.tobytes()  # NaNs where the other has them too
    for i, job in enumerate(jobs):
        one = builder.encode_job(job)
        assert one.row.tobytes() == matrix[i].tobytes(), f"row {i}: {job}"
        assert one.warnings == warnings[i] and one.country == countries[i]
    # The odd cases are really there and came out as encode reads them.
    missing = [i for i, job in enumerate(jobs) if job["skills"] is None]
    # The survey view never states skills: its lists are missing (test_features).
    empty = [i for i, job in enumerate(jobs) if job["skills"] == [] and job["source"] == "postings"]
    assert missing and empty
    assert np.isnan(matrix[missing, AT["n_skills"]]).all()
    assert np.isnan(matrix[missing][:, builder.skill_columns]).all()
    assert (matrix[empty, AT["n_skills"]] == 0).all()
    assert (matrix[empty][:, builder.skill_columns] == 0).all()
    folded = [
        i
        for i, job in enumerate(jobs)
        if isinstance(job["skills"], list) and "zorglang" in job["skills"]
    ]
    assert folded and all(any("zorglang" in w for w in warnings[i]) for i in folded)
    power_bi = N_BASE + builder.skills.index("power bi")
    assert (matrix[folded, power_bi] == 1).all()
    spelled = [i for i, job in enumerate(jobs) if job["country"] in COUNTRY_SPELLINGS]
    assert spelled and all(countries[i] == COUNTRY_SPELLINGS[jobs[i]["country"]] for i in spelled)


def test_transform_folds_skills_as_encode_does(builder, odd_records) -> None:
    """A frame's skill list is read as a request's: aliases folded, repeats counted once."""
    head = odd_records.head(1).copy()
    head["skills"] = [["PowerBI", "power bi", "Power BI"]]
    row = builder.transform(head)[0]
    assert row[AT["n_skills"]] == 1.0
    assert row[N_BASE + builder.skills.index("power bi")] == 1.0


def test_the_layout_is_the_spec_in_order(builder) -> None:
    layout = builder.layout
    assert builder.columns == layout.columns and len(builder.columns) == layout.width
    assert builder.columns[:N_BASE] == BASE_COLUMNS == [c.name for c in BASE]
    assert builder.columns[layout.skill_block] == [f"skill:{s}" for s in builder.skills]
    assert builder.columns[layout.word_block] == [f"word:{w}" for w in builder.title_words]
    assert (
        builder.columns[layout.place_block]
        == builder.location_columns
        == [
            "state",
            "area_wage_ratio",
        ]
    )
    categorical = [builder.columns[i] for i in builder.categorical_indices]
    assert categorical == [*CATEGORICAL_COLUMNS, "state"]
    # Every looked-up column names a vocabulary the builder has.
    tables = builder.lookup_tables()
    assert all(c.lookup in tables for c in BASE if c.lookup is not None)


def test_a_layout_without_places_has_no_place_index() -> None:
    layout = RowLayout(skills=["python"], words=["data"], place=[])
    assert layout.columns == [*BASE_COLUMNS, "skill:python", "word:data"]
    assert layout.place_index("state") is None
    assert layout.place_block == slice(layout.width, layout.width)
    assert layout.categorical_indices == [AT[c] for c in CATEGORICAL_COLUMNS]
    assert layout.width == N_BASE + 2
