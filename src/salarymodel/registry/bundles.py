"""Model bundles in the store: logged as a models-from-code pyfunc, loaded back by version."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from salarymodel.config.settings import Settings
from salarymodel.core.bundle_files import BundleError
from salarymodel.core.model import SalaryModel
from salarymodel.registry.champion import required_champion
from salarymodel.registry.store import RegistryError, connect, tracking_uri
from salarymodel.registry.store_path import (
    BUNDLE_ARTIFACT,
    cached_bundle,
    cached_run_id,
    cached_version,
)

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)

MODEL_NAME_IN_RUN = "model"

_RUNTIME_PACKAGES = ("lightgbm", "pandas", "numpy", "pydantic", "pyyaml")


def pip_requirements() -> list[str]:
    """Pinned runtime requirements of the logged model (inference takes 5-9 s)."""
    return [f"{name}=={package_version(name)}" for name in _RUNTIME_PACKAGES] + [
        f"mlflow=={mlflow.__version__}"
    ]


def log_model_bundle(model: SalaryModel) -> mlflow.models.model.ModelInfo:
    """Log the bundle as a models-from-code pyfunc in the active run."""
    package_dir = Path(__file__).resolve().parents[1]  # src/salarymodel
    with tempfile.TemporaryDirectory() as tmp:
        bundle_dir = model.save(Path(tmp) / BUNDLE_ARTIFACT)
        return mlflow.pyfunc.log_model(
            name=MODEL_NAME_IN_RUN,
            python_model=str(package_dir / "registry" / "pyfunc_entry.py"),
            artifacts={BUNDLE_ARTIFACT: str(bundle_dir)},
            code_paths=[str(package_dir)],
            pip_requirements=pip_requirements(),
        )


def load_version(
    client: MlflowClient,
    settings: Settings,
    version: ModelVersion,
    read: Callable[[Path], SalaryModel] = SalaryModel.load,
) -> SalaryModel:
    """Download a version's bundle (plain files) and ``read`` it; nothing is unpickled."""
    cache, bundle = cached_version(version.version), cached_bundle(version.version)
    cached_run = cached_run_id(bundle) if bundle.is_dir() else None
    if cached_run is not None and cached_run != version.run_id:
        # A copy left from another store's v{N} (a registry started again): not this one.
        logger.warning("cached v%s is of run %s; downloading it again", version.version, cached_run)
        shutil.rmtree(cache)
    if bundle.is_dir():
        try:
            model = read(bundle)
        except BundleError as error:
            # The cache is only a copy: a damaged one is replaced from the store.
            logger.warning("%s; downloading v%s again", error, version.version)
            shutil.rmtree(cache)
    if not bundle.is_dir():
        _download_version(settings, version, cache)
        try:
            model = read(bundle)
        except BundleError as error:
            shutil.rmtree(cache, ignore_errors=True)
            raise RegistryError(
                f"model v{version.version} in the registry cannot be served: {error}; "
                "promote a sound version (`salarymodel versions`, `salarymodel promote N`) "
                "or train again"
            ) from error
    model.metadata.setdefault("model_version", str(version.version))
    return model


def _download_version(settings: Settings, version: ModelVersion, cache: Path) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    try:
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{version.name}/{version.version}",
            dst_path=str(cache),
            tracking_uri=tracking_uri(settings),
        )
    except (MlflowException, OSError) as error:
        shutil.rmtree(cache, ignore_errors=True)
        raise RegistryError(f"cannot download model v{version.version}: {error}") from error


def load_champion(
    settings: Settings, read: Callable[[Path], SalaryModel] = SalaryModel.load
) -> tuple[SalaryModel, ModelVersion]:
    """The champion model (its bundle given to ``read``), or a clear error saying how to get one."""
    client = connect(settings)
    current = required_champion(client, settings)
    return load_version(client, settings, current, read), current
