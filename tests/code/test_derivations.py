"""Each written adapter rule, on the values the real sources carry."""

from __future__ import annotations

import pandas as pd
import pytest

from salarymodel.data.derivations import (
    RULES,
    RowError,
    RuleContext,
    employment_type_from_schedule,
    location_country,
    parse_skills,
    resolve_posting_country,
)
from salarymodel.data.geography import region, to_iso2, us_place


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("United States", "US"),
        ("US", "US"),
        ("us", "US"),
        ("NA", "NA"),  # Namibia's code, not a missing value
        ("Türkiye", "TR"),
        ("The Bahamas", "BS"),
        ("UK", "GB"),
        ("Germany", "DE"),
        ("Atlantis", None),
        ("", None),
    ],
)
def test_country_names_and_codes_map_to_iso2(value: str, code: str | None) -> None:
    assert to_iso2(value) == code


def test_region_of_a_code() -> None:
    assert region("US") == "Northern America"
    assert region("DE") == "Western Europe"


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("Austin, TX", True),
        ("Texas", True),
        ("Georgia", True),  # the state, not the country
        ("United States", True),
        ("London, UK", False),
        ("Bengaluru, Karnataka, India", False),
    ],
)
def test_us_places_are_recognised(location: str, expected: bool) -> None:
    assert us_place(location) is expected


@pytest.mark.parametrize(
    ("country", "location", "expected"),
    [
        ("Sudan", "Austin, TX", "US"),  # the source's known mislabel: place wins
        ("Sudan", "Anywhere", None),  # mislabel with no place: unknown, not guessed
        ("Sudan", None, None),
        ("United States", "Anywhere", "US"),
        ("United Kingdom", "London, UK", "GB"),
        ("India", "Bengaluru, Karnataka, India", "IN"),
        ("United States", "Georgia", "US"),
        ("Canada", "Denver, CO (+3 others)", "US"),
    ],
)
def test_posting_country_prefers_the_place(country, location, expected) -> None:
    assert resolve_posting_country(country, location) == expected


def test_anywhere_names_no_country() -> None:
    assert location_country("Anywhere") is None
    assert location_country(None) is None


def test_work_from_home_flag_and_anywhere_give_remote_ratio(settings) -> None:
    flags = pd.Series(["True", "False", "False"])
    places = pd.Series(["Anywhere", "Anywhere", "Boston, MA"])
    ratios = RULES["posting_remote_ratio"]([flags, places], RuleContext(settings))
    assert ratios.tolist() == [100, 100, 0]


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("Full-time", "FT"),
        ("Full-time and Part-time", "FT"),
        ("Part-time and Full-time", "PT"),
        ("Contractor", "CT"),
        ("Temp work", "CT"),
        ("Full-time, Part-time, and Internship", "FT"),
        ("Internship", None),  # says nothing about employment type
        ("Per diem", "FL"),
        (None, None),
    ],
)
def test_schedule_to_employment_type(schedule, expected) -> None:
    assert employment_type_from_schedule(schedule) == expected


def test_experience_from_titles_uses_free_text_then_short_title(settings) -> None:
    titles = pd.Series(["Senior Data Engineer", "Data Engineer - MA", "Junior Analyst", "Analyst"])
    short = pd.Series(["Data Engineer", "Senior Data Engineer", "Data Analyst", "Data Analyst"])
    levels = RULES["experience_from_titles"]([titles, short], RuleContext(settings))
    assert levels.tolist() == ["SE", "SE", "EN", None]


def test_parse_skills_list_literal_dedupes_and_folds_aliases(settings) -> None:
    aliases = settings.features.skill_aliases
    assert parse_skills("['SQL', 'python', 'mongodb', 'mongodb', 'PowerBI']", aliases) == [
        "sql",
        "python",
        "mongodb",
        "power bi",
    ]
    assert parse_skills("python; k8s ;", aliases) == ["python", "kubernetes"]
    assert parse_skills(None, aliases) == []


def test_unreadable_skill_list_is_a_row_error(settings) -> None:
    out = RULES["parse_skill_list"]([pd.Series(["['sql', "])], RuleContext(settings))
    assert isinstance(out[0], RowError)
    assert "list literal" in out[0].message


def test_year_and_month_from_date(settings) -> None:
    dates = pd.Series(["2023-04-24 09:51:15", "2024-01-02T08:00:00Z", "not a date", None])
    for rule, part in (("year_from_date", [2023, 2024]), ("month_from_date", [4, 1])):
        out = RULES[rule]([dates], RuleContext(settings))
        assert out[:2].tolist() == part
        # A date that cannot be read is a row error (quarantined), not a silent gap.
        assert out[2] == RowError("not a date (expected YYYY-MM-DD)", "not a date")
        assert out[3] is None
