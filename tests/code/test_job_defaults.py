"""The one definition of a described job's defaults: what counts as not stated, what fills it."""

from __future__ import annotations

import math
from datetime import date

import pytest
import yaml

from salarymodel.config.data import JobDefaultsConfig
from salarymodel.config.settings import ConfigError, load_settings
from salarymodel.core.job_defaults import (
    complete_job,
    default_view,
    default_year,
    defaults_card,
    in_view,
    job_defaults,
    model_view,
    view_of,
)


@pytest.fixture()
def defaults(settings):
    return job_defaults(settings, "aijobs", date(2026, 6, 1))


def test_a_bare_title_gets_every_configured_default(settings, defaults) -> None:
    job = complete_job({"job_title": "Data Analyst"}, defaults)
    configured = settings.job_defaults
    assert job == {
        "job_title": "Data Analyst",
        "job_category": None,
        "experience_level": configured.experience_level,
        "company_size": configured.company_size,
        "country": configured.country,
        "company_country": configured.country,
        "location": None,
        "remote_ratio": configured.remote_ratio,
        "employment_type": configured.employment_type,
        "skills": None,
        "year": 2026,
        "source": "aijobs",
    }


@pytest.mark.parametrize("empty", [None, math.nan, "", "  ", []])
def test_missing_null_nan_blank_and_empty_say_nothing(defaults, empty) -> None:
    bare = complete_job({"job_title": "Data Analyst"}, defaults)
    fields = ("experience_level", "company_size", "country", "company_country", "location",
              "remote_ratio", "employment_type", "skills", "year", "source")  # fmt: skip
    stated = complete_job({"job_title": "Data Analyst", **dict.fromkeys(fields, empty)}, defaults)
    assert stated == bare


def test_stated_values_win_and_the_employer_follows_the_country(defaults) -> None:
    given = {"job_title": "Data Analyst", "experience_level": "EN", "country": "Germany",
             "employment_type": "PT", "year": 2023, "skills": ["sql"], "source": "postings",
             "remote_ratio": 100, "company_size": "L"}  # fmt: skip
    job = complete_job(given, defaults)
    assert {k: job[k] for k in given} == given
    assert job["company_country"] == "Germany"  # as given: the model resolves it like the country
    other = complete_job({**given, "company_country": "US"}, defaults)
    assert other["company_country"] == "US"


def test_an_unknown_country_is_kept_as_given_not_replaced_by_the_default(defaults) -> None:
    job = complete_job({"job_title": "Data Analyst", "country": "Atlantis"}, defaults)
    assert job["country"] == job["company_country"] == "Atlantis"


def test_the_default_year_is_this_year_within_the_configured_bounds(settings) -> None:
    limits = settings.validation
    assert default_year(limits, date(2026, 1, 1)) == 2026
    assert default_year(limits, date(limits.year_max + 5, 1, 1)) == limits.year_max
    assert default_year(limits, date(limits.year_min - 5, 1, 1)) == limits.year_min


def test_the_card_states_the_defaults_the_page_fills_its_form_with(settings, defaults) -> None:
    card = defaults_card(defaults)
    assert card["experience_level"] == settings.job_defaults.experience_level
    assert card["country"] == settings.job_defaults.country
    assert (card["year"], card["view"], card["skills"]) == (2026, "aijobs", None)


def test_configured_defaults_must_be_codes_the_model_knows() -> None:
    good = {"experience_level": "SE", "company_size": "M", "country": "US", "remote_ratio": 0,
            "employment_type": "FT"}  # fmt: skip
    assert JobDefaultsConfig(**good).country == "US"
    for field, bad in (("experience_level", "SENIOR"), ("remote_ratio", 30),
                       ("employment_type", "XX"), ("country", "USA")):  # fmt: skip
        with pytest.raises(ValueError, match=field):
            JobDefaultsConfig(**{**good, field: bad})


def test_the_defaults_have_no_value_in_code_only_in_the_yaml(project) -> None:
    path = project / "configs" / "salarymodel.yaml"
    data = yaml.safe_load(path.read_text())
    del data["job_defaults"]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="job_defaults"):
        load_settings(path)


def test_the_default_view_is_filled_in_one_place_and_a_stated_view_wins(settings) -> None:
    """``in_view``/``view_of`` (the model's and the service's view) agree with complete_job."""
    metadata = {"default_source": "postings"}
    assert model_view(metadata) == "postings" and model_view({}) is None
    assert default_view({}, settings) == settings.serving.default_source
    assert default_view(metadata, settings) == "postings"
    for unstated in ({}, {"source": None}, {"source": ""}, {"source": "  "}, {"source": math.nan}):
        job = {"job_title": "Data Analyst", **unstated}
        assert in_view(job, "postings")["source"] == "postings"
        assert view_of(job, "postings") == "postings" and view_of(job, None) is None
        completed = complete_job(job, job_defaults(settings, "postings", date(2026, 6, 1)))
        assert completed["source"] == in_view(job, "postings")["source"]
    stated = {"job_title": "Data Analyst", "source": "aijobs"}
    assert in_view(stated, "postings") is stated and view_of(stated, "postings") == "aijobs"
    assert in_view({"job_title": "Data Analyst"}, None) == {"job_title": "Data Analyst"}
