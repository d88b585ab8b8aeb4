"""The MLflow store: where it is, whether it answers, and its errors.

Only the registry answering that there is no model or no alias means "no champion";
any other store error is a ``RegistryError`` and promotes nothing. The champion alias
is ``salarymodel.registry.champion``, bundles ``registry.bundles``, listings
``registry.views``, and the gate's decision ``salarymodel.promotion.decisions``.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

from salarymodel.config.settings import Settings, resolve_path
from salarymodel.evaluation.backtest import BACKTEST_ESTIMATES
from salarymodel.registry.store_path import (
    RegistryError,
    registry_cache,
    store_exists,
    store_file,
    tracking_uri,
)
from salarymodel.vocabulary import FUSED_MODEL

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)


TAG_FINGERPRINT = "data_fingerprint"

TAG_FOLDS = "cv_folds"

TAG_BACKTEST = "backtest_folds"  # the backtest's configuration: which folds it makes

# The run artifact with the per-row backtest estimates the gate pairs.
BACKTEST_ARTIFACT = f"evaluation/{BACKTEST_ESTIMATES}"

TAG_KIND = "kind"  # train | retrain

TAG_PARENT = "parent_version"  # the champion a retrain started from


def run_id_of(version: ModelVersion) -> str:
    """The run a version was registered from; a RegistryError for a version registered
    outside a run (MLflow's client raises a TypeError on a run id of None)."""
    if version.run_id is None:
        raise RegistryError(f"model version v{version.version} was not registered from a run")
    return version.run_id


NOT_FOUND = ErrorCode.Name(RESOURCE_DOES_NOT_EXIST)


def first_line(error: BaseException) -> str:
    """An error's first line: SQLAlchemy appends the SQL and a link, a CLI shows one line."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


@contextmanager
def store_errors(doing: str) -> Iterator[None]:
    """Turn an MLflow store error into a ``RegistryError`` saying what could not be done.

    Nothing that reads the registry may take a failure for an answer (a missing
    champion, an empty history): read as "no champion", a locked store would
    let the gate promote a challenger unchecked.
    """
    try:
        yield
    except MlflowException as error:
        raise RegistryError(f"{doing}: {first_line(error)}") from error


def check_reachable(uri: str, timeout: float) -> None:
    """A clear error, within ``timeout`` seconds, when the tracking store cannot be reached."""
    parsed = urlparse(uri)
    hint = "set tracking.uri in configs/salarymodel.yaml or SALARYMODEL_TRACKING_URI"
    if parsed.scheme in ("http", "https"):
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            socket.create_connection((parsed.hostname or "", port), timeout=timeout).close()
        except OSError as error:
            raise RegistryError(
                f"tracking store {uri} is unreachable ({error}); start it or {hint}"
            ) from error
    elif parsed.scheme == "sqlite":
        folder = Path(uri.removeprefix("sqlite:///")).parent
        if not folder.is_dir():
            raise RegistryError(f"tracking store {uri}: folder {folder} does not exist; {hint}")


# ----- the store exists, or is created on purpose ----------------------------------------
# MLflow's SQL store creates a missing sqlite file and its tables on first
# contact: a moved or deleted ``mlflow.db`` would silently come back empty, and
# the next `train` would start again at v1 as champion. So only `train` may
# create a store, and only when nothing in models/ shows that versions existed
# before (or when told to with --new-store).
NEW_STORE_FLAG = "--new-store"

# The (device, inode) of each sqlite store this process connected to: a store
# moved or replaced mid-run is told apart from one that merely failed.
_OPENED: dict[Path, tuple[int, int]] = {}


def earlier_versions(settings: Settings) -> list[str]:
    """What in the project shows that a registry held versions before (paths, a few).

    The registry cache (one folder per version ever loaded), the rows promoted
    retrains accepted, and the MLflow artifact root with logged runs.
    """
    found: list[Path] = []
    cache = registry_cache()
    found += sorted(p for p in cache.glob("v*") if p.is_dir())
    accepted = resolve_path(settings.retraining.accepted_dir)
    found += sorted(p for p in accepted.glob("*/*") if p.is_file())
    artifacts = resolve_path(settings.tracking.artifact_root)
    found += sorted(p for p in artifacts.glob("*/*") if p.is_dir())
    root = resolve_path(".")
    return [str(p.relative_to(root) if p.is_relative_to(root) else p) for p in found[:5]]


def missing_store_error(settings: Settings) -> RegistryError:
    """The refusal of a command that needs an existing store."""
    return RegistryError(
        f"tracking store {tracking_uri(settings)} does not exist; it is never created by "
        "this command: restore it (or point tracking.uri / SALARYMODEL_TRACKING_URI at it), "
        "or run `salarymodel train` to start a registry"
    )


def check_store_for_training(settings: Settings, new_store: bool) -> None:
    """May `train` use, or create, the configured store? A ``RegistryError`` if not.

    An existing store is used. A missing one is created only on first use
    (nothing in the project shows earlier versions) or with ``new_store``.
    """
    if store_exists(settings) or new_store:
        return
    history = earlier_versions(settings)
    if history:
        raise RegistryError(
            f"tracking store {tracking_uri(settings)} does not exist, but the project shows "
            f"earlier versions ({', '.join(history)}); restore the store, or pass "
            f"{NEW_STORE_FLAG} to start a new registry at v1"
        )


def store_lost(settings: Settings) -> bool:
    """The sqlite store this process connected to is gone or was replaced since."""
    path = store_file(settings)
    opened = _OPENED.get(path) if path is not None else None
    if path is None or opened is None:
        return False
    try:
        now = path.stat()
    except OSError:
        return True
    return (now.st_dev, now.st_ino) != opened or now.st_size == 0


def lost_store_error(settings: Settings, doing: str) -> RegistryError:
    """The error of a run whose store was moved, deleted or replaced while it ran."""
    return RegistryError(
        f"{doing}: tracking store {tracking_uri(settings)} was moved, deleted or replaced "
        "while this command ran; nothing was registered or promoted (restore the store)"
    )


def mark_failed(client: MlflowClient, run_id: str, error: BaseException) -> None:
    """Mark a run FAILED with the error as a tag, after it was closed as finished.

    For a command that fails after its run (gating, registering, publishing).
    Best effort: the store may be what failed; the original error is what the
    caller reports.
    """
    try:
        client.set_tag(run_id, "error", f"{type(error).__name__}: {error}"[:4000])
        client.set_terminated(run_id, "FAILED")
    except Exception:  # the caller raises the original error
        logger.warning("could not mark run %s FAILED", run_id)


# Milliseconds a SQLite session waits for a lock (tracking.sqlite_busy_timeout_seconds).
# MLflow opens every session with "PRAGMA busy_timeout = 20000": a listener on every
# SQLAlchemy engine (MLflow's, created before or after) states the configured wait instead.
_BUSY_TIMEOUT_MS: dict[str, int] = {}


def _wait_when_busy(seconds: float) -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    if not _BUSY_TIMEOUT_MS:
        event.listen(Engine, "before_cursor_execute", _busy_timeout_pragma, retval=True)
    _BUSY_TIMEOUT_MS["ms"] = round(seconds * 1000)


def _busy_timeout_pragma(conn, cursor, statement: str, parameters, context, executemany):  # type: ignore[no-untyped-def]
    if statement.startswith("PRAGMA busy_timeout"):
        statement = f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS['ms']};"
    return statement, parameters


def connect(settings: Settings, create: bool = False) -> MlflowClient:
    """Point MLflow at the configured store and make sure the experiment exists.

    A missing sqlite store is a ``RegistryError`` unless ``create`` (only
    `train`, after ``check_store_for_training``).
    """
    uri = tracking_uri(settings)
    check_reachable(uri, settings.tracking.connect_timeout_seconds)
    if not create and not store_exists(settings):
        raise missing_store_error(settings)
    # MLflow reads these per request; a caller's own settings win.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(settings.tracking.http_retries))
    os.environ.setdefault(
        "MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(settings.tracking.connect_timeout_seconds * 2))
    )
    _wait_when_busy(settings.tracking.sqlite_busy_timeout_seconds)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    with store_errors(f"tracking store {uri} is not usable"):
        if client.get_experiment_by_name(settings.tracking.experiment) is None:
            artifacts = resolve_path(settings.tracking.artifact_root).resolve().as_uri()
            client.create_experiment(settings.tracking.experiment, artifact_location=artifacts)
        mlflow.set_experiment(settings.tracking.experiment)
    path = store_file(settings)
    if path is not None and path.is_file():
        stat = path.stat()
        _OPENED[path] = (stat.st_dev, stat.st_ino)
    return client


def champion_backtest(client: MlflowClient, version: ModelVersion) -> pd.DataFrame | None:
    """The per-row backtest estimates logged with a version's run; None when it has none.

    A store that cannot give them, or a damaged file, is a ``RegistryError``:
    the gate stops rather than guess.
    """
    import pandas as pd

    doing = f"cannot read the backtest estimates of champion v{version.version}"
    folder, name = BACKTEST_ARTIFACT.rsplit("/", 1)
    with store_errors(doing):
        listed = {a.path for a in client.list_artifacts(run_id_of(version), folder)}
    if BACKTEST_ARTIFACT not in listed:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id_of(version), BACKTEST_ARTIFACT, tmp)
            frame = pd.read_csv(path, dtype={"fold": str, "source": str, "group_id": str})
        except (MlflowException, OSError, EOFError, ValueError) as error:
            raise RegistryError(f"{doing}: {first_line(error)}") from error
    missing = {"fold", "source", "row_number", "group_id", "salary_usd", FUSED_MODEL}
    missing -= set(frame.columns)
    if missing:
        raise RegistryError(f"{doing}: {name} has no column(s) {sorted(missing)}")
    return frame


def pair_backtest(ours: pd.DataFrame, theirs: pd.DataFrame) -> pd.DataFrame | None:
    """The two runs' fused estimates side by side, rows matched on (fold, source, row_number).

    A key repeated (two accepted files of one source) is matched by its
    order of appearance. None unless both runs scored exactly the same
    records (the same rows, with the same salaries).
    """
    import numpy as np

    keys = ["fold", "source", "row_number"]

    def keyed(frame: pd.DataFrame, estimate: str) -> pd.DataFrame:
        out = frame[[*keys, "group_id", "salary_usd", FUSED_MODEL]].rename(
            columns={FUSED_MODEL: estimate}
        )
        out = out.astype({"fold": str, "source": str, "row_number": int, "group_id": str})
        return out.assign(occurrence=out.groupby(keys).cumcount())

    if len(ours) != len(theirs):
        return None
    paired = keyed(ours, "challenger").merge(
        keyed(theirs, "champion"), on=[*keys, "occurrence"], suffixes=("", "_champion")
    )
    same = len(paired) == len(ours) and np.allclose(
        paired["salary_usd"].to_numpy(float), paired["salary_usd_champion"].to_numpy(float)
    )
    return paired if same else None


def compare(
    settings: Settings, challenger: float, champion: float, tolerance: float
) -> tuple[bool, str]:
    """Is the challenger's gate metric at least as good as the champion's (within tolerance)?

    Returns the verdict and its wording: "at least as good as", "worse than but
    within the tolerance of" (passes: say so rather than call it as good) or "worse than".
    """
    higher_is_better = settings.gate.metric == "r2_log"
    if higher_is_better:
        ok = challenger >= champion - tolerance * abs(champion)
        as_good = challenger >= champion
    else:
        ok = challenger <= champion * (1 + tolerance)
        as_good = challenger <= champion
    if as_good:
        return True, "at least as good as"
    return ok, "worse than but within the tolerance of" if ok else "worse than"


def list_versions(client: MlflowClient, settings: Settings) -> list[ModelVersion]:
    """Every registered version, oldest first."""
    name = settings.tracking.registered_model
    try:
        found = client.search_model_versions(f"name='{name}'")
    except MlflowException as error:
        raise RegistryError(f"cannot list versions of '{name}': {error}") from error
    return sorted(found, key=lambda v: int(v.version))


def get_version(client: MlflowClient, settings: Settings, version: str) -> ModelVersion:
    """One registered version, or an error naming the versions there are."""
    known = [str(v.version) for v in list_versions(client, settings)]
    wanted = str(version).removeprefix("v")
    if wanted not in known:
        listed = ", ".join(known) if known else "none"
        raise RegistryError(
            f"model '{settings.tracking.registered_model}' has no version {version!r} "
            f"(registered versions: {listed})"
        )
    with store_errors(f"cannot read version {wanted} of '{settings.tracking.registered_model}'"):
        return client.get_model_version(settings.tracking.registered_model, wanted)
