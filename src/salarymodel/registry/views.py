"""What the store shows: versions, their runs and the champion's evaluation."""

from __future__ import annotations

import json
import logging
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from salarymodel.config.settings import Settings
from salarymodel.registry.champion import champion_history, champion_version, required_champion
from salarymodel.registry.store import (
    NOT_FOUND,
    TAG_FINGERPRINT,
    TAG_KIND,
    TAG_PARENT,
    RegistryError,
    connect,
    first_line,
    list_versions,
    run_id_of,
    store_errors,
)
from salarymodel.vocabulary import ALL, FUSED_MODEL

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)


def version_run(client: MlflowClient, version: ModelVersion) -> Run | None:
    """The run a version was registered from, or None when that run no longer exists."""
    if version.run_id is None:
        return None
    try:
        return client.get_run(version.run_id)
    except MlflowException as error:
        if error.error_code == NOT_FOUND:
            return None
        raise RegistryError(
            f"cannot read the run of v{version.version}: {first_line(error)}"
        ) from error


def run_evaluation(client: MlflowClient, version: ModelVersion) -> dict[str, Any]:
    """The evaluation JSON logged with a version's training run."""
    run_id = run_id_of(version)
    with (
        tempfile.TemporaryDirectory() as tmp,
        store_errors(f"cannot read the evaluation of v{version.version}"),
    ):
        path = client.download_artifacts(run_id, "evaluation.json", tmp)
        return json.loads(Path(path).read_text())


def champion_evaluation(settings: Settings) -> tuple[ModelVersion, dict[str, Any]]:
    """The champion version and the evaluation JSON of its training run."""
    client = connect(settings)
    current = required_champion(client, settings)
    return current, run_evaluation(client, current)


def champion_accuracy(settings: Settings) -> dict[str, Any] | None:
    """The champion's cross-validated accuracy (the fused model's, overall and per
    source) in the shape the report reads; None when there is no champion or the
    registry cannot say (the report is written without it)."""
    try:
        current, evaluation = champion_evaluation(settings)
    except (RegistryError, OSError):
        return None
    rows = [r for r in evaluation["table"] if r["model"] == FUSED_MODEL]
    overall = next(r for r in rows if r["source"] == ALL)
    return {
        "model_version": str(current.version),
        "mae_usd": overall["mae_usd"],
        "mdape": overall["mdape"],
        "r2_log": overall["r2_log"],
        "n": overall["n"],
        "per_source": {
            r["source"]: {"mae_usd": r["mae_usd"], "mdape": r["mdape"]}
            for r in rows
            if r["source"] != ALL
        },
    }


def version_rows(client: MlflowClient, settings: Settings) -> list[dict[str, Any]]:
    """Every registered version, oldest first: origin, CV and held-out MAE per source,
    data fingerprint, whether it is champion and how often it was."""
    current = champion_version(client, settings)
    history = champion_history(client, settings)
    rows = []
    for version in list_versions(client, settings):
        run = version_run(client, version)  # None: its run was deleted; still list the version
        found, tags = (run.data.metrics, run.data.tags) if run else ({}, {})
        per_source = {
            key.split(".")[1]: value
            for key, value in found.items()
            if key.startswith(f"{FUSED_MODEL}.") and key.endswith(".mae_usd")
        }
        created = datetime.fromtimestamp(version.creation_timestamp / 1000, UTC)
        rows.append(
            {
                "version": str(version.version),
                "created": created.isoformat(timespec="seconds"),
                "kind": tags.get(TAG_KIND, ""),
                "parent_version": tags.get(TAG_PARENT),
                "cv_mae_usd": per_source,
                "holdout_mae_usd": {
                    model: found.get(f"holdout.{model}.all.mae_usd")
                    for model in ("challenger", "champion")
                    if f"holdout.{model}.all.mae_usd" in found
                },
                "data_fingerprint": tags.get(TAG_FINGERPRINT, ""),
                "champion": current is not None and str(current.version) == str(version.version),
                "times_champion": history.count(str(version.version)),
            }
        )
    return rows
