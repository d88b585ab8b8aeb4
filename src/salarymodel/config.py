"""Typed configuration: YAML files in ``configs/`` validated by pydantic.

Every tunable value lives in ``configs/salarymodel.yaml`` (settings) or
``configs/sources.yaml`` (adapters). Paths in them are relative to the project
root, found from ``SALARYMODEL_ROOT`` or from where the package is checked out.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

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


class Strict(BaseModel):
    """A settings section: a key it does not know is an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


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
    seniority_to_experience: dict[int, Literal["EN", "MI", "SE", "EX"]]
    skill_aliases: dict[str, str]
    title_words: TitleWordsConfig
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


class ModelConfig(Strict):
    params: dict[str, str | int | float]
    num_boost_round: int


class RangesConfig(Strict):
    coverage: float = Field(gt=0.0, lt=1.0)
    calibration_fraction: float = Field(gt=0.0, lt=0.5)
    calibration: Literal["random", "latest"]
    latest_months: int = Field(ge=1, le=12)
    recency_half_life_months: float | None = Field(gt=0.0)
    max_factor: float = Field(gt=1.0)
    thin_support_below: int
    min_calibration_cell: int
    spread_blend: float = Field(ge=0.0)
    params: dict[str, str | int | float]
    num_boost_round: int


class CountryLevelsConfig(Strict):
    """Per-source country pay levels (``salarymodel.core.country_levels``)."""

    # The fused model starts each record from its source's country level
    # (LightGBM's init_score); off: the trees start from one global average.
    enabled: bool
    # Records-equivalent weight of the parent level (UN sub-region, then world)
    # in a country's (region's) shrunk level.
    prior_strength: float = Field(gt=0.0)
    # Upper edges of the pay-level groups, as a share of the US level of the
    # same source; the US is a group of its own.
    group_edges: list[float] = Field(min_length=1)
    # Each tail's conformal correction also per pay-level group (within
    # source and support), falling back as ``ranges.min_calibration_cell`` says.
    calibrate_ranges: bool
    # The range's quantile boosters start from the levels too (else from one
    # global average, as before).
    quantile_start: bool
    # A job dated after the last training year gets its source's yearly pay
    # growth for the years past it (``salarymodel.core.year_trend``).
    trend: bool
    # Records-equivalent weight, one year from the mean year, of "no growth".
    trend_prior_strength: float = Field(gt=0.0)
    # At most this many years past the last training year are carried.
    trend_max_years: float = Field(ge=0.0)


class ExplanationsConfig(Strict):
    sample_size: int
    min_count: int


class BacktestConfig(Strict):
    """The rolling out-of-time backtest's folds (``salarymodel.evaluation.backtest``)."""

    window_months: int = Field(ge=1, le=12)
    min_train_rows: int = Field(ge=1)
    min_test_rows: int = Field(ge=1)
    max_folds_per_source: int = Field(ge=1)


class EvaluationConfig(Strict):
    n_folds: int
    seed: int
    backtest: BacktestConfig
    group_median_min_count: int
    group_median_backoff: list[list[str]]
    workers: int = Field(ge=1)


class TrackingConfig(Strict):
    uri: str
    artifact_root: str
    experiment: str
    registered_model: str
    champion_alias: str
    # Seconds and retries before a tracking store that does not answer fails.
    connect_timeout_seconds: float = Field(gt=0)
    http_retries: int = Field(ge=0)


class GateConfig(Strict):
    """The promotion gate: a paired bootstrap of the metric's difference.

    (``salarymodel.promotion.gate``)
    """

    metric: Literal["mae_usd", "mdape", "r2_log"]
    tolerance: float = Field(ge=0.0)
    resamples: int = Field(ge=100)
    confidence: float = Field(gt=0.5, lt=1.0)
    seed: int


class RetrainingConfig(Strict):
    """``salarymodel retrain``: where accepted data lives, what a new file must pass,
    and the held-out comparison of challenger and champion."""

    accepted_dir: str
    reports_dir: str
    min_new_rows: int = Field(ge=1)
    max_quarantined_share: float = Field(ge=0.0, le=1.0)
    max_median_shift: float | None = Field(gt=0.0)
    holdout_fraction: float = Field(gt=0.0, lt=1.0)
    min_holdout_rows: int = Field(ge=1)
    existing_tolerance: float = Field(ge=0.0)
    existing_sample: int = Field(ge=100)
    seed: int
    cv_models: list[
        Literal["fused_lightgbm", "single_source", "raw_lightgbm", "group_median", "global_median"]
    ]
    evaluate_ranges: bool
    # Whole-file checks (values in configs/salarymodel.yaml only: no default here).
    quarantine_dir: str
    max_unseen_title_share: float = Field(ge=0.0, le=1.0)
    max_unseen_skills_share: float = Field(ge=0.0, le=1.0)
    max_feature_psi: float | None = Field(gt=0.0)
    psi_exempt: list[str]
    max_salary_psi: float | None = Field(gt=0.0)

    @model_validator(mode="after")
    def _gate_model_evaluated(self) -> RetrainingConfig:
        if "fused_lightgbm" not in self.cv_models:
            raise ValueError("cv_models must include fused_lightgbm (the gate's model)")
        return self


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


