"""The three encoders (encode_job, encode_many, transform) column by column, on real rows (fast).

Every job here is encoded by the one-job and the batch path (and, where it is a
canonical record, by ``transform``), and the columns are checked against what
the job says: the three must agree and be right. A small real sample loaded
once (tests/helpers/real_rows.py) keeps this quick enough for mutation testing.
"""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pandas as pd
import pytest
from helpers.real_rows import real_records, real_settings

from salarymodel.core.encoding import resolve_country
from salarymodel.core.features import FeatureBuilder
from salarymodel.core.row_spec import AT
from salarymodel.data import geography
from salarymodel.data.titles import title_rules
from salarymodel.vocabulary import COMPANY_SIZE_ORDER, EMPLOYMENT_TYPES, EXPERIENCE_ORDER


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    return real_records().reset_index(drop=True)


@pytest.fixture(scope="module")
def builder(records) -> FeatureBuilder:
    return FeatureBuilder.fit(records, real_settings().features)


def all_three(builder: FeatureBuilder, jobs: list[dict]) -> np.ndarray:
    """The rows of ``jobs`` from encode_many, checked equal to encode_job's, warnings too."""
    matrix, warnings, countries = builder.encode_many(jobs)
    for i, job in enumerate(jobs):
        one = builder.encode_job(job)
        np.testing.assert_array_equal(matrix[i], one.row)
        assert warnings[i] == one.warnings and countries[i] == one.country
    return matrix


def test_fit_learns_vocabularies_from_counts(records) -> None:
    # Fit here, not in a shared fixture: mutation testing runs the tests that call fit.
    features = real_settings().features
    builder = FeatureBuilder.fit(records, features)
    counts = records["country"].value_counts()
    assert builder.countries == [*sorted(counts[counts >= 20].index), "other"]
    assert "IN" in records["country"].tolist() or len(counts[counts < 20])
    assert all(counts[c] >= 20 for c in builder.countries[:-1])
    assert any(0 < n < 20 for n in counts)  # some countries are pooled
    skills = pd.Series([s for row in records["skills"] if isinstance(row, list) for s in row])
    skill_counts = skills.value_counts()
    assert builder.skills == sorted(skill_counts[skill_counts >= features.min_skill_count].index)
    assert any(n < features.min_skill_count for n in skill_counts)
    assert builder.sources == ["aijobs", "postings"]
    assert builder.titles[-1] == "other" and builder.regions[-1] == "other"
    assert builder.role_families == [f.family for f in features.role_families] + ["other"] or (
        builder.role_families[-1] == "other"
    )
    state_counts = records.loc[records["country"] == "US", "state"].value_counts()
    assert builder.states == [*sorted(state_counts[state_counts >= 20].index), "other"]
    assert len(builder.states) > 2
    assert builder.bls is not None
    assert len(builder.title_words) > 5


def test_layout_of_the_row(builder) -> None:
    n = len(builder.columns)
    assert builder.columns[: len(AT)] == list(AT)
    assert builder.columns[-2:] == ["state", "area_wage_ratio"]
    assert builder.layout.place_index("state") == n - 2
    assert builder.layout.place_index("area_wage_ratio") == n - 1
    assert builder.layout.place_index("nowhere") is None
    skills, words = builder.skill_columns, builder.word_columns
    assert builder.columns[skills] == ["skill:" + s for s in builder.skills]
    assert builder.columns[words] == ["word:" + w for w in builder.title_words]
    # The time column (features.time_within_year) sits between the words and the place.
    assert builder.columns[builder.layout.time_block] == ["quarter_time"]
    assert skills.stop == words.start and words.stop == n - 3
    expected = [AT[c] for c in ("role_family", "title", "country", "region")]
    expected += [AT["employment_type"], AT["source"], n - 2]
    assert builder.categorical_indices == expected


def test_the_time_column_places_postings_by_quarter_and_leaves_the_survey_out(
    builder, records
) -> None:
    time = builder.transform(records)[:, builder.layout.time_block.start]
    postings = (records["source"] == "postings").to_numpy()
    assert builder.month_sources == ["postings"] and postings.any() and (~postings).any()
    # The middle of each posting's quarter; the survey states none and reads missing.
    expected = records["year"] * 4 + (records["month"] - 1) // 3 + 0.5
    np.testing.assert_array_equal(time[postings], expected[postings].to_numpy(float))
    assert np.isnan(time[~postings]).all()
    # A job a person describes states no month: the middle of its year in the
    # postings view (a later year lands past the data), missing in the survey's.
    job = {"job_title": "Data Scientist", "country": "US", "year": 2026, "month": "13"}
    rows = all_three(builder, [{**job, "source": "postings"}, {**job, "source": "aijobs"}])
    assert rows[0, builder.layout.time_block.start] == 2026 * 4 + 2.0
    assert np.isnan(rows[1, builder.layout.time_block.start])
    # March ends the first quarter, April starts the second; 0 is no month.
    dated = [{**job, "source": "postings", "year": 2023, "month": m} for m in (3, 4, 12, 0)]
    quarters = all_three(builder, dated)[:, builder.layout.time_block.start]
    assert quarters.tolist() == [2023 * 4 + q for q in (0.5, 1.5, 3.5, 2.0)]


