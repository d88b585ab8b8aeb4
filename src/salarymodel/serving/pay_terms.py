"""The request's currency, period and own pay: amounts in its terms, and where the pay falls.

``/predict`` and ``/explain`` answer in the request's currency and period,
with the model's exchange rates (``salarymodel.core.currency``), and say
where the person's own pay falls (``ranges.salary_percentile``). What the
rates refuse (an unknown currency, a salary that is not plausible) is raised
as a pydantic ``ValidationError`` on the field, which the service answers
with a 422 naming it, as it does any invalid field.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from salarymodel.core.currency import (
    USD,
    CurrencyTable,
    PayError,
    Rate,
    UnknownCurrency,
    exchange_rates,
    from_usd_yearly,
    pay_in_usd,
    rate_note,
)
from salarymodel.core.encoding import resolve_country
from salarymodel.core.job_defaults import view_of
from salarymodel.core.percentile_calibration import PercentileCurve
from salarymodel.core.ranges import salary_percentile
from salarymodel.serving.schemas import (
    SETTINGS,
    AmountsResponse,
    EstimateRequest,
    ExchangeRateResponse,
    SalaryPositionResponse,
)
from salarymodel.serving.served import ServingModel
from salarymodel.vocabulary import NO_RANGE_WARNING, Period


@dataclass(frozen=True)
class Terms:
    """How a request wants its amounts (currency, period) and the person's own pay."""

    rate: Rate
    period: Period
    salary: float | None = None  # as given, in the rate's currency per period
    salary_usd: float | None = None  # the same, yearly USD
    year: int | None = None  # the year asked for (the rate may be the nearest year's)


USD_YEARLY = Terms(Rate(USD, 1.0, None, 0), "year")


def currencies(serving: ServingModel) -> CurrencyTable:
    """The ECB's yearly exchange rates shipped with the package (the same whichever
    model is served: a bundle's own survey rates, if it has some, are not used)."""
    return exchange_rates()


def request_terms(serving: ServingModel, request: EstimateRequest) -> Terms:
    """The currency, period and pay a request names, checked against the model's rates.

    Raises a pydantic ``ValidationError`` on the field (``currency`` not
    supported, ``current_salary`` outside the accepted bounds once yearly USD).
    """
    table = currencies(serving)
    try:
        if request.current_salary is None:
            rate = table.rate(request.currency, request.year)
            return Terms(rate, request.period, year=request.year)
        # The settings read when the worker started (load_settings() resolves
        # paths on the file system each call: ~50 µs a request).
        usd, rate = pay_in_usd(
            request.current_salary, request.currency, request.period, request.year, table,
            SETTINGS.validation,
        )  # fmt: skip
    except UnknownCurrency as error:
        raise refusal("currency", str(error), request.currency) from None
    except PayError as error:
        raise refusal(error.field, str(error), getattr(request, error.field, None)) from None
    return Terms(rate, request.period, request.current_salary, usd, request.year)


def refusal(field: str, message: str, value: object) -> ValidationError:
    """A validation error on ``field``: the service answers it as a 422 naming the field."""
    error = PydanticCustomError("value_error", "{reason}", {"reason": message})
    return ValidationError.from_exception_data(
        "EstimateRequest", [{"type": error, "loc": (field,), "input": value}]
    )


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def percentile_reading(percentile: float, basis: str | None = None) -> str:
    """A percentile in words: "about the 30th percentile: 70% of similar jobs pay more",
    and what it was calibrated on when ``basis`` says ("(calibrated on 1,234 records of
    US jobs)")."""
    n = round(percentile)
    if n < 1:
        text = "below the 1st percentile: more than 99% of similar jobs pay more"
    elif n > 99:
        text = "above the 99th percentile: fewer than 1% of similar jobs pay more"
    else:
        text = f"about the {_ordinal(n)} percentile: {100 - n}% of similar jobs pay more"
    return f"{text} (calibrated on {basis})" if basis else text


def percentile_curve(serving: ServingModel, job: Mapping[str, Any]) -> PercentileCurve | None:
    """The calibration curve of a job's pay-level group; None for a model without one."""
    calibration = serving.model.percentiles
    if calibration is None:
        return None
    view = view_of(job, serving.default_view)
    country, _ = resolve_country(job.get("country"))  # as the model reads it ("UK" -> GB)
    return calibration.curve_for(view, country)


def local_amount(usd: float, terms: Terms) -> float:
    """Yearly ``usd`` in the currency and period of ``terms``, rounded to whole units."""
    return round(from_usd_yearly(usd, terms.rate, terms.period))


def _local_or_none(usd: float | None, terms: Terms) -> float | None:
    return None if usd is None else local_amount(usd, terms)


@functools.lru_cache(maxsize=256)
def _rate_response(rate: Rate, year: int | None) -> ExchangeRateResponse:
    # One per rate and year asked for: answers share it (nothing changes it once built).
    return ExchangeRateResponse.model_construct(
        currency=rate.currency, per_usd=rate.per_usd, year=rate.year, records=rate.records,
        note=rate_note(rate, year),
    )  # fmt: skip


def with_terms(
    estimate: Mapping[str, Any], terms: Terms, curve: PercentileCurve | None = None
) -> dict[str, Any]:
    """The fields of an answer beyond the USD ``estimate`` (fields of ``EstimateResponse``):
    its ``amounts`` in the request's currency and period and, when the person gave
    their pay, where it falls in the job's predicted distribution (``current_salary``),
    calibrated through ``curve`` (the job's group's, ``percentile_calibration``) when given."""
    low, high, coverage = estimate["low_usd"], estimate["high_usd"], estimate["coverage"]
    amounts = AmountsResponse.model_construct(
        currency=terms.rate.currency,
        period=terms.period,
        estimate=local_amount(estimate["estimate_usd"], terms),
        low=_local_or_none(low, terms),
        high=_local_or_none(high, terms),
        base=None,
        exchange_rate=_rate_response(terms.rate, terms.year),
    )
    if terms.salary is None or terms.salary_usd is None:
        return {"amounts": amounts, "current_salary": None}
    if low is None or high is None or coverage is None:
        return {"amounts": amounts, "current_salary": None,
                "warnings": [*estimate["warnings"], NO_RANGE_WARNING]}  # fmt: skip
    percentile = salary_percentile(terms.salary_usd, estimate["estimate_usd"], low, high, coverage)
    if curve is not None:
        percentile = curve.apply(percentile)
    reading = percentile_reading(percentile, curve.basis() if curve else None)
    track = estimate.get("track_record")
    if track is not None and track.percentile_caveat:
        reading = f"{reading}; {track.percentile_caveat}"  # the group's readings were off
    position = SalaryPositionResponse.model_construct(
        amount=terms.salary,
        usd_per_year=round(terms.salary_usd),
        percentile=round(percentile, 1),
        reading=reading,
        calibrated_on=curve.group if curve else None,
        calibration_records=curve.records if curve else None,
    )
    return {"amounts": amounts, "current_salary": position}