class ServingConfig(Strict):
    default_source: str
    host: str
    port: int
    # Where a worker gets its model: the MLflow registry's champion, the copy
    # exported to the BentoML model store, or (auto) the registry when there
    # is a tracking store. `salarymodel serve` exports the champion once and
    # starts its workers on `bentoml` with `bento_model` set to that export.
    model_source: Literal["auto", "registry", "bentoml"]
    bento_model: str | None  # a BentoML model tag; None: the newest export
    workers: int = Field(ge=1)
    metrics: bool  # Prometheus /metrics
    # /admin/reload answers only once every worker serves the new model, or
    # refuses (nobody switches) when one cannot within this many seconds.
    reload_timeout_seconds: float = Field(gt=0)
    # One batch's caps (413 past either; the YAML says why these values).
    batch_max_jobs: int = Field(ge=1)
    batch_max_bytes: int = Field(ge=64 * 1024)
    # Batches a worker reads, parses and scores at once; others wait unread.
    batch_concurrency: int = Field(ge=1)
    # After a batch body at least this large, the worker hands freed memory back.
    batch_release_bytes: int = Field(ge=0)
    # POST /admin/reload needs this token (serving/admin_auth.py): from the
    # variable named here if set, else from the file (created 0600 if absent).
    reload_token_env: str
    reload_token_file: str
    # A restarted worker that cannot load the committed model retries, pausing
    # twice as long each time up to this, and is not ready meanwhile.
    load_retry_max_seconds: float = Field(gt=0)


class TrainingConfig(Strict):
    """Where ``salarymodel train`` fits: this process, or a Dask cluster."""

    backend: Literal["local", "dask"]
    # The Dask scheduler (tcp://host:port) when the backend is dask; the
    # command line's ``train --dask ADDRESS`` overrides both.
    dask_address: str | None
    dask_connect_timeout_seconds: float = Field(gt=0)
    # Record partitions per Dask worker: more than one lets a worker start
    # on its next partition while another is sent or built.
    dask_partitions_per_worker: int = Field(ge=1)

    @model_validator(mode="after")
    def _address_for_dask(self) -> TrainingConfig:
        if self.backend == "dask" and not self.dask_address:
            raise ValueError("backend dask needs dask_address (the scheduler, tcp://host:port)")
        return self


class ReportConfig(Strict):
    min_group_size: int
    top_countries: int
    top_skills: int
    skill_groups: dict[str, list[str]]


class GroupEvaluationConfig(Strict):
    """Per-group accuracy, range and percentile checks (``salarymodel.evaluation.groups``)."""

    # A country's pay level: its training median salary over the US median, per
    # source; the cuts split the non-US countries into groups (under the first, ...).
    pay_level_cuts: list[float] = Field(min_length=1)
    # Fewer records of a country in a source: its level from both sources pooled.
    min_country_records: int = Field(ge=1)
    # A US state gets its own row from this many records.
    min_state_records: int = Field(ge=1)
    percentile_levels: list[float] = Field(min_length=1)
    # A group is held to the tolerances from this many records.
    min_group_records: int = Field(ge=1)
    # Percentile points: |share of salaries read below p - p| allowed.
    tolerance_cv_points: float = Field(gt=0)
    tolerance_backtest_points: float = Field(gt=0)
    tolerance_backtest_group_points: float = Field(gt=0)


class PercentileCalibrationConfig(Strict):
    """The map from a range's raw percentile to a calibrated one (``percentile_calibration``)."""

    # A pay-level group gets its own map from this many out-of-fold records.
    min_group_records: int = Field(ge=1)
    # Points of the stored monotone map (raw -> calibrated percentile).
    knots: int = Field(ge=3)


class ChinaRoleConfig(Strict):
    """One role of the Maimai 2023 AIGC talent report and the title words that mean it."""

    role: str  # a key of the report's role pay (src/salarymodel/core/maimai_aigc_2023.json)
    keywords: list[str] = Field(min_length=1)