def test_real_records_encode_alike_on_every_path(builder, records) -> None:
    jobs = records.to_dict("records")
    matrix = builder.transform(records)
    np.testing.assert_array_equal(builder.encode_many(jobs)[0], matrix)
    for i in range(0, len(jobs), 41):
        np.testing.assert_array_equal(builder.encode_job(jobs[i]).row, matrix[i])


def test_each_base_column_says_what_the_record_says(builder, records) -> None:
    matrix = builder.transform(records)
    tables = {name: {v: i for i, v in enumerate(getattr(builder, name))} for name in ("sources",)}
    for i in range(0, len(records), 13):
        row, record = matrix[i], records.iloc[i]
        level, size = record["experience_level"], record["company_size"]
        assert _same(row[AT["experience_level"]], EXPERIENCE_ORDER.get(level, math.nan))
        assert _same(row[AT["company_size"]], COMPANY_SIZE_ORDER.get(size, math.nan))
        assert row[AT["remote_ratio"]] == record["remote_ratio"]
        assert row[AT["year"]] == record["year"]
        assert row[AT["source"]] == tables["sources"][record["source"]]
        kind = record["employment_type"]
        assert _same(
            row[AT["employment_type"]],
            EMPLOYMENT_TYPES.index(kind) if kind in EMPLOYMENT_TYPES else math.nan,
        )
        country = record["country"]
        if isinstance(country, str):
            code = builder.countries.index(country if country in builder.countries else "other")
            assert row[AT["country"]] == code and not math.isnan(row[AT["region"]])
        else:
            assert math.isnan(row[AT["country"]]) and math.isnan(row[AT["region"]])
        skills = record["skills"]
        flags = row[builder.skill_columns]
        if isinstance(skills, list):
            assert row[AT["n_skills"]] == len(skills)
            known = {s for s in skills if s in builder.skills}
            assert {builder.skills[j] for j in np.flatnonzero(flags)} == known
            assert set(np.unique(flags)) <= {0.0, 1.0}
        else:
            assert math.isnan(row[AT["n_skills"]]) and np.isnan(flags).all()
    assert (matrix[:, AT["experience_level"]] == EXPERIENCE_ORDER["SE"]).any()
    assert np.isnan(matrix[:, AT["company_size"]]).any()


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_odd_and_missing_values_become_missing_never_errors(builder) -> None:
    base = {"job_title": "Senior Data Scientist", "country": "US", "source": "aijobs"}
    jobs = [
        base,
        {**base, "remote_ratio": "50", "year": "2023", "experience_level": "EX"},
        {**base, "remote_ratio": "half", "year": None, "company_size": "XL"},
        {**base, "remote_ratio": float("nan"), "employment_type": "PT", "company_size": "S"},
        {**base, "remote_ratio": 100, "year": 2024.0, "employment_type": "zz"},
        {**base, "remote_ratio": [50], "experience_level": None, "source": None},
        {**base, "remote_ratio": True},
    ]
    matrix = all_three(builder, jobs)
    column = matrix[:, AT["remote_ratio"]]
    assert column[1] == 50.0 and column[4] == 100.0 and column[6] == 1.0
    assert np.isnan(column[[0, 2, 3, 5]]).all()
    year = matrix[:, AT["year"]]
    assert year[1] == 2023.0 and year[4] == 2024.0 and np.isnan(year[[0, 2]]).all()
    assert matrix[1, AT["experience_level"]] == EXPERIENCE_ORDER["EX"]
    assert np.isnan(matrix[[0, 5], AT["experience_level"]]).all()
    assert matrix[3, AT["company_size"]] == COMPANY_SIZE_ORDER["S"]
    assert np.isnan(matrix[2, AT["company_size"]])
    assert matrix[3, AT["employment_type"]] == EMPLOYMENT_TYPES.index("PT")
    assert np.isnan(matrix[4, AT["employment_type"]])
    assert matrix[0, AT["source"]] == 0 and np.isnan(matrix[5, AT["source"]])


