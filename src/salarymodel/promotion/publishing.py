"""Publishing a finished run, one way for `train` and `retrain`.

A run is published only after it has logged everything, in this order, one
write per step:

  run complete -> accepted rows staged (a retrain's; pending, named by the run id)
  -> version registered (tagged with where its rows will be) -> alias moved
  (only when the decision promotes) -> champion history recorded -> accepted
  rows committed (a rename).

Killed before the alias moves, the old champion and its data stand (a
version registered on the way never became champion: its pending rows are
dropped). Killed after, the new champion stands and the next retrain
commits its pending rows before it reads the training data
(``retraining.reconcile_accepted``).
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from salarymodel.config.settings import Settings, resolve_path
from salarymodel.data.dataset import accepted_path, commit_accepted, stage_accepted
from salarymodel.registry.champion import champion_history, move_alias, record_champion, register
from salarymodel.registry.store import store_errors

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

KILL_AT_ENV = "SALARYMODEL_TEST_KILL_AT"
PUBLISH_STEPS = ("run_complete", "staged", "registered", "alias_moved", "recorded")
TAG_ACCEPTED = "accepted_file"


def reached(step: str) -> None:
    """A step boundary of publishing; a test names one in ``KILL_AT_ENV`` to be killed there."""
    if os.environ.get(KILL_AT_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True)
class AcceptedRows:
    """A retrain's accepted raw rows of a new file, kept once its version is champion."""

    rows: pd.DataFrame
    source: str
    name: str  # the file's name without suffixes: time stamp and fingerprint


@dataclass(frozen=True)
class Published:
    """The version registered, and (a retrain's) the accepted file committed."""

    version: str
    accepted: Path | None = None


def publish(
    client: MlflowClient,
    settings: Settings,
    model_uri: str,
    run_id: str,
    promote: bool,
    accepted: AcceptedRows | None = None,
) -> Published:
    """Register a finished run's model; make it champion only when ``promote``.

    Called after the run has ended: a crash before this point leaves the
    registry and the alias as they were. ``accepted`` rows are staged before
    the version is registered and committed once it is champion (a retrain
    publishes only on a pass; a refused one keeps no rows).
    """
    reached("run_complete")
    pending = None
    if accepted is not None:
        pending = stage_accepted(accepted.rows, accepted.source, accepted.name, run_id, settings)
    reached("staged")
    # Read before anything is written: a store that cannot answer moves nothing.
    history = champion_history(client, settings) if promote else []
    version = str(register(client, settings, model_uri, run_id).version)
    if pending is not None:
        model = settings.tracking.registered_model
        with store_errors(f"cannot tag v{version} with its accepted rows"):
            where = accepted_path(pending).relative_to(resolve_path("."))
            client.set_model_version_tag(model, version, TAG_ACCEPTED, str(where))
    reached("registered")
    if not promote:
        return Published(version)
    move_alias(client, settings, version)
    reached("alias_moved")
    try:
        record_champion(client, settings, version, history)
        reached("recorded")
    finally:  # v{version} is champion from here on: its rows are training data
        committed = commit_accepted(pending) if pending is not None else None
    return Published(version, committed)
