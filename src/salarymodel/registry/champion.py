"""The champion alias: registering versions, promoting, rolling back, its history.

A version is only registered after its run finished logging everything, so a
crash mid-training leaves the registry and the alias as they were.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.exceptions import MlflowException

from salarymodel.config.settings import Settings
from salarymodel.registry.store import (
    NOT_FOUND,
    RegistryError,
    first_line,
    get_version,
    store_errors,
    tracking_uri,
)

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)


# Registered-model tag: the versions that became champion, oldest first (a
# stack: promote pushes, rollback pops). Version tag: when it last became one.
TAG_HISTORY = "champion_history"

TAG_CHAMPION_SINCE = "champion_since"

HISTORY_LENGTH = 100


def registered_model(client: MlflowClient, settings: Settings) -> RegisteredModel | None:
    """The registered model, or None when the store says it does not exist (nothing registered yet).

    Any other failure (a locked or broken store, a timeout) is a ``RegistryError``.
    """
    name = settings.tracking.registered_model
    try:
        return client.get_registered_model(name)
    except MlflowException as error:
        if error.error_code == NOT_FOUND:
            return None
        raise RegistryError(
            f"cannot read model '{name}' from {tracking_uri(settings)}: {first_line(error)}"
        ) from error


def champion_version(client: MlflowClient, settings: Settings) -> ModelVersion | None:
    """The version carrying the champion alias, or None when there is none yet.

    None only when the registry answers that there is no such model or that the
    model has no champion alias; the alias is read from the model's aliases
    rather than inferred from an error (the store reports a missing alias as an
    invalid parameter, a code other failures share). A store that cannot
    answer raises ``RegistryError``: it never reads as "no champion".
    """
    model = registered_model(client, settings)
    alias = settings.tracking.champion_alias
    if model is None or alias not in model.aliases:
        return None
    version = str(model.aliases[alias])
    with store_errors(f"cannot read champion v{version} of model '{model.name}'"):
        return client.get_model_version(model.name, version)


def register(client: MlflowClient, settings: Settings, model_uri: str, run_id: str) -> ModelVersion:
    """Register a logged model as a new version of the configured registered model."""
    name = settings.tracking.registered_model
    with store_errors(f"cannot register the model of run {run_id} as a version of '{name}'"):
        if registered_model(client, settings) is None:
            client.create_registered_model(name)
        return client.create_model_version(name=name, source=model_uri, run_id=run_id)


def set_champion(client: MlflowClient, settings: Settings, version: str) -> None:
    """Move the champion alias to ``version`` and record it in the champion history."""
    history = champion_history(client, settings)  # read first: a store error moves nothing
    move_alias(client, settings, version)
    record_champion(client, settings, version, history)


def move_alias(client: MlflowClient, settings: Settings, version: str) -> None:
    """Point the champion alias at ``version`` (one write: the moment the champion changes)."""
    name, alias = settings.tracking.registered_model, settings.tracking.champion_alias
    with store_errors(f"cannot move the '{alias}' alias of '{name}' to v{version}"):
        client.set_registered_model_alias(name, alias, str(version))


def record_champion(
    client: MlflowClient, settings: Settings, version: str, history: list[str]
) -> None:
    """Push ``version`` onto the champion history and stamp when it became champion.

    Runs after the alias moved: a history entry missing after a crash in
    between is harmless (rollback skips entries equal to the champion).
    """
    name = settings.tracking.registered_model
    with store_errors(f"v{version} is champion, but its history could not be recorded"):
        stack = [*history, str(version)][-HISTORY_LENGTH:]
        client.set_registered_model_tag(name, TAG_HISTORY, json.dumps(stack))
        client.set_model_version_tag(
            name, str(version), TAG_CHAMPION_SINCE, datetime.now(UTC).isoformat(timespec="seconds")
        )


def champion_history(client: MlflowClient, settings: Settings) -> list[str]:
    """Versions in the order they became champion (oldest first); [] before the first one."""
    model = registered_model(client, settings)
    if model is None:
        return []
    text = model.tags.get(TAG_HISTORY, "[]")
    try:
        history = json.loads(text)
    except ValueError:
        history = None
    if not isinstance(history, list):
        raise RegistryError(
            f"tag {TAG_HISTORY} of model '{model.name}' is not a JSON list of versions: "
            f"{text[:80]!r}; correct or delete it (MLflow UI, registered model tags)"
        )
    return [str(v) for v in history]


def promote(
    client: MlflowClient, settings: Settings, version: str
) -> tuple[ModelVersion | None, ModelVersion]:
    """Make a registered version the champion (an operator's decision: no gate); (was, is).

    Promoting the champion itself changes nothing: pushed onto the history
    again it would count twice as a champion, and the rollback that pops every
    copy of it would forget it ever was one.
    """
    target = get_version(client, settings, version)
    current = champion_version(client, settings)
    if current is None or str(current.version) != str(target.version):
        set_champion(client, settings, target.version)
    return current, target


def rollback(client: MlflowClient, settings: Settings) -> tuple[ModelVersion, ModelVersion]:
    """Move the alias back to the champion before the current one; (from, to).

    The history is a stack: the current champion is popped, so rolling back
    twice goes two champions back.
    """
    current = champion_version(client, settings)
    if current is None:
        raise RegistryError("there is no champion to roll back")
    history = champion_history(client, settings)
    while history and history[-1] == str(current.version):
        history.pop()
    if not history:
        raise RegistryError(
            f"v{current.version} is the only champion there has been; nothing to roll back to "
            "(`salarymodel promote VERSION` sets one explicitly)"
        )
    target = get_version(client, settings, history[-1])
    move_alias(client, settings, target.version)
    with store_errors(f"v{target.version} is champion, but the history could not be updated"):
        client.set_registered_model_tag(
            settings.tracking.registered_model, TAG_HISTORY, json.dumps(history)
        )
    return current, target


def required_champion(client: MlflowClient, settings: Settings) -> ModelVersion:
    """The champion version, or a ``RegistryError`` saying how to get one."""
    current = champion_version(client, settings)
    if current is None:
        raise RegistryError(
            f"no '{settings.tracking.champion_alias}' version of model "
            f"'{settings.tracking.registered_model}' in {tracking_uri(settings)}; "
            "run `salarymodel train` first"
        )
    return current
