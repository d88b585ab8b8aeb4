"""Where the served model comes from: the MLflow registry, the BentoML model store, an export.

``serving.model_source`` (``SALARYMODEL_MODEL_SOURCE``): ``registry`` is the
MLflow version with the champion alias; ``bentoml`` is the copy exported to
the BentoML model store (``salarymodel serve`` exports the champion there and
its workers load that copy; a built Bento names it); ``auto`` (default) takes
the registry when there is a tracking store and the BentoML store otherwise,
and a Bento serves the model it was built with. Missing or corrupt model files
(checked against the bundle's SHA-256 manifest) or an unreachable tracking
store stop the start with a message saying which; nothing falls back to an
older model. Either way the model is a folder of plain files (LightGBM text +
JSON): nothing is unpickled, and no path comes from a request.

Workers read the bundle with :class:`NativeBooster` (no ``lightgbm`` Python
package); only the registry path imports MLflow, and only when it is used.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from salarymodel.config.settings import Settings, load_settings, resolve_path
from salarymodel.core.bundle_files import BOOSTER_FILE, BundleError
from salarymodel.core.model import SalaryModel
from salarymodel.serving.booster import NativeBooster
from salarymodel.serving.served import ServingModel, json_safe
from salarymodel.vocabulary import FUSED_MODEL

logger = logging.getLogger("salarymodel.serving")


# BentoML phones home with usage statistics unless told not to; the service
# must not use the network at run time. Its home (model store, bentos)
# defaults to the user's home folder: keep it inside the project.
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")

os.environ.setdefault("BENTOML_HOME", str(resolve_path("bentoml_home")))

BENTO_MODEL_NAME = "salarymodel"

BUNDLE_DIR = "bundle"

INFO_FILE = "serving_info.json"


class ModelSourceError(RuntimeError):
    """No sound model can be had from the configured place (the message says why)."""


def read_serving_bundle(folder: Path) -> SalaryModel:
    """A bundle read for serving: boosters through LightGBM's C library, checksums verified.

    The point booster gets the two-thread one-row SHAP path of ``/explain``.
    """

    def point(path: Path) -> NativeBooster:
        return NativeBooster(path, split_contributions=path.name == BOOSTER_FILE)

    return SalaryModel.load(folder, read_booster=NativeBooster, read_point_booster=point)


@contextmanager
def project_lock(name: str) -> Iterator[None]:
    """An exclusive lock file under ``models/``: workers start together, and the first
    download of a registry version or export of a model must not race."""
    folder = resolve_path("models")
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f".{name}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def registry_has_store(settings: Settings) -> bool:
    """Is there a tracking store to ask? Never creates an empty MLflow database by looking."""
    from salarymodel.registry.store import tracking_uri

    uri = tracking_uri(settings)
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).exists()
    return True


def metrics_summary(evaluation: Mapping[str, Any]) -> dict[str, Any]:
    """The champion's cross-validated accuracy and range coverage, per source."""
    table = [r for r in evaluation.get("table", []) if r.get("model") == FUSED_MODEL]
    ranges = [
        r
        for r in evaluation.get("ranges", [])
        if r.get("method") == "calibrated" and r.get("split") == "cv"
    ]
    return json_safe(
        {
            "cv": {
                r["source"]: {k: r.get(k) for k in ("n", "mae_usd", "mdape", "r2_log")}
                for r in table
            },
            "ranges": {
                r["source"]: {k: r.get(k) for k in ("n", "coverage", "mean_width_usd")}
                for r in ranges
            },
        }
    )


def load_from_registry(settings: Settings) -> tuple[SalaryModel, dict[str, Any]]:
    """The champion from the MLflow registry and what is known about it (imports MLflow)."""
    from salarymodel.registry.bundles import load_champion
    from salarymodel.registry.store import RegistryError, connect
    from salarymodel.registry.views import run_evaluation

    try:
        with project_lock("registry"):
            model, version = load_champion(settings, read_serving_bundle)
            try:
                evaluation = run_evaluation(connect(settings), version)
            except Exception as error:  # the metrics are informative, never a reason not to serve
                logger.warning("no evaluation for v%s: %s", version.version, error)
                evaluation = {}
    except RegistryError as error:
        raise ModelSourceError(str(error)) from error
    info = {
        "model_version": str(version.version),
        "run_id": version.run_id,
        "metrics": metrics_summary(evaluation),
    }
    return model, info


def bento_store_folder(tag: str) -> tuple[str, Path]:
    """(full tag, folder) of a model in the BentoML store, or ``ModelSourceError``."""
    import bentoml

    try:
        stored = bentoml.models.get(tag)
    except bentoml.exceptions.NotFound as error:
        raise ModelSourceError(
            f"no model {tag} in the BentoML store; run `salarymodel train` first"
        ) from error
    return str(stored.tag), Path(stored.path)


def load_from_bento_store(tag: str) -> tuple[SalaryModel, dict[str, Any]]:
    """An exported model from the BentoML model store (plain files only, checksums verified)."""
    _, folder = bento_store_folder(tag)
    try:
        model = read_serving_bundle(folder / BUNDLE_DIR)
        info = json.loads((folder / INFO_FILE).read_text())
    except (BundleError, OSError, ValueError) as error:
        raise ModelSourceError(f"exported model {tag} cannot be served: {error}") from error
    return model, info