def test_unknown_sources_warn_and_are_missing(builder) -> None:
    jobs = [
        {"job_title": "Data Analyst", "source": "postings"},
        {"job_title": "Data Analyst", "source": "linkedin"},
        {"job_title": "Data Analyst", "source": float("nan")},
        {"job_title": "Data Analyst", "source": "linkedin"},
    ]
    matrix = all_three(builder, jobs)
    assert matrix[0, AT["source"]] == 1 and np.isnan(matrix[1:, AT["source"]]).all()
    _, warnings, _ = builder.encode_many(jobs)
    assert not any("source" in w for w in warnings[0] + warnings[2])
    assert [sum("linkedin" in w for w in ws) for ws in warnings] == [0, 1, 0, 1]


def test_skills_block_on_every_path(builder) -> None:
    known = builder.skills[:3]
    base = {"job_title": "Data Engineer", "country": "DE"}
    jobs = [
        {**base, "skills": known},
        {**base, "skills": [*known, "zorglang"]},
        {**base, "skills": ["PowerBI", "power bi", "Power-BI"]},
        {**base, "skills": []},
        {**base},
        {**base, "skills": "python"},  # not a list: unstated
        {**base, "skills": tuple(known)},
        {**base, "skills": [known[0], known[0]]},
    ]
    matrix = all_three(builder, jobs)
    flags = matrix[:, builder.skill_columns]
    count = matrix[:, AT["n_skills"]]
    positions = [builder.skills.index(s) for s in known]
    assert set(np.flatnonzero(flags[0])) == set(positions) and count[0] == 3
    assert set(np.flatnonzero(flags[1])) == set(positions) and count[1] == 4
    assert "power bi" in builder.skills
    assert np.flatnonzero(flags[2]).tolist() == [builder.skills.index("power bi")]
    assert count[2] == 1  # three spellings of one skill
    assert count[3] == 0 and (flags[3] == 0).all()
    assert np.isnan(count[[4, 5]]).all() and np.isnan(flags[[4, 5]]).all()
    np.testing.assert_array_equal(matrix[6], matrix[0])
    assert count[7] == 1 and np.flatnonzero(flags[7]).tolist() == [positions[0]]
    _, warnings, _ = builder.encode_many(jobs)
    assert any("zorglang" in w for w in warnings[1]) and not any(
        "zorglang" in w for w in warnings[0]
    )
    # The same unknown skill in one batch warns each job that lists it.
    again = builder.encode_many([jobs[1], jobs[1]])[1]
    assert again[0] == again[1] == warnings[1]


def test_odd_country_spellings_and_the_employer_abroad(builder) -> None:
    pairs = [  # (country, employer's country, abroad?)
        ("Germany", "DEU", 0.0),
        (" gb ", "United Kingdom", 0.0),
        ("U.S.A.", "us", 0.0),
        ("India", "US", 1.0),
        ("US", None, math.nan),
        (None, "US", math.nan),
        ("Atlantis", "US", math.nan),
        ("US", "Atlantis", math.nan),
        ("Bhutan", "Bhutan", 0.0),
    ]
    jobs = [
        {"job_title": "Data Scientist", "country": a, "company_country": b} for a, b, _ in pairs
    ]
    matrix = all_three(builder, jobs)
    abroad = matrix[:, AT["employer_abroad"]]
    np.testing.assert_array_equal(abroad, [p[2] for p in pairs])
    countries = matrix[:, AT["country"]]
    assert countries[0] == builder.countries.index("DE") if "DE" in builder.countries else True
    assert countries[2] == builder.countries.index("US")
    assert countries[8] == builder.countries.index("other")  # rare: pooled
    assert not math.isnan(matrix[8, AT["region"]])
    assert np.isnan(matrix[[5, 6], AT["country"]]).all()
    _, warnings, iso2 = builder.encode_many(jobs)
    assert iso2 == ["DE", "GB", "US", "IN", "US", None, None, "US", "BT"]
    assert any("Atlantis" in w for w in warnings[6]) and any(
        "rare or unseen" in w for w in warnings[8]
    )
    assert not warnings[2] and not warnings[3]


