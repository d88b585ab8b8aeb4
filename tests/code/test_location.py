"""Place below the country: the location resolver, the postings' rule, the features."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from salarymodel.core.features import FeatureBuilder
from salarymodel.core.row_spec import AREA_WAGE_COLUMN, STATE_COLUMN
from salarymodel.data.dataset import load_training_data
from salarymodel.data.derivations import RULES, RuleContext, posting_place
from salarymodel.data.geography import Location, load_places, resolve_location, us_states

AUSTIN = "0012420"  # BLS metro area codes
SAN_FRANCISCO = "0041860"
SAN_JOSE = "0041940"
NEW_YORK = "0035620"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Austin, TX", Location("US", "TX", AUSTIN)),
        ("San Francisco Bay Area", Location("US", "CA", SAN_FRANCISCO)),
        ("CA", Location("US", "CA")),
        ("California", Location("US", "CA")),
        ("New York, NY", Location("US", "NY", NEW_YORK)),
        ("Mountain View, CA", Location("US", "CA", SAN_JOSE)),  # a suburb, not in the name
        ("Arlington, TX", Location("US", "TX", "0019100")),  # Dallas-Fort Worth-Arlington
        ("Arlington, VA", Location("US", "VA", "0047900")),  # Washington-Arlington-Alexandria
        ("Winston-Salem, NC", Location("US", "NC", "0049180")),  # a hyphen inside a city
        ("Princeton, NJ", Location("US", "NJ", "0045940")),
        ("Fort Liberty, NC", Location("US", "NC")),  # a town in no metro: the state
        ("Seattle, WA, United States", Location("US", "WA", "0042660")),
        ("United States", Location("US")),
        ("Remote", Location(remote=True)),
        ("Anywhere", Location(remote=True)),
        ("London, UK", Location("GB")),
        ("Bengaluru, Karnataka, India", Location("IN")),
        ("Spain (+2 others)", Location("ES")),
        ("   ", Location()),
        ("Remote, US", Location("US", remote=True)),
        ("Remote, Austin, TX", Location("US", "TX", AUSTIN, remote=True)),
        # Without the comma, when the state's code is in capitals; a part in brackets
        # is read as one after a comma (both were "not recognised").
        ("Austin TX", Location("US", "TX", AUSTIN)),
        ("Austin (TX)", Location("US", "TX", AUSTIN)),
        ("Remote (US)", Location("US", remote=True)),
        ("Paris ME", Location("US", "ME")),
        # A lower-case pair of letters is not taken for a state's code.
        ("austin tx", Location(warning="location 'austin tx' not recognised")),
    ],
)
def test_locations_resolve_to_country_state_and_metro(text: str, expected: Location) -> None:
    assert resolve_location(text) == expected


def test_an_unknown_location_warns_naming_it_and_stays_at_the_country_level() -> None:
    found = resolve_location("Qwxz Flumpton")
    assert (found.country, found.state, found.metro) == (None, None, None)
    assert found.warning is not None and "Qwxz Flumpton" in found.warning
    # With a country given, that country's level, still with the warning.
    german = resolve_location("Qwxz Flumpton", "DE")
    assert german.country == "DE" and german.state is None and "Qwxz Flumpton" in german.warning


@pytest.mark.parametrize("text", [",", ", ,", "\x00", "\U0001f642", "ß" * 120])
def test_odd_texts_never_crash_and_warn(text: str) -> None:
    found = resolve_location(text)
    assert found.country is None and found.warning is not None


def test_a_country_given_outside_the_us_keeps_a_name_that_is_also_a_state() -> None:
    assert resolve_location("Georgia") == Location("US", "GA")  # the postings' reading
    assert resolve_location("Georgia", "GE") == Location("GE")
    assert resolve_location("Munich", "DE").country == "DE"


def test_the_place_table_has_every_state_and_the_metros_bls_names() -> None:
    places = load_places()
    assert len(us_states()) == 52  # 50 states, DC, Puerto Rico
    assert places.metros[AUSTIN].name == "Austin-Round Rock-San Marcos, TX"
    assert places.metros[NEW_YORK].states == ("NY", "NJ")
    assert all(code in places.metros for code in places.aliases.values())


# ----- the postings' job_location rule, on real values -------------------------------------------
@pytest.mark.parametrize(
    ("country", "location", "expected"),
    [
        ("United States", "New York, NY", ("NY", NEW_YORK)),
        ("United States", "San Jose, CA", ("CA", SAN_JOSE)),
        ("United States", "Irving, TX", ("TX", "0019100")),
        ("United States", "California", ("CA", None)),
        ("United States", "Georgia", ("GA", None)),
        ("United States", "John C. Stennis Space Center, MS", ("MS", None)),
        ("United States", "Anywhere", (None, None)),
        ("United States", "United States", (None, None)),
        ("Sudan", "Atlanta, GA", ("GA", "0012060")),  # the country field's mislabel
        ("India", "Bengaluru, Karnataka, India", (None, None)),
        ("Canada", "Toronto, ON, Canada", (None, None)),
        ("United Kingdom", "London, UK", (None, None)),
        ("United States", None, (None, None)),
    ],
)
def test_posting_place_rule(country: str, location: str | None, expected: tuple) -> None:
    assert posting_place(country, location) == expected


def test_the_rules_give_state_and_metro_for_most_us_postings(postings_raw, settings) -> None:
    sample = postings_raw.sample(3000, random_state=3)
    inputs = [sample["job_country"], sample["job_location"]]
    ctx = RuleContext(settings)
    states = RULES["posting_state"](inputs, ctx)
    metros = RULES["posting_metro"](inputs, ctx)
    us_named = sample["job_location"].str.contains(r", [A-Z]{2}$", na=False) & (
        sample["job_country"] == "United States"
    )
    # Every "City, ST" US posting gets its state; most get a metro.
    assert states[us_named].notna().all()
    assert states[us_named].isin(list(us_states())).all()
    assert metros[us_named].notna().mean() > 0.7
    assert states[sample["job_location"] == "Anywhere"].isna().all()
    assert states[sample["job_country"] == "India"].isna().all()
    assert metros.index.equals(sample.index)


# ----- features: the same in training and serving -------------------------------------------------
@pytest.fixture(scope="module")
def sample(settings, sources):
    return load_training_data(settings, sources, sample=3000, seed=11).records


@pytest.fixture(scope="module")
def builder(sample, settings):
    return FeatureBuilder.fit(sample, settings.features)


def test_place_columns_are_the_same_on_every_path_on_real_rows(builder, sample) -> None:
    """transform (training), encode (one request) and encode_many (batch) agree."""
    state = builder.layout.place_index(STATE_COLUMN)
    ratio = builder.layout.place_index(AREA_WAGE_COLUMN)
    assert state is not None and ratio is not None
    matrix = builder.transform(sample)
    us = (sample["country"] == "US").to_numpy()
    postings = us & (sample["source"] == "postings").to_numpy()
    assert np.isfinite(matrix[postings, ratio]).mean() > 0.6  # most US postings name a place
    assert np.isnan(matrix[us & ~postings, ratio]).all()  # the survey has no place below
    assert np.isnan(matrix[~us, ratio]).all() and np.isnan(matrix[~us, state]).all()
    jobs = [sample.iloc[i].to_dict() for i in range(0, len(sample), 5)]
    batch = builder.encode_many(jobs)[0]
    for k, job in enumerate(jobs):
        row = builder.encode(job)[0]
        np.testing.assert_array_equal(row[[state, ratio]], matrix[5 * k, [state, ratio]])
        np.testing.assert_array_equal(batch[k], row)


def test_a_location_text_encodes_as_the_postings_derived_place(builder, sample) -> None:
    """A person's "Austin, TX" gives the row a posting in Austin gets."""
    posting = sample[(sample["state"] == "TX") & (sample["metro"] == AUSTIN)].iloc[0].to_dict()
    typed = {**posting, "state": None, "metro": None, "location": "Austin, TX"}
    np.testing.assert_array_equal(builder.encode(typed)[0], builder.encode(posting)[0])
    frame = pd.DataFrame([typed])
    np.testing.assert_array_equal(builder.transform(frame)[0], builder.encode(typed)[0])