class ChinaReferenceConfig(Strict):
    """A Chinese job's role, read from its title, for the Maimai report's pay (china_reference)."""

    roles: list[ChinaRoleConfig] = Field(min_length=1)
    # Role family -> report role, for titles no keyword matches.
    families: dict[str, str]


class Settings(Strict):
    validation: ValidationConfig
    input_limits: InputLimitsConfig
    repeats: RepeatsConfig
    features: FeaturesConfig
    model: ModelConfig
    ranges: RangesConfig
    country_levels: CountryLevelsConfig
    explanations: ExplanationsConfig
    evaluation: EvaluationConfig
    tracking: TrackingConfig
    gate: GateConfig
    serving: ServingConfig
    retraining: RetrainingConfig  # required: its whole-file limits live in the YAML only
    report: ReportConfig
    currency: CurrencyConfig
    prediction: PredictionConfig
    job_defaults: JobDefaultsConfig
    training: TrainingConfig
    group_evaluation: GroupEvaluationConfig
    percentile_calibration: PercentileCalibrationConfig
    # Absent: no Maimai figure beside Chinese estimates.
    china_reference: ChinaReferenceConfig


def project_root() -> Path:
    """The folder holding ``configs/`` and ``data/``.

    ``SALARYMODEL_ROOT`` wins; otherwise the checkout the package is installed
    from (editable install), otherwise the current directory.
    """
    env = os.environ.get("SALARYMODEL_ROOT")
    if env:
        return Path(env).resolve()
    # src/salarymodel/<module path>.py: one folder up per dotted part, then src/
    checkout = Path(__file__).resolve().parents[len(__name__.split("."))]
    if (checkout / "configs" / "salarymodel.yaml").exists():
        return checkout
    return Path.cwd().resolve()


class ConfigError(ValueError):
    """A configuration file that is missing, unreadable or invalid."""


def _read_yaml(path: Path) -> dict:
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.safe_load(handle) or {}
    except FileNotFoundError as error:
        raise ConfigError(
            f"no {path}: run from the project folder or set SALARYMODEL_ROOT to it"
        ) from error
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"{path} is not readable YAML: {error}") from error


def _validated(model: type[BaseModel], path: Path) -> Any:
    try:
        return model.model_validate(_read_yaml(path))
    except ValidationError as error:
        raise ConfigError(f"{path} is invalid: {error}") from error


# Environment variables that override one setting each, for a process that
# cannot edit the YAML (`salarymodel serve`'s workers, a container, a test).
ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "SALARYMODEL_TRACKING_URI": ("tracking", "uri"),
    "SALARYMODEL_MODEL_SOURCE": ("serving", "model_source"),
    "SALARYMODEL_BENTO_MODEL": ("serving", "bento_model"),
    "SALARYMODEL_WORKERS": ("serving", "workers"),
    "SALARYMODEL_METRICS": ("serving", "metrics"),
}


@lru_cache(maxsize=8)
def _load_settings(path: Path, overrides: tuple[tuple[str, str], ...]) -> Settings:
    data = _read_yaml(path)
    for variable, value in overrides:
        section, key = ENV_OVERRIDES[variable]
        data.setdefault(section, {})[key] = (
            value.strip().lower() if key == "model_source" else value
        )
    try:
        return Settings.model_validate(data)
    except ValidationError as error:
        named = ", ".join(name for name, _ in overrides)
        where = f"{path} (with {named} from the environment)" if overrides else str(path)
        raise ConfigError(f"{where} is invalid: {error}") from error


@lru_cache(maxsize=8)
def _load_sources(path: Path) -> SourcesConfig:
    return _validated(SourcesConfig, path)


def load_settings(path: Path | None = None) -> Settings:
    """Load and validate ``configs/salarymodel.yaml`` (or ``path``), with ``ENV_OVERRIDES``."""
    overrides = tuple((name, os.environ[name]) for name in ENV_OVERRIDES if os.environ.get(name))
    path = (path or project_root() / "configs" / "salarymodel.yaml").resolve()
    return _load_settings(path, overrides)


def load_sources(path: Path | None = None) -> SourcesConfig:
    """Load and validate ``configs/sources.yaml`` (or ``path``)."""
    return _load_sources((path or project_root() / "configs" / "sources.yaml").resolve())


def resolve_path(relative: str | Path) -> Path:
    """A path from configuration, anchored at the project root when relative."""
    path = Path(relative)
    return path if path.is_absolute() else project_root() / path
