"""Estimates, batches, explanations and the model card: pure functions of a loaded model.

Nothing here knows HTTP or BentoML, so each is tested on a real model
directly. One job goes through ``FeatureBuilder.encode`` and the boosters'
prepared one-row paths (no pandas, no thread hop); a batch through
``FeatureBuilder.encode_many`` and one call per booster.

``/predict`` and ``/explain`` also answer in the request's currency and
period, with the model's exchange rates (``salarymodel.core.currency``), and say
where the person's own pay falls (``ranges.salary_percentile``). What the
rates refuse (an unknown currency, a salary that is not plausible) is raised
as a pydantic ``ValidationError`` on the field, which the service answers
with a 422 naming it, as it does any invalid field.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from salarymodel.core.china_reference import market_reference
from salarymodel.core.currency import (
    PERIODS,
    USD,
    CurrencyTable,
    PayError,
    Rate,
    UnknownCurrency,
    exchange_rates,
    from_usd_yearly,
    pay_bounds,
    pay_in_usd,
    rate_note,
)
from salarymodel.core.encoding import resolve_country
from salarymodel.core.job_defaults import (
    JobDefaults,
    complete_job,
    defaults_card,
    job_defaults,
    view_of,
)
from salarymodel.core.model import RangeBasis
from salarymodel.core.money_format import locale_tag
from salarymodel.core.percentile_calibration import PercentileCurve
from salarymodel.core.ranges import salary_percentile
from salarymodel.data.geography import country_name, country_names
from salarymodel.serving.openapi import ServedPay
from salarymodel.serving.schemas import (
    MAX_BATCH,
    MAX_BODY_BYTES,
    MAX_SKILL_LENGTH,
    SETTINGS,
    VIEWS,
    AmountsResponse,
    ContributionResponse,
    EstimateRequest,
    EstimateResponse,
    ExchangeRateResponse,
    ExplanationResponse,
    JobRequest,
    MarketReferenceResponse,
    PredictResponse,
    RangeBasisResponse,
    ReferenceResponse,
    SalaryPositionResponse,
)
from salarymodel.serving.served import ServingModel, json_safe
from salarymodel.vocabulary import (
    COMPANY_SIZES,
    EMPLOYMENT_TYPES,
    EXPERIENCE_LEVELS,
    MAX_SKILLS,
    MAX_TITLE_LENGTH,
    NO_RANGE_WARNING,
    REMOTE_RATIOS,
    display_labels,
)

# The defaults by default view, each with when to work them out again: a
# request costs a clock read, not a date and a build (the year turns a minute late).
_DEFAULTS: dict[str | None, tuple[float, JobDefaults]] = {}
DEFAULTS_FRESH_SECONDS = 60.0


_CANONICAL = {"view": "source"}  # request field -> canonical field, where they differ


def request_defaults(default_view: str | None) -> JobDefaults:
    """Today's job defaults for a model whose default view is ``default_view``."""
    now = time.monotonic()
    cached = _DEFAULTS.get(default_view)
    if cached is None or now >= cached[0]:
        cached = (now + DEFAULTS_FRESH_SECONDS, job_defaults(SETTINGS, default_view))
        _DEFAULTS[default_view] = cached
    return cached[1]


def canonical_job(request: JobRequest, default_view: str | None) -> dict[str, Any]:
    """A validated request as the canonical job dict the model reads.

    Only the fields the request sent count as stated; ``complete_job`` gives
    the rest their defaults, as ``salarymodel predict`` does a CSV's.
    """
    fields = request.__dict__  # pydantic's field values (getattr per field costs more)
    stated = {_CANONICAL.get(name, name): fields[name] for name in request.model_fields_set}
    return complete_job(stated, request_defaults(default_view))


def _dollars(value: float | None) -> float | None:
    return None if value is None else round(float(value))


def _whole_dollars(values: np.ndarray) -> list[int]:
    # As `round` gives one job: whole dollars, ties to even.
    return np.rint(values).astype(np.int64).tolist()


def _estimate_fields(serving: ServingModel, job: Mapping[str, Any]) -> dict[str, Any]:
    result = serving.model.estimate_job(job)
    return {
        "estimate_usd": round(result.estimate_usd),
        "low_usd": _dollars(result.low_usd),
        "high_usd": _dollars(result.high_usd),
        "coverage": result.coverage,
        "support": result.support,
        "thin_support": result.thin_support,
        "view": result.view,
        "warnings": result.warnings,
        "model_version": serving.version,
        "reference": _reference(serving.model.builder.reference(job)),
        "range_basis": _basis(result.range_basis),
        "market_reference": _market(serving, job),
    }