def export_to_bento_store(model: SalaryModel, info: Mapping[str, Any]) -> str:
    """Copy a model into the BentoML model store as ``salarymodel:v<version>`` (idempotent)."""
    import bentoml

    from salarymodel.core.bundle_files import verify_manifest

    tag = f"{BENTO_MODEL_NAME}:v{info['model_version']}"
    try:
        stored = bentoml.models.get(tag)
    except bentoml.exceptions.NotFound:
        stored = None
    if stored is not None:
        try:
            verify_manifest(Path(stored.path) / BUNDLE_DIR)
            return str(stored.tag)
        except BundleError as error:
            # The registry holds a sound copy: replace the damaged export.
            logger.warning("re-exporting %s: %s", tag, error)
            bentoml.models.delete(tag)
    labels = {"model_version": str(info["model_version"]), "alias": "champion"}
    with bentoml.models.create(tag, labels=labels, metadata=json_safe(dict(info))) as stored:
        model.save(Path(stored.path) / BUNDLE_DIR)
        (Path(stored.path) / INFO_FILE).write_text(json.dumps(json_safe(dict(info)), indent=1))
    return tag


def export_champion(settings: Settings | None = None) -> str:
    """Export the registry's champion to the BentoML model store; the tag to serve.

    Without a registry (no tracking store, as in a built Bento) or with
    ``serving.model_source: bentoml``, the exported model (``serving.bento_model``,
    default the newest) is served, after its checksums are verified. A
    registry that exists but cannot give a sound champion is an error:
    silently serving an older export could undo a rollback or a promotion.
    """
    settings = settings or load_settings()
    where = settings.serving.model_source
    if where != "bentoml" and registry_has_store(settings):
        model, info = load_from_registry(settings)
        with project_lock("bento-store"):
            return export_to_bento_store(model, info)
    if where == "registry":
        raise ModelSourceError("serving.model_source is registry but there is no tracking store")
    tag = settings.serving.bento_model or f"{BENTO_MODEL_NAME}:latest"
    load_from_bento_store(tag)  # refuses missing or corrupt files before any worker starts
    return bento_store_folder(tag)[0]


def load_serving_model(
    settings: Settings | None = None, packaged: str | None = None
) -> ServingModel:
    """Load the model to serve, from the configured place, ready to answer.

    ``packaged`` is the model tag a built Bento carries: served from a Bento,
    the service answers with that model unless told otherwise.
    """
    settings = settings or load_settings()
    configured = settings.serving.model_source
    where = "bentoml" if packaged and configured == "auto" else configured
    tag = settings.serving.bento_model or packaged or f"{BENTO_MODEL_NAME}:latest"
    # A registry that exists but cannot give a sound champion is an error, not
    # a reason to serve whatever was exported last (see `export_champion`).
    if where == "registry" or (where == "auto" and registry_has_store(settings)):
        model, info = load_from_registry(settings)
        return ready_to_serve(model, info, "mlflow-registry")
    model, info = load_from_bento_store(tag)
    return ready_to_serve(model, info, f"bentoml-store:{tag}", tag)


def load_announced(tag: str) -> ServingModel:
    """The exported model a reload names, from the BentoML store, ready to swap in."""
    model, info = load_from_bento_store(tag)
    return ready_to_serve(model, info, f"bentoml-store:{tag}", tag)


def ready_to_serve(
    model: SalaryModel, info: Mapping[str, Any], source: str, tag: str | None = None
) -> ServingModel:
    """A loaded model with its explainer and model card: ready to swap in."""
    from salarymodel.core.explanations import Explainer
    from salarymodel.serving.model_card import model_card
    from salarymodel.serving.scoring import estimate_many, explain_one

    serving = ServingModel(
        model, Explainer.from_model(model), str(info["model_version"]), source, dict(info), tag
    )
    serving.card = model_card(serving)
    # The first request would otherwise pay for compiling title rules and
    # filling look-up caches (~0.2 s): pay it here, before the swap or start.
    warm_up = {"job_title": "Data Scientist", "country": "US", "source": serving.default_view}
    explain_one(serving, warm_up)
    estimate_many(serving, [warm_up, {**warm_up, "skills": ["python"]}])
    return serving


def export_registry_champion(settings: Settings) -> tuple[str, str]:
    """Export the registry's champion to the BentoML store: (tag, model version)."""
    model, info = load_from_registry(settings)
    with project_lock("bento-store"):
        return export_to_bento_store(model, info), str(info["model_version"])


def export_in_child_process(timeout: float) -> tuple[str, str]:
    """:func:`export_registry_champion` in a child process: (tag, model version).

    A worker that reloads never imports MLflow itself (hundreds of MB it would
    keep for good); the child exits when the export is written.
    """
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("SALARYMODEL_MODEL_SOURCE",
                                                            "SALARYMODEL_BENTO_MODEL")}  # fmt: skip
    try:
        done = subprocess.run(
            [sys.executable, "-m", "salarymodel.serving.export"],
            env=env, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as error:
        raise ModelSourceError(f"exporting the champion took over {timeout:g} s") from error
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["no message"]
        raise ModelSourceError(lines[-1].removeprefix("error: "))
    answer = json.loads(done.stdout)
    return str(answer["tag"]), str(answer["model_version"])
