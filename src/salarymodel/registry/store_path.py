"""Where the MLflow store and the registry cache are, and the registry's error.

From the settings alone, without importing MLflow: a command that only needs
to find them does not pay for it.

``registry.store`` talks to the store; ``registry.cached_champion`` reads the
champion's alias from a sqlite store without MLflow, and both find it here.
"""

from __future__ import annotations

import json
from pathlib import Path

from salarymodel.config.settings import Settings, resolve_path
from salarymodel.core.bundle_files import METADATA_FILE


class RegistryError(RuntimeError):
    """The tracking store or registry cannot give what was asked."""


# The logged model's artifact that holds the bundle (plain files).
BUNDLE_ARTIFACT = "bundle"


def tracking_uri(settings: Settings) -> str:
    """``tracking.uri`` (``SALARYMODEL_TRACKING_URI`` overrides it: ``config.ENV_OVERRIDES``).

    Relative sqlite paths are anchored at the project root.
    """
    uri = settings.tracking.uri
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(resolve_path(uri.removeprefix(prefix)))
    return uri


def store_file(settings: Settings) -> Path | None:
    """The sqlite file of the configured store; None for a remote (http) or other store."""
    uri = tracking_uri(settings)
    prefix = "sqlite:///"
    return Path(uri.removeprefix(prefix)) if uri.startswith(prefix) else None


def store_exists(settings: Settings) -> bool:
    """Whether the configured store is there to read (a remote store is assumed to be).

    An empty file counts as missing: SQLAlchemy leaves one behind when it
    reconnects to a store that was moved away, and MLflow would fill it with
    empty tables.
    """
    path = store_file(settings)
    return path is None or (path.is_file() and path.stat().st_size > 0)


def registry_cache() -> Path:
    """The registry cache: one folder per version loaded from the store."""
    return resolve_path("models") / "registry-cache"


def cached_version(version: str) -> Path:
    """The registry cache's folder of a version (its download from the store)."""
    return registry_cache() / f"v{version}"


def cached_bundle(version: str) -> Path:
    """The bundle inside a version's cached download."""
    return cached_version(version) / "artifacts" / BUNDLE_ARTIFACT


def cached_run_id(bundle: Path) -> str | None:
    """The run id a cached bundle was trained in (its metadata); None when unreadable."""
    try:
        metadata = json.loads((bundle / METADATA_FILE).read_text())
    except (OSError, ValueError):
        return None
    run_id = metadata.get("run_id") if isinstance(metadata, dict) else None
    return run_id if isinstance(run_id, str) else None