def _reference(found: dict[str, Any] | None) -> ReferenceResponse | None:
    return None if found is None else ReferenceResponse.model_construct(**found)


def _market(serving: ServingModel, job: Mapping[str, Any]) -> MarketReferenceResponse | None:
    # China: the Maimai 2023 report's pay for the job's role (china_reference).
    found = market_reference(job, serving.model.builder, SETTINGS.china_reference)
    return None if found is None else MarketReferenceResponse.model_construct(**found)


def _basis(basis: RangeBasis | None) -> RangeBasisResponse | None:
    if basis is None:
        return None
    return RangeBasisResponse.model_construct(group=basis.group, records=basis.records)


def estimate_one(serving: ServingModel, job: Mapping[str, Any]) -> EstimateResponse:
    """Estimate, range and warnings for one canonical job (no pandas on this path)."""
    return EstimateResponse.model_construct(**_estimate_fields(serving, job))


# ----- currency, period and the person's own pay -------------------------------------------
@dataclass(frozen=True)
class Terms:
    """How a request wants its amounts (currency, period) and the person's own pay."""

    rate: Rate
    period: Literal["year", "month"]
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


def _local(usd: float, terms: Terms) -> float:
    return round(from_usd_yearly(usd, terms.rate, terms.period))


def _local_or_none(usd: float | None, terms: Terms) -> float | None:
    return None if usd is None else _local(usd, terms)


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
        estimate=_local(estimate["estimate_usd"], terms),
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
    position = SalaryPositionResponse.model_construct(
        amount=terms.salary,
        usd_per_year=round(terms.salary_usd),
        percentile=round(percentile, 1),
        reading=percentile_reading(percentile, curve.basis() if curve else None),
        calibrated_on=curve.group if curve else None,
        calibration_records=curve.records if curve else None,
    )
    return {"amounts": amounts, "current_salary": position}


def predict_one(
    serving: ServingModel, job: Mapping[str, Any], terms: Terms = USD_YEARLY
) -> PredictResponse:
    """Estimate, range, warnings, amounts in ``terms`` and where the person's pay falls."""
    fields = _estimate_fields(serving, job)
    curve = percentile_curve(serving, job) if terms.salary is not None else None
    return PredictResponse.model_construct(**(fields | with_terms(fields, terms, curve)))


def explain_one(
    serving: ServingModel, job: Mapping[str, Any], terms: Terms = USD_YEARLY
) -> ExplanationResponse:
    """The estimate for one job with each concept's contribution (TreeSHAP, grouped by concept)."""
    fields = _estimate_fields(serving, job)
    curve = percentile_curve(serving, job) if terms.salary is not None else None
    fields |= with_terms(fields, terms, curve)
    explanation = serving.explainer.explain_job(job)
    contributions = [
        ContributionResponse.model_construct(
            concept=c.concept,
            value=c.value,
            percent=round(c.percent, 2),
            dollars=round(c.dollars),
            amount=_local(c.dollars, terms),
        )
        for c in explanation.contributions
    ]
    base = round(explanation.base_usd)
    fields["amounts"].base = _local(base, terms)
    return ExplanationResponse.model_construct(**fields, base_usd=base, contributions=contributions)


def estimate_many(
    serving: ServingModel, jobs: Sequence[Mapping[str, Any]]
) -> list[EstimateResponse]:
    """Estimates for many jobs, in order: one encoding pass and one call per booster.

    The same numbers and warnings as :func:`estimate_one` job by job (a test checks).
    """
    model = serving.model
    if not jobs:
        return []
    matrix, warnings, countries = model.builder.encode_many(jobs)
    scored = model.score(matrix, countries, warnings)  # the core every estimate path reads
    n = len(jobs)
    low: list[int] | None = None
    high: list[int] | None = None
    support: list[int] | None = None
    thin: list[bool] | None = None
    bases: list[RangeBasis] | list[None] = scored.bases or [None] * n
    if scored.low is not None and scored.high is not None:
        low, high = _whole_dollars(scored.low), _whole_dollars(scored.high)
    if scored.support is not None and scored.thin is not None:
        support, thin = scored.support.tolist(), scored.thin.tolist()
    coverage = scored.coverage
    estimate = scored.estimate
    estimates = _whole_dollars(estimate)
    views = [job.get("source") or None for job in jobs]
    # The values are built here with their exact types: skipping validation
    # saves ~10 µs a job (0.1 s of a 10,000-job batch).
    return [
        EstimateResponse.model_construct(
            estimate_usd=estimates[i],
            low_usd=None if low is None else low[i],
            high_usd=None if high is None else high[i],
            coverage=coverage,
            support=None if support is None else support[i],
            thin_support=None if thin is None else thin[i],
            view=views[i],
            warnings=warnings[i],
            model_version=serving.version,
            reference=_reference(model.builder.reference(jobs[i])),
            range_basis=_basis(bases[i]),
            market_reference=_market(serving, jobs[i]),
        )
        for i in range(n)
    ]