def test_a_location_that_moves_the_country_takes_the_employer_along(builder) -> None:
    job = {"job_title": "Data Engineer"}
    jobs = [
        {**job, "country": "US", "company_country": "US"},
        {**job, "country": "US", "location": "London, UK"},
        {**job, "country": "US", "company_country": "US", "location": "London, UK"},
        {**job, "country": "US", "company_country": "DE", "location": "London, UK"},
        {**job, "country": "US", "location": "Austin, TX"},
        {**job, "country": "US", "location": "Nowhereville, ZZ"},
        {**job, "country": "US", "state": "TX"},
        {**job, "country": "US", "location": "   "},
        {**job, "country": None, "location": "Austin, TX", "company_country": "US"},
        {**job, "country": "GB", "company_country": "US", "location": "London, UK"},
    ]
    matrix = all_three(builder, jobs)
    _, warnings, iso2 = builder.encode_many(jobs)
    assert iso2 == ["US", "GB", "GB", "GB", "US", "US", "US", "US", "US", "GB"]
    codes = matrix[:, AT["country"]]
    assert codes[1] == codes[2] == builder.countries.index("GB")
    abroad = matrix[:, AT["employer_abroad"]]
    assert abroad[0] == 0.0 and abroad[2] == 0.0 and abroad[3] == 1.0 and abroad[9] == 1.0
    assert math.isnan(abroad[1]) and abroad[8] == 0.0
    assert any("London" in w for w in warnings[1]) and not any("London" in w for w in warnings[9])
    assert not warnings[4] and not warnings[8]
    assert any("Nowhereville" in w for w in warnings[5])
    state = matrix[:, builder.layout.place_index("state")]
    assert "TX" in builder.states
    assert (state[[4, 6, 8]] == builder.states.index("TX")).all()
    assert np.isnan(state[[0, 1, 5, 7, 9]]).all()
    wage = matrix[:, builder.layout.place_index("area_wage_ratio")]
    assert math.isnan(wage[1]) and not math.isnan(wage[4])


def test_place_columns_for_us_states_and_elsewhere(builder, records) -> None:
    jobs = [
        {"job_title": "Data Scientist", "country": "US", "state": "NY", "metro": "0035620"},
        {"job_title": "Data Scientist", "country": "US", "state": "WY"},
        {"job_title": "Data Scientist", "country": "US"},
        {"job_title": "Data Scientist", "country": "DE", "state": "NY"},
        {"job_title": "Vibes Wrangler", "country": "US", "state": "NY"},
    ]
    matrix = all_three(builder, jobs)
    state = matrix[:, builder.layout.place_index("state")]
    wage = matrix[:, builder.layout.place_index("area_wage_ratio")]
    assert state[0] == builder.states.index("NY")
    assert "WY" not in builder.states and state[1] == builder.states.index("other")
    assert math.isnan(state[2]) and math.isnan(state[3])
    assert not math.isnan(wage[0]) and math.isnan(wage[2])  # no state: no area
    assert math.isnan(wage[3]) and math.isnan(wage[4])  # outside the US; no occupation
    # transform reads the same columns from records' state and metro.
    us = records[(records["country"] == "US") & records["state"].notna()].head(30)
    np.testing.assert_array_equal(builder.transform(us), all_three(builder, us.to_dict("records")))


def test_titles_families_and_words_on_every_path(builder) -> None:
    jobs = [
        {"job_title": "Senior Machine Learning Engineer"},
        {"job_title": "Vibes Wrangler"},
        {"job_title": "Vibes Wrangler", "job_category": "Senior Data Scientist"},
        {"job_title": "Data Scientist", "job_category": float("nan")},
        {"job_title": None},
    ]
    matrix = all_three(builder, jobs)
    families = [builder.role_families[int(v)] for v in matrix[:, AT["role_family"]]]
    assert families == ["ml_engineer", "other", "data_scientist", "data_scientist", "other"]
    seniority = matrix[:, AT["title_seniority"]]
    assert seniority[0] == 3 and seniority[2] == 3 and np.isnan(seniority[[1, 3]]).all()
    assert matrix[1, AT["title"]] == builder.titles.index("other")
    assert matrix[3, AT["title"]] == builder.titles.index("data scientist")
    words = matrix[:, builder.word_columns]
    flagged = {builder.title_words[j] for j in np.flatnonzero(words[0])}
    assert {"senior", "engineer"} <= flagged
    # A flag is 1 for each of the title's own frequent words, 0 for every other word.
    rules = title_rules(real_settings().features)
    for row, job in zip(words, jobs, strict=True):
        own = set(rules.words(job["job_title"])) & set(builder.title_words)
        expected = [float(w in own) for w in builder.title_words]
        np.testing.assert_array_equal(row, expected)
    assert (words[2] == words[1]).all()  # the short title lends no words
    _, warnings, _ = builder.encode_many(jobs)
    assert any("Vibes Wrangler" in w for w in warnings[1])
    assert not any("Vibes" in w for w in warnings[2])


