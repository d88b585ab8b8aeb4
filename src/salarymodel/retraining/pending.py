"""One retrain at a time, and the accepted rows a stopped retrain left pending.

``retrain_lock`` holds the project's retrain lock (a ``flock``);
``reconcile_accepted`` keeps the pending rows of a version that became champion
and deletes the others, before a retrain reads the existing data.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from mlflow import MlflowClient

from salarymodel.config.settings import Settings, resolve_path
from salarymodel.data.dataset import (
    commit_accepted,
    pending_accepted,
)
from salarymodel.registry.champion import champion_history, champion_version
from salarymodel.registry.store import (
    RegistryError,
    list_versions,
)


class RetrainBusy(RegistryError):
    """Another retrain of the same project is running."""


@contextmanager
def retrain_lock(settings: Settings) -> Iterator[None]:
    """Hold the project's retrain lock for the whole retrain.

    Two retrains at once would settle each other's pending rows as left behind.
    The lock is a ``flock``: the kernel releases it when its process dies, so a
    killed retrain never blocks the next one.
    """
    folder = resolve_path(settings.retraining.accepted_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ".retrain.lock"
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise RetrainBusy(
                f"another retrain of this project is running (it holds {path}); "
                "run this one when it has finished"
            ) from error
        yield


@dataclass
class Reconciled:
    """Pending accepted files a stopped retrain left, as settled against the registry."""

    committed: list[Path] = field(default_factory=list)
    dropped: list[Path] = field(default_factory=list)


def reconcile_accepted(client: MlflowClient, settings: Settings) -> Reconciled:
    """Commit pending rows whose version became champion; delete the others.

    A version "became champion" when it carries the alias or is in the champion
    history (a rollback since does not unmake the data it was trained on, as
    for any promoted retrain). Rows whose run has no version, or a version that
    never became champion, were never part of a champion's training data.
    """
    out = Reconciled()
    pending = pending_accepted(settings)
    if not pending:
        return out
    current = champion_version(client, settings)
    line = set(champion_history(client, settings))
    if current is not None:
        line.add(str(current.version))
    by_run = {v.run_id: str(v.version) for v in list_versions(client, settings)}
    for path, run_id in pending:
        if by_run.get(run_id) in line:
            out.committed.append(commit_accepted(path))
        else:
            path.unlink()
            out.dropped.append(path)
    return out
