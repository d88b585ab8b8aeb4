"""The model card (``GET /model``) and the pay the served model accepts (the OpenAPI document)."""

from __future__ import annotations

from typing import Any

from salarymodel.core.currency import PERIODS, CurrencyTable, pay_bounds
from salarymodel.core.job_defaults import defaults_card
from salarymodel.core.money_format import locale_tag
from salarymodel.data.geography import country_name, country_names
from salarymodel.serving.openapi import ServedPay
from salarymodel.serving.pay_terms import currencies
from salarymodel.serving.schemas import (
    MAX_BATCH,
    MAX_BODY_BYTES,
    MAX_SKILL_LENGTH,
    SETTINGS,
    VIEWS,
    EstimateRequest,
)
from salarymodel.serving.scoring import request_defaults, track_record_response
from salarymodel.serving.served import ServingModel, json_safe
from salarymodel.vocabulary import (
    COMPANY_SIZES,
    EMPLOYMENT_TYPES,
    EXPERIENCE_LEVELS,
    MAX_SKILLS,
    MAX_TITLE_LENGTH,
    REMOTE_RATIOS,
    display_labels,
)


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
            # Each pay-level group's estimates on a later year (the backtest): known limits.
            "track_record": _track_record(serving),
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


def _track_record(serving: ServingModel) -> list[dict[str, Any]] | None:
    # Each group as an answer gives it (the same fields and rounding).
    track = serving.model.track_record
    if track is None:
        return None
    return [dict(track_record_response(record).__dict__) for record in track.groups.values()]


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
