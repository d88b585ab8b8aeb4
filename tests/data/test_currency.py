"""Exchange rates computed from the shipped survey, a person's pay in USD, and its refusals."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from salarymodel.currency import (
    USD,
    CurrencyTable,
    PayError,
    UnknownCurrency,
    currency_table,
    from_usd_yearly,
    pay_bounds,
    pay_in_usd,
    survey_currency,
    to_usd_yearly,
)


@pytest.fixture(scope="module")
def survey(settings, sources) -> CurrencyTable:
    """The table training stores, from the whole shipped survey file."""
    return survey_currency(settings, sources)


# ----- rates from the real data ------------------------------------------------------------
@pytest.mark.parametrize(
    ("currency", "low", "high"),
    # Measured on the shipped survey (2024, median of salary / salary_in_usd): EUR 0.9000
    # (852 records), GBP 0.8000 (1,639), CAD 1.3000 (183), INR 83.30 (22). The bands are
    # those currencies' 2024 market range per USD: a rate outside them is a broken table.
    [("EUR", 0.85, 0.95), ("GBP", 0.75, 0.85), ("CAD", 1.25, 1.40), ("INR", 80.0, 86.0)],
)
def test_2024_rates_from_the_survey_are_sane(survey, currency: str, low: float, high: float):
    rate = survey.rate(currency, 2024)
    assert rate.year == 2024 and rate.currency == currency
    assert low < rate.per_usd < high
    assert rate.records >= 5


def test_the_survey_gives_eur_every_year_and_the_nearest_year_is_used(survey) -> None:
    years = sorted(survey.rates["EUR"])
    assert years == [2020, 2021, 2022, 2023, 2024]
    assert all(0.8 < survey.rates["EUR"][y].per_usd < 1.0 for y in years)
    assert survey.rate("eur", 2030).year == 2024  # a later year: the latest rate
    assert survey.rate("EUR", 2015).year == 2020  # an earlier one: the earliest
    assert survey.rate(USD, 2024).per_usd == 1.0


def test_currencies_with_too_few_records_are_not_offered(survey, aijobs_raw, settings) -> None:
    counts = aijobs_raw.groupby(["salary_currency", "work_year"]).size()
    assert counts.loc["JPY"].max() < settings.currency.min_records  # 8 JPY records in 4 years
    assert "JPY" not in survey.supported
    assert "CNY" not in set(aijobs_raw["salary_currency"])  # the survey has no CNY at all
    with pytest.raises(UnknownCurrency, match=r"'CNY' is not a supported currency.*EUR"):
        survey.rate("CNY", 2024)
    assert survey.supported[0] == USD and {"EUR", "GBP", "CAD", "INR"} <= set(survey.supported)


def test_the_median_ignores_a_mistyped_record(aijobs_raw, settings) -> None:
    rows = aijobs_raw[aijobs_raw["salary_currency"] == "EUR"].copy()
    clean = currency_table(rows, settings.currency).rate("EUR", 2024).per_usd
    typo = rows[rows["work_year"] == "2024"].head(3).copy()
    assert len(typo) == 3
    typo["salary"] = (pd.to_numeric(typo["salary"]) * 1000).astype(str)  # cents as euros
    spoiled = currency_table(pd.concat([rows, typo]), settings.currency)
    assert spoiled.rate("EUR", 2024).per_usd == pytest.approx(clean, rel=1e-6)


def test_each_country_gets_its_residents_usual_currency(survey) -> None:
    mapped = survey.by_country
    assert (mapped["US"], mapped["GB"], mapped["DE"], mapped["FR"]) == ("USD", "GBP", "EUR", "EUR")
    assert mapped["IN"] == "INR"  # 73 residents paid in INR, 63 in USD
    assert mapped["CA"] == "USD"  # 2,277 residents paid in USD, 216 in CAD: the survey's answer
    assert set(mapped.values()) <= set(survey.supported)


def test_the_table_survives_its_json_and_refuses_a_broken_rate(survey) -> None:
    again = CurrencyTable.from_dict(survey.to_dict())
    assert again.rates == survey.rates and again.by_country == survey.by_country
    broken = survey.to_dict()
    broken["rates"][0]["per_usd"] = 0.0
    with pytest.raises(ValueError, match="rate of"):
        CurrencyTable.from_dict(broken)


# ----- conversions -------------------------------------------------------------------------
def test_an_amount_round_trips_between_usd_eur_years_and_months(survey) -> None:
    eur = survey.rate("EUR", 2024)
    monthly_eur = from_usd_yearly(120_000, eur, "month")
    assert monthly_eur == pytest.approx(120_000 * eur.per_usd / 12)
    assert from_usd_yearly(120_000, eur, "year") == pytest.approx(12 * monthly_eur)
    assert to_usd_yearly(monthly_eur, eur, "month") == pytest.approx(120_000, rel=1e-12)
    usd, rate = pay_in_usd(monthly_eur, "eur", "month", 2024, survey, _limits())
    assert rate == eur and usd == pytest.approx(120_000, rel=1e-12)


def _limits():
    from salarymodel.config import load_settings

    return load_settings().validation


@pytest.mark.parametrize(
    ("amount", "currency", "period", "field", "words"),
    [
        (-5.0, "USD", "year", "current_salary", "positive"),
        (0.0, "EUR", "month", "current_salary", "positive"),
        (math.inf, "USD", "year", "current_salary", "positive"),
        (300.0, "USD", "month", "current_salary", "3,600 USD a year"),  # below 5,000 a year
        (9e9, "GBP", "year", "current_salary", "not a plausible salary"),
        (50_000.0, "CNY", "year", "currency", "allowed: USD"),
        (50_000.0, "USD", "week", "period", "allowed: year, month"),
    ],
)
def test_a_pay_that_is_not_plausible_is_refused_naming_the_field(
    survey, amount: float, currency: str, period: str, field: str, words: str
) -> None:
    with pytest.raises(PayError, match=words) as refused:
        pay_in_usd(amount, currency, period, 2024, survey, _limits())
    assert refused.value.field == field


def test_the_documented_bounds_are_exactly_what_is_accepted(survey) -> None:
    limits = _limits()
    bounds = pay_bounds(survey, limits)
    # Stated independently of pay_limits (which pay_bounds and pay_in_usd share):
    # training's yearly USD bounds x the rate's units per USD / payments a year.
    per_year = {"year": 1, "month": 12}
    for bound in bounds:
        per_usd = survey.rate(bound.currency, bound.first or bound.last or 2024).per_usd
        assert bound.low == pytest.approx(limits.salary_usd_min * per_usd / per_year[bound.period])
        assert bound.high == pytest.approx(limits.salary_usd_max * per_usd / per_year[bound.period])
    # Every currency with a rate, each of its rate's years, both periods; USD once per period.
    eur = [(b.first, b.last) for b in bounds if (b.currency, b.period) == ("EUR", "year")]
    assert eur == [(None, 2020), (2021, 2021), (2022, 2022), (2023, 2023), (2024, None)]
    assert [b.period for b in bounds if b.currency == USD] == ["year", "month"]
    assert {b.currency for b in bounds} == set(survey.supported)
    for bound in bounds:
        year = bound.first or bound.last or 2024
        for inside in (bound.low, bound.high):
            pay_in_usd(inside, bound.currency, bound.period, year, survey, limits)
        for outside in (math.nextafter(bound.low, 0), math.nextafter(bound.high, math.inf)):
            with pytest.raises(PayError):
                pay_in_usd(outside, bound.currency, bound.period, year, survey, limits)


def test_a_refusal_states_the_pay_as_given_and_in_usd_only_when_converted(survey) -> None:
    eur = survey.rate("EUR", 2024)
    monthly = 9e9 * eur.per_usd / 12  # 9 billion USD a year, as EUR a month
    with pytest.raises(PayError) as converted:
        pay_in_usd(monthly, "EUR", "month", 2024, survey, _limits())
    assert str(converted.value).startswith(
        f"{monthly:,.0f} EUR per month (9,000,000,000 USD a year) is not a plausible salary"
    )
    with pytest.raises(PayError) as as_given:
        pay_in_usd(9e9, "USD", "year", 2024, survey, _limits())
    assert str(as_given.value).startswith("9,000,000,000 USD per year is not a plausible")


def test_a_table_without_rates_offers_usd_only() -> None:
    empty = CurrencyTable.from_dict({})
    assert empty.rates == {} and empty.by_country == {} and empty.supported == [USD]