def test_area_wage_ratio_is_bls_metro_median_over_the_nation(builder) -> None:
    ratio = builder.layout.place_index(AREA_WAGE_COLUMN)
    job = {"job_title": "Data Scientist", "country": "US", "location": "San Francisco, CA"}
    value = builder.encode(job)[0][ratio]
    assert value == pytest.approx(170_110 / 120_230)  # BLS OEWS May 2025, 15-2051
    remote = builder.encode({**job, "location": "Remote"})[0][ratio]
    german = builder.encode({**job, "country": "DE", "location": "Berlin"})[0][ratio]
    assert math.isnan(remote) and math.isnan(german)


def test_an_unknown_location_warns_and_a_foreign_one_moves_the_country(builder) -> None:
    job = {"job_title": "Data Scientist", "country": "US", "location": "Qwxz Flumpton"}
    encoded = builder.encode_job(job)
    assert any("Qwxz Flumpton" in w and "country level" in w for w in encoded.warnings)
    assert encoded.country == "US" and encoded.state is None
    moved = builder.encode_job({**job, "location": "London, UK", "company_country": "US"})
    assert moved.country == "GB" and any("London, UK" in w for w in moved.warnings)


def test_models_without_location_keep_their_layout(sample, settings) -> None:
    """features.location off (models saved before it): no place columns, location ignored."""
    plain = FeatureBuilder.fit(sample, settings.features.model_copy(update={"location": None}))
    assert STATE_COLUMN not in plain.columns and AREA_WAGE_COLUMN not in plain.columns
    again = FeatureBuilder.from_dict(plain.to_dict())
    assert again.bls is None and again.states == []
    job = {"job_title": "Data Scientist", "country": "US", "location": "Qwxz"}
    assert plain.encode(job)[1] == [] and plain.reference(job) is None


