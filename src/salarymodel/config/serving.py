"""Settings of what is served and shown: the service and the report."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from salarymodel.config.base import Strict


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


class ReportConfig(Strict):
    min_group_size: int
    top_countries: int
    top_skills: int
    skill_groups: dict[str, list[str]]