def test_a_batch_reuses_nothing_across_different_jobs(builder, records) -> None:
    """Jobs that share a title, place, skills or source still get their own rows."""
    jobs = records.head(60).to_dict("records") * 2
    matrix = all_three(builder, jobs)
    np.testing.assert_array_equal(matrix[:60], matrix[60:])
    assert len({tuple(np.nan_to_num(r, nan=-9)) for r in matrix}) > 20


def test_vocabularies_round_trip_and_a_wrong_layout_is_refused(builder, records) -> None:
    stored = json.loads(json.dumps(builder.to_dict()))
    again = FeatureBuilder.from_dict(stored)
    np.testing.assert_array_equal(again.transform(records), builder.transform(records))
    for name in ("countries", "regions", "sources", "skills", "titles", "states", "title_words"):
        assert getattr(again, name) == getattr(builder, name)
    assert stored["columns"] == builder.columns
    broken = {**stored, "columns": stored["columns"][:-1]}
    with pytest.raises(ValueError, match=r"^stored feature columns do not match the vocabulary$"):
        FeatureBuilder.from_dict(broken)
    # A bundle saved before the place, title-word and time settings had none of them.
    gone = ("states", "bls", "title_words", "month_sources")
    old = {k: v for k, v in stored.items() if k not in gone}
    old["features"] = {k: v for k, v in stored["features"].items() if k != "time_within_year"}
    old["features"]["location"] = None
    old["features"]["title_words"] = {**stored["features"]["title_words"], "min_count": None}
    old["columns"] = stored["columns"][: builder.skill_columns.stop]
    plain = FeatureBuilder.from_dict(old)
    assert plain.states == [] and plain.bls is None and plain.title_words == []
    assert not plain.features.time_within_year and plain.layout.time == []
    row = plain.encode_job({"job_title": "Data Scientist", "country": "US", "state": "NY"}).row
    assert len(row) == len(plain.columns) == builder.skill_columns.stop


def test_without_place_features_the_location_is_not_read(builder, records) -> None:
    features = real_settings().features.model_copy(update={"location": None})
    plain = FeatureBuilder.fit(records, features)
    assert plain.states == [] and plain.bls is None
    assert plain.columns == builder.columns[: builder.layout.place_index("state")]
    job = {"job_title": "Data Engineer", "country": "GB", "location": "Austin, TX"}
    encoded = plain.encode_job(job)
    assert encoded.country == "GB" and encoded.state is None and encoded.metro is None
    assert not any("Austin" in w for w in encoded.warnings)
    np.testing.assert_array_equal(plain.encode_many([job])[0][0], encoded.row)
    np.testing.assert_array_equal(
        plain.transform(records.head(40)), plain.encode_many(records.head(40).to_dict("records"))[0]
    )


def _place(builder, country: str) -> tuple[str | None, float, float, list[str]]:
    # A person's country text as every encoder reads it: resolved, then coded.
    iso2, note = resolve_country(country)
    code, region, warning = builder.country_code(iso2)
    return iso2, code, region, [w for w in (note, warning) if w]


def test_a_person_given_country_resolves_to_its_codes(builder) -> None:
    iso2, code, region, warnings = _place(builder, "U.S.A.")
    assert iso2 == "US" and warnings == []
    row = builder.encode_job({"job_title": "Data Scientist", "country": "US"}).row
    assert (code, region) == (row[AT["country"]], row[AT["region"]])
    iso2, code, region, warnings = _place(builder, "Atlantis")
    assert iso2 is None and np.isnan([code, region]).all()
    assert len(warnings) == 1 and "Atlantis" in warnings[0]
    iso2, code, _, warnings = _place(builder, "Bhutan")
    assert iso2 == "BT" and code == builder.countries.index("other")
    assert len(warnings) == 1 and "rare or unseen" in warnings[0]