def test_the_csv_path_reads_a_location_column_and_writes_the_reference(
    builder, sample, settings, sources
) -> None:
    from salarymodel.core.model import SalaryModel
    from salarymodel.core.prediction import predict_frame

    matrix = builder.transform(sample)
    model = SalaryModel.fit(
        sample, builder, settings.model, matrix, country_levels=settings.country_levels
    )
    model = model.fit_ranges(sample, matrix, settings)  # the CSV path writes a range
    raw = pd.DataFrame(
        {
            "job_title": ["Senior Data Scientist"] * 4,
            "country": ["US", "US", "US", "DE"],
            "location": ["Austin, TX", "Qwxz Flumpton", "", "Berlin"],
        }
    )
    scored = predict_frame(raw, model, settings, sources, source="canonical")
    assert scored["reference"][0].startswith("BLS OEWS May 2025, Data Scientists, Austin")
    assert "National" in scored["reference"][1] and "Qwxz Flumpton" in scored["warnings"][1]
    assert "National" in scored["reference"][2] and scored["reference"][3] == ""
    # The same job through the service's path (its defaults) gives the same estimate.
    from salarymodel.core.job_defaults import complete_job, job_defaults

    stated = {"job_title": "Senior Data Scientist", "country": "US", "location": "Austin, TX"}
    job = complete_job(stated, job_defaults(settings, settings.serving.default_source))
    assert scored["estimate_usd"][0] == round(model.estimate_job(job).estimate_usd, 2)


def test_the_request_schema_bounds_the_location() -> None:
    from pydantic import ValidationError

    from salarymodel.serving.schemas import JobRequest
    from salarymodel.vocabulary import MAX_LOCATION_LENGTH

    ok = JobRequest(job_title="Data Scientist", location=" Austin, TX ")
    assert ok.location == "Austin, TX"
    assert JobRequest(job_title="Data Scientist").location is None
    with pytest.raises(ValidationError) as refused:
        JobRequest(job_title="Data Scientist", location="x" * (MAX_LOCATION_LENGTH + 1))
    assert refused.value.errors()[0]["loc"] == ("location",)
