"""Evaluation settings: CV, backtest, group checks, tracking, gate, retraining, training."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from salarymodel.config.base import Strict
from salarymodel.vocabulary import FUSED_MODEL, ModelName


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
    # Seconds a command waits for a SQLite store another process is writing.
    sqlite_busy_timeout_seconds: float = Field(gt=0)


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
    min_records_share: float = Field(ge=0.0, le=1.0)
    seed: int
    cv_models: list[ModelName]
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
        if FUSED_MODEL not in self.cv_models:
            raise ValueError(f"cv_models must include {FUSED_MODEL} (the gate's model)")
        return self


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


class GroupEvaluationConfig(Strict):
    """Per-group accuracy, range and percentile checks (``salarymodel.evaluation.groups``)."""

    # A country's pay level: its training median salary over the US median, per
    # source; the cuts split the non-US countries into groups (under the first, ...).
    pay_level_cuts: list[float] = Field(min_length=1)
    # Fewer records of a country in a source: its level from both sources pooled.
    min_country_records: int = Field(ge=1)
    # A country, or a US state, gets its own row from this many records.
    min_place_records: int = Field(ge=1)
    percentile_levels: list[float] = Field(min_length=1)
    # A group is held to the tolerances from this many records.
    min_group_records: int = Field(ge=1)
    # Percentile points: |share of salaries read below p - p| allowed.
    tolerance_cv_points: float = Field(gt=0)
    tolerance_backtest_points: float = Field(gt=0)
    tolerance_backtest_group_points: float = Field(gt=0)
    # A served job whose pay-level group's backtest median estimate/actual - 1 is
    # further than this from 0 gets a warning (``core.track_record``).
    track_record_warn_ratio: float = Field(gt=0)
