"""Data settings: validation, input limits, repeats, features, job defaults, currency.

Also ``prediction``: the optional pay columns of ``salarymodel predict``.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from salarymodel.config.base import Strict
from salarymodel.vocabulary import ExperienceLevel


class ValidationConfig(Strict):
    salary_usd_min: float = Field(gt=0)  # a salary of zero or less is never a salary
    salary_usd_max: float
    year_min: int
    year_max: int
    quarantine_dir: str

    @model_validator(mode="after")
    def _ordered_bounds(self) -> ValidationConfig:
        if self.salary_usd_min >= self.salary_usd_max:
            raise ValueError("salary_usd_min must be below salary_usd_max")
        if self.year_min > self.year_max:
            raise ValueError("year_min must not be after year_max")
        return self


class InputLimitsConfig(Strict):
    """What an untrusted file may expand to (``sources.read_csv``) and what one cell or
    row may hold (longer ones are quarantined). No defaults here: the YAML holds them."""

    max_file_bytes: int = Field(ge=1024)  # decompressed, header included
    max_rows: int = Field(ge=1)
    max_cell_chars: int = Field(ge=16)
    max_row_chars: int = Field(ge=16)


class RepeatsConfig(Strict):
    policy: Literal["collapse", "keep"]


class RoleFamily(Strict):
    family: str
    keywords: list[str]


class TitleWordsConfig(Strict):
    """Words of the job title as features, beyond role family and seniority."""

    # Words (and runs of ``ngrams`` words) found in at least this many training
    # titles get a 0/1 column; null turns the word features off.
    min_count: int | None = Field(ge=1)
    ngrams: int = Field(ge=1, le=3)


class LocationConfig(Strict):
    """Place below the country (US): the state feature and BLS OEWS wages (bls_reference)."""

    state_feature: bool
    area_wage_feature: bool
    bls_table: str
    occupations: dict[str, str]  # role family -> SOC code ("15-2051")
    reality_check_min_records: int = Field(ge=1)

    @model_validator(mode="after")
    def _soc_codes(self) -> LocationConfig:
        bad = {f: soc for f, soc in self.occupations.items() if not _SOC.fullmatch(soc)}
        if bad:
            raise ValueError(f"occupations: not SOC codes (NN-NNNN): {bad}")
        return self


_SOC = re.compile(r"\d{2}-\d{4}")


class FeaturesConfig(Strict):
    min_category_count: int
    min_skill_count: int
    role_families: list[RoleFamily]
    seniority_words: dict[int, list[str]]
    seniority_to_experience: dict[int, ExperienceLevel]
    skill_aliases: dict[str, str]
    title_words: TitleWordsConfig
    # A column placing each record of a source that states months at the middle
    # of its quarter (core.row_spec.QUARTER_TIME_COLUMN); models saved before
    # it have none.
    time_within_year: bool
    # None: no place below the country (models saved before it, and the
    # "before" side of benchmarks/us_location.py).
    location: LocationConfig | None

    @model_validator(mode="after")
    def _every_family_has_an_occupation(self) -> FeaturesConfig:
        if self.location is not None:
            families = {f.family for f in self.role_families}
            unmapped = families - set(self.location.occupations)
            unknown = set(self.location.occupations) - families
            if unmapped or unknown:
                raise ValueError(
                    f"features.location.occupations: role families without an occupation "
                    f"{sorted(unmapped)}, unknown families {sorted(unknown)}"
                )
        return self


# What a model's features section saved before these keys existed meant: no
# title words, no place below the country, plain years (FeatureBuilder.from_dict).
OLD_BUNDLE_FEATURES = {
    "title_words": {"min_count": None, "ngrams": 1},
    "location": None,
    "time_within_year": False,
}


class CurrencyColumns(Strict):
    """The survey columns exchange rates are read from."""

    amount: str
    currency: str
    amount_usd: str
    year: str
    country: str


class CurrencyConfig(Strict):
    """Yearly exchange rates computed from the survey (see ``salarymodel.core.currency``)."""

    source: str
    columns: CurrencyColumns
    min_records: int = Field(ge=1)
    country_min_records: int = Field(ge=1)


class PredictionConfig(Strict):
    """``salarymodel predict``: the optional columns of a person's own pay."""

    salary_column: str
    currency_column: str
    period_column: str


class JobDefaultsConfig(Strict):
    """What a job a person describes is taken to be where it says nothing
    (``salarymodel.core.job_defaults`` applies it on every path). No value here has a
    default in code: the YAML states each one."""

    experience_level: str
    company_size: str
    country: str = Field(pattern=r"^[A-Z]{2}$")  # ISO 3166 alpha-2
    remote_ratio: int
    employment_type: str

    @model_validator(mode="after")
    def _known_codes(self) -> JobDefaultsConfig:
        from salarymodel import vocabulary  # the codes' one list (standard library only)

        allowed = {
            "experience_level": vocabulary.EXPERIENCE_LEVELS,
            "company_size": vocabulary.COMPANY_SIZES,
            "remote_ratio": vocabulary.REMOTE_RATIOS,
            "employment_type": vocabulary.EMPLOYMENT_TYPES,
        }
        for name, codes in allowed.items():
            if getattr(self, name) not in codes:
                raise ValueError(f"{name} must be one of {', '.join(map(str, codes))}")
        return self