def test_bls_reference_reads_the_jobs_occupation_and_place(builder, records) -> None:
    occupations = real_settings().features.location.occupations
    ny = {"job_title": "Data Scientist", "country": "US", "state": "NY", "metro": "0035620"}
    expected = builder.bls.reference(occupations["data_scientist"], "NY", "0035620")
    assert expected is not None and builder.reference(ny) == expected
    austin = {"job_title": "Data Engineer", "country": "US", "location": "Austin, TX"}
    assert builder.reference(austin) == builder.bls.reference(
        occupations["data_engineer"], "TX", "0012420"
    )
    moved = {"job_title": "Data Engineer", "country": "GB", "location": "Austin, TX"}
    assert builder.reference({**moved, "country": None}) == builder.reference(austin)
    helped = {"job_title": "Vibes Wrangler", "job_category": "Data Scientist", "country": "US"}
    assert builder.reference(helped) == builder.bls.reference(
        occupations["data_scientist"], None, None
    )
    assert builder.reference({**ny, "country": "DE"}) is None
    assert builder.reference({"job_title": "Data Scientist", "country": "US"}) != expected
    features = real_settings().features.model_copy(update={"location": None})
    assert FeatureBuilder.fit(records.head(200), features).reference(ny) is None


def test_a_value_seen_exactly_the_minimum_count_is_in_the_vocabulary(records) -> None:
    """Each vocabulary keeps a value of ``count >= minimum`` (not ``>``), counting a core
    title over every raw title that reduces to it; below the minimum it is pooled."""
    shipped = real_settings().features
    rules = title_rules(shipped)
    cores = records["job_title"].astype(object).map(rules.core_title)
    core_counts = cores[cores.astype(bool)].value_counts()
    # A core title reached only by adding up several raw titles (each below its count).
    summed = next(
        t
        for t, n in core_counts.items()
        if n >= 5 and records["job_title"][cores == t].nunique() > 1
    )
    us = records["country"] == "US"
    state_counts = records.loc[us, "state"].dropna().value_counts()
    countries = records["country"].dropna().value_counts()
    for minimum in (int(countries["GB"]), int(core_counts[summed]), int(state_counts.iloc[3])):
        features = shipped.model_copy(update={"min_category_count": minimum})
        builder = FeatureBuilder.fit(records, features)
        assert builder.countries == [*sorted(countries[countries >= minimum].index), "other"]
        assert builder.titles == [*sorted(core_counts[core_counts >= minimum].index), "other"]
        assert builder.states == [*sorted(state_counts[state_counts >= minimum].index), "other"]
    assert (
        "GB"
        not in FeatureBuilder.fit(
            records, shipped.model_copy(update={"min_category_count": int(countries["GB"]) + 1})
        ).countries
    )
    # Regions: every region of a country seen, however rare the country.
    regions = {geography.region(c) for c in countries.index} - {None}
    assert builder.regions == [*sorted(regions), "other"] and len(regions) > 2
    skills = pd.Series([s for row in records["skills"] if isinstance(row, list) for s in row])
    skill_counts = skills.value_counts()
    exact = int(skill_counts.iloc[5])
    fitted = FeatureBuilder.fit(records, shipped.model_copy(update={"min_skill_count": exact}))
    assert skill_counts.index[5] in fitted.skills
    assert fitted.skills == sorted(skill_counts[skill_counts >= exact].index)
    words = pd.Series(
        [w for title in records["job_title"].astype(object) for w in rules.words(title)]
    ).value_counts()
    at = int(words.iloc[10])
    title_words = shipped.title_words.model_copy(update={"min_count": at})
    fitted = FeatureBuilder.fit(records, shipped.model_copy(update={"title_words": title_words}))
    assert fitted.title_words == sorted(words[words >= at].index)


def test_records_without_a_state_column_fit_no_states(records) -> None:
    """Frames from before the place fields have no ``state``: only "other", never a country."""
    builder = FeatureBuilder.fit(records.drop(columns=["state"]), real_settings().features)
    assert builder.states == ["other"]
    assert builder.countries == FeatureBuilder.fit(records, real_settings().features).countries


def test_bls_reference_of_a_job_given_a_state_and_of_a_builder_without_wages(builder) -> None:
    occupations = real_settings().features.location.occupations
    ca = {"job_title": "Data Scientist", "country": "US", "state": "CA"}
    by_state = builder.bls.reference(occupations["data_scientist"], "CA", None)
    national = builder.bls.reference(occupations["data_scientist"], None, None)
    assert by_state is not None and by_state != national
    assert builder.reference(ca) == by_state
    # A model whose bundle holds no wage table: no reference, never an error.
    without = copy.copy(builder)
    without.bls = None
    assert without.reference(ca) is None