def model_card(serving: ServingModel) -> dict[str, Any]:
    """What ``GET /model`` answers: version, provenance, metrics and the vocabulary."""
    model = serving.model
    builder = model.builder
    countries = [c for c in builder.countries if c != "other"]
    return json_safe(
        {
            "model_version": serving.version,
            "loaded_from": serving.source,
            "run_id": serving.info.get("run_id") or model.metadata.get("run_id"),
            "trained_at": model.metadata.get("trained_at"),
            "fingerprint": model.metadata.get("fingerprint"),
            "metrics": serving.info.get("metrics", {}),
            "coverage": model.ranges.coverage if model.ranges is not None else None,
            "default_view": serving.default_view,
            "vocabulary": {
                "role_families": list(builder.role_families),
                "titles": [t for t in builder.titles if t != "other"],
                "countries": [{"code": c, "name": country_name(c)} for c in countries],
                "skills": list(builder.skills),
                "views": list(builder.sources),
            },
            # Codes in order; ``labels`` names them (the page hard-codes no wording).
            "allowed": {
                "experience_level": list(EXPERIENCE_LEVELS),
                "company_size": list(COMPANY_SIZES),
                "employment_type": list(EMPLOYMENT_TYPES),
                "remote_ratio": list(REMOTE_RATIOS),
                "view": list(VIEWS),
                "currency": currencies(serving).supported,
                "period": list(PERIODS),
            },
            # Countries by name for any code a job resolves to (the explanation's
            # country may be one the training data never had).
            "labels": {**display_labels(), "country": country_names()},
            "currencies": currency_card(currencies(serving)),
            "defaults": _request_defaults(serving),
            "limits": {
                "job_title_characters": MAX_TITLE_LENGTH,
                "skills": MAX_SKILLS,
                "skill_characters": MAX_SKILL_LENGTH,
                "batch_jobs": MAX_BATCH,
                "body_bytes": MAX_BODY_BYTES,
            },
        }
    )


def served_pay(serving: ServingModel) -> ServedPay:
    """What the served model accepts as a person's pay, for the OpenAPI document."""
    limits = SETTINGS.validation
    table = currencies(serving)
    default_year = EstimateRequest.model_fields["year"].get_default(call_default_factory=True)
    return ServedPay(
        currencies=table.supported,
        bounds=pay_bounds(table, limits),
        years=(limits.year_min, limits.year_max),
        default_year=default_year,
    )


def currency_card(table: CurrencyTable) -> dict[str, Any]:
    """Supported currencies, each one's latest rate with its year, and each country's."""
    latest = table.latest()
    return {
        "supported": table.supported,
        "rates": {
            code: {"per_usd": r.per_usd, "year": r.year, "records": r.records}
            for code, r in latest.items()
        },
        "by_country": table.by_country,
        # CLDR locale tags ("hi-IN"): the page writes amounts with Intl in the country's form.
        "locales": {country: locale_tag(locale) for country, locale in table.locales.items()},
        # Every country's name, not only the model's vocabulary: China (one survey
        # record, so not in it) still gets CNY and the Chinese form of money.
        "names": {c: country_name(c) for c in table.locales if country_name(c) != c},
        "source": table.source,
        "note": "units per USD: the year's mean of the ECB's daily euro reference rates "
        "(records: days); by_country: each country's currency (CLDR)",
    }


def _request_defaults(serving: ServingModel) -> dict[str, Any]:
    # The job's defaults from the one definition (the page fills its form from
    # these), and how amounts are given.
    defaults = defaults_card(request_defaults(serving.default_view))
    for name in ("currency", "period"):
        defaults[name] = EstimateRequest.model_fields[name].get_default()
    return defaults
