"""All settings (configs/salarymodel.yaml) and the loaders: project root, environment overrides."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from salarymodel.config.base import Strict
from salarymodel.config.data import (
    CurrencyConfig,
    FeaturesConfig,
    InputLimitsConfig,
    JobDefaultsConfig,
    PredictionConfig,
    RepeatsConfig,
    ValidationConfig,
)
from salarymodel.config.evaluation import (
    EvaluationConfig,
    GateConfig,
    GroupEvaluationConfig,
    RetrainingConfig,
    TrackingConfig,
    TrainingConfig,
)
from salarymodel.config.model import (
    ChinaReferenceConfig,
    CountryLevelsConfig,
    ExplanationsConfig,
    ModelConfig,
    PercentileCalibrationConfig,
    RangesConfig,
)
from salarymodel.config.serving import ReportConfig, ServingConfig
from salarymodel.config.sources import SourcesConfig


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