def test_country_region_and_place_of_one_job(builder) -> None:
    """A country's region code is its UN sub-region's (else "other"); a US job's state,
    metro and area wage ratio are the ones it gives; the encoded job says its place."""
    code, region, warning = builder.country_code("GB")
    assert code == builder.countries.index("GB") and warning is None
    assert region == builder.regions.index(geography.region("GB"))
    # A rare country keeps its region; the warning names it.
    _, region, warning = builder.country_code("BT")
    assert region == builder.regions.index(geography.region("BT"))
    assert warning is not None and ("BT" in warning or "Bhutan" in warning)
    unseen = next(
        c for c in ("NG", "KE", "PE", "MN", "FJ") if geography.region(c) not in builder.regions
    )
    assert builder.country_code(unseen)[1] == builder.regions.index("other")
    occupations = real_settings().features.location.occupations
    wage = builder.layout.place_index("area_wage_ratio")
    soc = occupations["data_scientist"]
    ds = {"job_title": "Data Scientist", "country": "US"}
    for state, metro in (("CA", None), ("NY", "0035620"), (None, "0012420")):
        encoded = builder.encode_job({**ds, "state": state, "metro": metro})
        assert (encoded.country, encoded.state, encoded.metro) == ("US", state, metro)
        expected = builder.bls.area_ratio(soc, state, metro)
        assert encoded.row[wage] == pytest.approx(expected)
    by_state = builder.bls.area_ratio(soc, "NY", None)
    assert by_state != pytest.approx(builder.bls.area_ratio(soc, "NY", "0035620"))
    assert by_state != pytest.approx(builder.bls.area_ratio(soc, None, None))
    # A builder without place features (no wage table) stores and reads back as such.
    plain = FeatureBuilder.fit(
        real_records().head(300), real_settings().features.model_copy(update={"location": None})
    )
    again = FeatureBuilder.from_dict(json.loads(json.dumps(plain.to_dict())))
    assert again.bls is None and again.columns == plain.columns


def test_a_titles_gaps_are_filled_from_the_short_title_and_nothing_else(builder) -> None:
    """The source's short title (``category``) fills only what the title leaves open:
    its family where the title has none, its core's code where the title's is too rare,
    its seniority where the title says none."""
    code = builder.titles.index
    filled = builder.job_title("Senior Vibes Wrangler", "Data Scientist")
    assert (filled.family, filled.code, filled.seniority) == (
        "data_scientist",
        code("data scientist"),
        builder.job_title("Senior Data Scientist").seniority,
    )
    kept = builder.job_title("Data Scientist", "Senior Machine Learning Engineer")
    assert (kept.family, kept.code) == ("data_scientist", code("data scientist"))
    assert kept.seniority == builder.job_title("Senior Machine Learning Engineer").seniority
    assert math.isnan(builder.job_title("Data Scientist").seniority)
    whole = builder.job_title("Senior Data Scientist", "Junior Data Engineer")
    assert whole == builder.job_title("Senior Data Scientist")  # nothing left open
    assert whole.seniority != builder.job_title("Junior Data Engineer").seniority
    alone = builder.job_title("Vibes Wrangler")
    assert (alone.family, alone.code) == ("other", code("other")) and math.isnan(alone.seniority)
    # Known skills only: no warning.
    known = {"job_title": "Data Scientist", "skills": builder.skills[:3]}
    assert builder.encode_job(known).warnings == []


def test_pandas_missing_values_read_as_missing(builder) -> None:
    """``pd.NA`` (a string column's missing cell) is missing, as None and NaN are."""
    base = {"job_title": "Data Scientist", "country": "US", "source": "postings"}
    for field in ("country", "source", "experience_level", "company_size", "remote_ratio"):
        with_na = builder.encode_job({**base, field: pd.NA})
        with_none = builder.encode_job({**base, field: None})
        np.testing.assert_array_equal(with_na.row, with_none.row)
        assert with_na.warnings == with_none.warnings


# ----- what a source never states reads as missing in its view (issue 22) ---------------
def test_the_builder_records_which_sources_state_skills_from_the_data(records) -> None:
    builder = FeatureBuilder.fit(records, real_settings().features)
    assert builder.skill_sources == ["postings"]  # the survey's records have no skill list
    # From the data, not a list: survey records that did list skills would count.
    listed = records.copy()
    survey = listed.index[listed["source"] == "aijobs"][:3]
    listed["skills"] = listed["skills"].astype(object)
    for i in survey:
        listed.at[i, "skills"] = ["python"]
    refit = FeatureBuilder.fit(listed, real_settings().features)
    assert refit.skill_sources == ["aijobs", "postings"]


