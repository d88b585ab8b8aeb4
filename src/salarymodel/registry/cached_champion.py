"""The champion from the registry cache, found without MLflow (a quick `predict`).

Importing MLflow and opening its SQL store take about 2 s of a 3 s
`salarymodel predict`, to learn one number: which version is the champion. A
sqlite store answers that in a millisecond: the alias row, read-only. The
champion's bundle is then read from the registry cache (``models/registry-cache``,
filled by any command that loaded it through MLflow) only when its run id is
the version's. Anything unexpected (a remote store, tables MLflow changed, no
cached copy, a copy of another run) answers None, and the caller goes through
MLflow as before: this is a shortcut, never a second registry.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from salarymodel.config.settings import Settings
from salarymodel.core.bundle_files import BundleError
from salarymodel.core.model import SalaryModel
from salarymodel.registry.store_path import cached_bundle, cached_run_id, store_exists, store_file

logger = logging.getLogger(__name__)

# MLflow's registry tables (its SQL store's schema since MLflow 2.3; a query that
# no longer fits them fails, and the caller takes MLflow's way).
_ALIAS_QUERY = (
    "SELECT v.version, v.run_id, v.status FROM registered_model_aliases AS a "
    "JOIN model_versions AS v ON v.name = a.name AND v.version = a.version "
    "WHERE a.name = ? AND a.alias = ?"
)


@dataclass(frozen=True)
class ChampionRow:
    """The champion alias as the store holds it."""

    version: str
    run_id: str


def champion_row(settings: Settings, timeout: float = 1.0) -> ChampionRow | None:
    """The champion's version and run read straight from a sqlite store; None when the
    store is not a sqlite file, holds no single ready champion, or cannot be read so."""
    path = store_file(settings)
    if path is None or not store_exists(settings):
        return None
    names = (settings.tracking.registered_model, settings.tracking.champion_alias)
    uri = f"{path.resolve().as_uri()}?mode=ro"
    try:
        # Read-only: this path must never create, migrate or lock the store for writing.
        with closing(sqlite3.connect(uri, uri=True, timeout=timeout)) as db:
            rows = db.execute(_ALIAS_QUERY, names).fetchall()
    except sqlite3.Error as error:
        logger.debug("champion not read from %s directly: %s", path, error)
        return None
    if len(rows) != 1:  # none yet, or one per MLflow workspace: MLflow decides
        return None
    version, run_id, status = rows[0]
    if status != "READY" or not run_id:
        return None
    return ChampionRow(str(version), str(run_id))


def cached_champion(
    settings: Settings, read: Callable[[Path], SalaryModel] = SalaryModel.load
) -> tuple[SalaryModel, str] | None:
    """(model, version) of the champion from the registry cache without MLflow; None
    when the store or the cache cannot say so for certain."""
    row = champion_row(settings)
    if row is None:
        return None
    bundle = cached_bundle(row.version)
    if cached_run_id(bundle) != row.run_id:
        return None
    try:
        model = read(bundle)
    except BundleError as error:  # MLflow's way downloads it again
        logger.warning("%s; loading v%s through the registry", error, row.version)
        return None
    model.metadata.setdefault("model_version", row.version)
    return model, row.version


def load_champion_quickly(
    settings: Settings, read: Callable[[Path], SalaryModel] = SalaryModel.load
) -> tuple[SalaryModel, str]:
    """(model, version) of the champion: from the cache when the store vouches for it,
    else through MLflow (``registry.bundles.load_champion``, which fills the cache)."""
    found = cached_champion(settings, read)
    if found is not None:
        return found
    from salarymodel.registry.bundles import load_champion

    model, version = load_champion(settings, read)
    return model, str(version.version)
