"""Source adapters (configs/sources.yaml): how each raw CSV maps into the canonical record."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from salarymodel.config.base import Strict

CANONICAL_FIELDS = (
    "job_title",
    "job_category",
    "experience_level",
    "company_size",
    "country",
    "company_country",
    "remote_ratio",
    "employment_type",
    "skills",
    "year",
    "month",
    "salary_usd",
    "source",
    # Below the country (US only): a place as written, and the USPS state and
    # BLS metro area code it names (geography.resolve_location).
    "location",
    "state",
    "metro",
)


class FieldMapping(Strict):
    """How one canonical field is read from a source's columns."""

    column: str | None = None
    columns: list[str] | None = None
    rule: str | None = None
    values: dict[str, str | int] | None = None
    optional: bool = False

    @model_validator(mode="after")
    def _one_input(self) -> FieldMapping:
        if (self.column is None) == (self.columns is None):
            raise ValueError("give exactly one of 'column' or 'columns'")
        if self.columns is not None and self.rule is None:
            raise ValueError("'columns' needs a 'rule' that combines them")
        return self

    @property
    def input_columns(self) -> list[str]:
        return [self.column] if self.column is not None else list(self.columns or [])


class SourceConfig(Strict):
    """One raw data set and its mapping into the canonical record."""

    description: str = ""
    file: str | None = None
    pay_kind: Literal["reported", "advertised"]
    leaky_columns: list[str] = Field(default_factory=list)
    fields: dict[str, FieldMapping]
    raw_feature_columns: list[str] = Field(default_factory=list)
    repeat_key: list[str] = Field(default_factory=list)
    group_key: list[str] | None = None

    @model_validator(mode="after")
    def _known_fields(self) -> SourceConfig:
        unknown = set(self.fields) - set(CANONICAL_FIELDS)
        if unknown:
            raise ValueError(f"unknown canonical fields {sorted(unknown)}")
        missing = {"job_title"} - set(self.fields)
        if missing:
            raise ValueError(f"every source must map {sorted(missing)}")
        leaked = set(self.raw_feature_columns) & set(self.leaky_columns)
        if leaked:
            raise ValueError(f"leaky columns {sorted(leaked)} cannot be raw features")
        return self


class SourcesConfig(Strict):
    sources: dict[str, SourceConfig]
    training_sources: list[str]

    @model_validator(mode="after")
    def _training_known(self) -> SourcesConfig:
        unknown = set(self.training_sources) - set(self.sources)
        if unknown:
            raise ValueError(f"training_sources name unknown sources {sorted(unknown)}")
        return self