def test_a_view_that_never_states_skills_reads_them_as_missing_with_a_warning(
    builder, records
) -> None:
    postings = records[(records["source"] == "postings") & records["skills"].map(bool)]
    job = {**postings.iloc[0].to_dict(), "source": "aijobs"}
    row, warnings = builder.encode(job)
    bare, bare_warnings = builder.encode({**job, "skills": None})
    np.testing.assert_array_equal(row, bare)  # as if no skills were given
    assert math.isnan(row[AT["n_skills"]]) and np.isnan(row[builder.skill_columns]).all()
    assert any(w.startswith("the survey does not record skills;") for w in warnings)
    assert not any("skills" in w for w in bare_warnings)  # nothing given, nothing said
    # The postings view still reads them, and the three encoders agree.
    read, read_warnings = builder.encode({**job, "source": "postings"})
    assert read[AT["n_skills"]] > 0 and (read[builder.skill_columns] == 1).any()
    assert not any("does not record skills" in w for w in read_warnings)
    jobs = [job, {**job, "source": "postings"}]
    many, many_warnings, _ = builder.encode_many(jobs)
    np.testing.assert_array_equal(many, np.vstack([row, read]))
    assert many_warnings == [warnings, read_warnings]
    frame = pd.DataFrame(jobs)
    np.testing.assert_array_equal(builder.transform(frame), many)


def test_a_bundle_without_the_fact_reads_skills_in_every_view(builder, records) -> None:
    saved = builder.to_dict()
    del saved["skill_sources"]  # as bundles saved before it was recorded
    old = FeatureBuilder.from_dict(json.loads(json.dumps(saved)))
    assert old.skill_sources is None
    job = {"job_title": "Data Scientist", "country": "US", "source": "aijobs"}
    row, warnings = old.encode({**job, "skills": ["python", "sql"]})
    assert row[AT["n_skills"]] == 2 and not any("skills" in w for w in warnings)
    again = FeatureBuilder.from_dict(json.loads(json.dumps(builder.to_dict())))
    assert again.skill_sources == builder.skill_sources


def test_the_builder_records_which_title_words_each_source_uses_from_the_data(
    records, builder
) -> None:
    assert sorted(builder.word_sources) == builder.sources == ["aijobs", "postings"]
    assert "senior" in builder.word_sources["postings"]
    assert "senior" not in builder.word_sources["aijobs"]  # no survey title says it
    assert {"data", "scientist"} <= set(builder.word_sources["aijobs"])
    # From the data, not a list: survey titles that did say it would count.
    said = records.copy()
    survey = said.index[said["source"] == "aijobs"][:3]
    said.loc[survey, "job_title"] = "Senior Data Scientist"
    assert "senior" in FeatureBuilder.fit(said, real_settings().features).word_sources["aijobs"]


SENIOR_US = {"job_title": "Senior Data Scientist", "country": "US", "experience_level": "SE"}


def test_a_view_whose_records_never_use_a_title_word_reads_it_as_absent(builder) -> None:
    words, senior = builder.word_columns, builder.title_words.index("senior")
    survey = {**SENIOR_US, "source": "aijobs"}
    row, warnings = builder.encode(survey)
    plain, _ = builder.encode({**survey, "job_title": "Data Scientist"})
    np.testing.assert_array_equal(row[words], plain[words])  # the title-word part
    assert row[words].sum() > 0 and row[words][senior] == 0
    # Only the words: the same row as a bundle without the fact, outside them.
    saved = builder.to_dict()
    del saved["word_sources"]
    read_all, old_warnings = FeatureBuilder.from_dict(saved).encode(survey)
    outside = np.ones(len(row), dtype=bool)
    outside[words] = False
    np.testing.assert_array_equal(row[outside], read_all[outside])
    assert read_all[words][senior] == 1 and warnings == old_warnings
    # The postings view still reads the word, and the three encoders agree.
    postings, _ = builder.encode({**survey, "source": "postings"})
    assert postings[words][senior] == 1
    jobs = [survey, {**survey, "source": "postings"}, {**survey, "job_title": "Data Scientist"}]
    many, _, _ = builder.encode_many(jobs)
    np.testing.assert_array_equal(many, np.vstack([row, postings, plain]))
    np.testing.assert_array_equal(builder.transform(pd.DataFrame(jobs)), many)


def test_a_bundle_without_the_word_fact_reads_every_title_word_in_every_view(builder) -> None:
    saved = builder.to_dict()
    del saved["word_sources"]  # as bundles saved before it was recorded
    old = FeatureBuilder.from_dict(json.loads(json.dumps(saved)))
    assert old.word_sources is None
    senior = old.word_columns.start + old.title_words.index("senior")
    assert old.encode({**SENIOR_US, "source": "aijobs"})[0][senior] == 1
    again = FeatureBuilder.from_dict(json.loads(json.dumps(builder.to_dict())))
    assert again.word_sources == builder.word_sources
