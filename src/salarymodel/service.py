"""The BentoML service: estimates, ranges and explanations over HTTP, and the web page.

Endpoints (all on 127.0.0.1 by default, ``serving.host``/``serving.port``):

- ``POST /predict``        one job (flat JSON) -> estimate, calibrated range, support, warnings
- ``POST /predict_batch``  ``{"jobs": [...]}`` (up to 10,000) -> one result per job, in order
- ``POST /explain``        one job -> the estimate and each concept's part in % and USD
- ``GET  /model``          version, data fingerprint, metrics, vocabulary, allowed values
- ``GET  /`` (and ``/ui``) the web page; ``/readyz``, ``/livez``, ``/healthz``; ``/docs.json``

Where the model comes from (``SALARYMODEL_MODEL_SOURCE``): ``registry`` is the
MLflow version with the champion alias; ``bentoml`` is the copy exported to
the BentoML model store (``salarymodel serve`` exports the champion there and
its workers load that copy; a built Bento names it); ``auto`` (default) takes
the registry when there is a tracking store and the BentoML store otherwise,
and a Bento serves the model it was built with. Missing or corrupt model files
(checked against the bundle's SHA-256 manifest) or an unreachable tracking
store stop the start with a message saying which; nothing falls back to an
older model. Either way the model is a
folder of plain files (LightGBM text + JSON): nothing is unpickled, and no
path comes from a request.

Speed (measured in ``benchmarks/serving.py``): a request is encoded straight
to numeric codes (``FeatureBuilder.encode``, no pandas) and scored through
LightGBM's prepared single-row predictor; an explanation's TreeSHAP is split
over both cores; a big batch goes through the vectorised ``transform`` and one
call per booster.
"""

from __future__ import annotations

import asyncio
import ctypes
import fcntl
import functools
import ipaddress
import json
import logging
import math
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, NoReturn

from salarymodel.config import Settings, load_settings, load_sources, resolve_path

# BentoML phones home with usage statistics unless told not to; the service
# must not use the network at run time. Its home (model store, bentos)
# defaults to the user's home folder: keep it inside the project.
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
os.environ.setdefault("BENTOML_HOME", str(resolve_path("bentoml_home")))

import bentoml
import numpy as np
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic_core import PydanticCustomError

from salarymodel.derivations import normalise_skill
from salarymodel.features import resolve_country
from salarymodel.geography import country_name
from salarymodel.titles import OTHER_FAMILY
from salarymodel.validation import (
    COMPANY_SIZES,
    EMPLOYMENT_TYPES,
    EXPERIENCE_LEVELS,
    MAX_SKILLS,
    MAX_TITLE_LENGTH,
    REMOTE_RATIOS,
)

logger = logging.getLogger("salarymodel.service")

BENTO_MODEL_NAME = "salarymodel"
BUNDLE_DIR = "bundle"
INFO_FILE = "serving_info.json"
WEB_DIR = Path(__file__).resolve().parent / "web"
MAX_BATCH = 10_000
MAX_SKILL_LENGTH = 60
MAX_COUNTRY_LENGTH = 60
# Request bodies are read whole before parsing; these caps keep a hostile or
# mistaken client from exhausting memory (413 past them).
MAX_BODY_BYTES = {"/predict": 64 * 1024, "/explain": 64 * 1024, "/predict_batch": 32 * 1024**2}
# A keep-alive connection is closed after a random number of requests in this range.
KEEPALIVE_REQUESTS = (50, 150)
# Below this many rows a batch is scored row by row (pandas costs more than it saves).
VECTORISE_FROM = 64
# Prometheus metrics cost ~10% of a request's CPU: off unless asked for.
METRICS_ENABLED = os.environ.get("SALARYMODEL_METRICS", "0") == "1"

SETTINGS = load_settings()
VIEWS = tuple(load_sources().training_sources)
EXPERIENCE_NAMES = {"EN": "entry", "MI": "mid", "SE": "senior", "EX": "executive"}
COMPANY_SIZE_NAMES = {"S": "small (< 50)", "M": "medium (50-250)", "L": "large (> 250)"}
EMPLOYMENT_NAMES = {"FT": "full time", "PT": "part time", "CT": "contract", "FL": "freelance"}
ALLOWED: dict[str, list[object]] = {
    "experience_level": list(EXPERIENCE_LEVELS),
    "company_size": list(COMPANY_SIZES),
    "employment_type": list(EMPLOYMENT_TYPES),
    "remote_ratio": list(REMOTE_RATIOS),
    "view": list(VIEWS),
}


def _default_year() -> int:
    # Trees split on thresholds, so a year past the training data acts as its latest year.
    limits = SETTINGS.validation
    return max(limits.year_min, min(date.today().year, limits.year_max))


# ----- request and response models -------------------------------------------------------
# A character pydantic's strip_whitespace keeps (it strips Unicode White_Space,
# as Rust's `trim` does). A stripped, non-empty string always has one, so this
# refuses nothing new: it tells the OpenAPI schema that "   " is not a title.
NOT_BLANK = r"[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"

Title = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=MAX_TITLE_LENGTH, pattern=NOT_BLANK
    ),
]
Country = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=MAX_COUNTRY_LENGTH, pattern=NOT_BLANK
    ),
]
Skill = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=MAX_SKILL_LENGTH, pattern=NOT_BLANK
    ),
]


class JobRequest(BaseModel):
    """One job as a person describes it. Only ``job_title`` is required.

    Defaults: a senior (``SE``) full-time (``FT``) on-site (``remote_ratio`` 0)
    job at a medium company (``M``) in the United States, employer in the same
    country, no skills stated, this year, in the configured pay view
    (``serving.default_source``: the survey's reported pay).
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    job_title: Title = Field(description="Job title as written, e.g. 'Senior Data Scientist'.")
    experience_level: Literal["EN", "MI", "SE", "EX"] = Field(
        "SE", description="EN entry, MI mid, SE senior, EX executive."
    )
    company_size: Literal["S", "M", "L"] = Field(
        "M", description="S under 50 people, M 50-250, L over 250."
    )
    country: Country = Field(
        "US", description="Where the employee works: ISO alpha-2 code or a common name."
    )
    company_country: Country | None = Field(
        None, description="Employer's country (code or name); defaults to `country`."
    )
    remote_ratio: Literal[0, 50, 100] = Field(
        0, description="0 on site, 50 hybrid, 100 fully remote."
    )
    employment_type: Literal["FT", "PT", "CT", "FL"] = Field(
        "FT", description="FT full time, PT part time, CT contract, FL freelance."
    )
    skills: list[Skill] | None = Field(
        None,
        max_length=MAX_SKILLS,
        description="Skills asked for, e.g. ['python', 'sql']; omitted means not stated.",
    )
    year: int = Field(
        default_factory=_default_year,
        strict=True,  # a JSON integer, as the schema says (lax also took "2024" and 2024.0)
        ge=SETTINGS.validation.year_min,
        le=SETTINGS.validation.year_max,
        description="Year of the salary; defaults to this year.",
    )
    view: Literal[VIEWS] | None = Field(  # type: ignore[valid-type]
        None,
        description="Which pay the estimate describes: 'aijobs' reported pay (survey), "
        "'postings' advertised pay; defaults to serving.default_source.",
    )

    @field_validator("experience_level", "company_size", "employment_type", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        # Codes are case-insensitive for people typing them ("se" is SE).
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("view", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("remote_ratio", mode="before")
    @classmethod
    def _integer(cls, value: object) -> object:
        # The schema says integer; lax pydantic took JSON's `false` for 0 and 50.0 for 50.
        if isinstance(value, bool | float):
            raise PydanticCustomError("int_type", "Input should be a valid integer")
        return value


class BatchRequest(BaseModel):
    """Many jobs scored in one call (the order of results follows the order of jobs)."""

    jobs: list[JobRequest] = Field(max_length=MAX_BATCH)


class EstimateResponse(BaseModel):
    """A yearly salary estimate in USD with its calibrated range and caveats."""

    # BentoML's serializer looks this up on every response; without it
    # pydantic raises and catches an AttributeError each time (~10% of CPU).
    multipart_fields: ClassVar[list[str]] = []

    estimate_usd: float = Field(description="Typical (median-like) yearly salary, USD.")
    low_usd: float | None = Field(description="Low end of the calibrated range.")
    high_usd: float | None = Field(description="High end of the calibrated range.")
    coverage: float | None = Field(description="Share of salaries the range is meant to cover.")
    support: int | None = Field(
        description="Training records sharing role family, experience level and country."
    )
    thin_support: bool | None = Field(description="True when support is below the threshold.")
    view: str | None = Field(description="Which pay the estimate describes.")
    warnings: list[str] = Field(description="Unrecognised inputs, thin support.")
    model_version: str = Field(description="Registered model version that answered.")


class ContributionResponse(BaseModel):
    """One concept's part in an estimate."""

    concept: str
    value: str
    percent: float = Field(description="Multiplicative premium over the base, in %.")
    dollars: float = Field(description="USD share; all shares add up to estimate - base.")


class ExplanationResponse(EstimateResponse):
    """An estimate and the contributions leading from the base value to it."""

    base_usd: float = Field(description="The model's average estimate (SHAP base value).")
    contributions: list[ContributionResponse]


# ----- the loaded model ----------------------------------------------------------------
@dataclass
class ServingModel:
    """The champion, its explainer, and what the service says about it."""

    model: Any  # salarymodel.model.SalaryModel (imported lazily: keeps import light)
    explainer: Any  # salarymodel.explanations.Explainer
    version: str
    source: str
    info: dict[str, Any]
    tag: str | None = None  # the BentoML store copy it was loaded from or exported to
    card: dict[str, Any] | None = None  # what GET /model answers (set once built)

    @property
    def default_view(self) -> str | None:
        view = self.model.metadata.get("default_source") or SETTINGS.serving.default_source
        return str(view) if view else None


@contextmanager
def _project_lock(name: str):
    # Workers start together: the first download of a registry version and
    # the creation of the MLflow experiment must not race.
    folder = resolve_path("models")
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f".{name}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _registry_has_store(settings: Settings) -> bool:
    # Never create an empty MLflow database just by looking for a champion.
    from salarymodel.registry import tracking_uri

    uri = tracking_uri(settings)
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).exists()
    return True


def _json_safe(value: Any) -> Any:
    # Evaluation JSON carries NaN where a metric is undefined; JSON has no NaN.
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def metrics_summary(evaluation: Mapping[str, Any]) -> dict[str, Any]:
    """The champion's cross-validated accuracy and range coverage, per source."""
    table = [r for r in evaluation.get("table", []) if r.get("model") == "fused_lightgbm"]
    ranges = [
        r
        for r in evaluation.get("ranges", [])
        if r.get("method") == "calibrated" and r.get("split") == "cv"
    ]
    return _json_safe(
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


def load_from_registry(settings: Settings) -> tuple[Any, dict[str, Any]]:
    """The champion from the MLflow registry and what is known about it."""
    from salarymodel.registry import connect, load_champion, run_evaluation

    with _project_lock("registry"):
        model, version = load_champion(settings)
        try:
            evaluation = run_evaluation(connect(settings), version)
        except Exception as error:  # the metrics are informative, never a reason not to serve
            logger.warning("no evaluation for v%s: %s", version.version, error)
            evaluation = {}
    info = {
        "model_version": str(version.version),
        "run_id": version.run_id,
        "metrics": metrics_summary(evaluation),
    }
    return model, info


def load_from_bento_store(tag: str) -> tuple[Any, dict[str, Any]]:
    """An exported model from the BentoML model store (plain files only, checksums verified)."""
    from salarymodel.model import BundleError, SalaryModel
    from salarymodel.registry import RegistryError

    try:
        folder = Path(bentoml.models.get(tag).path)
    except bentoml.exceptions.NotFound as error:
        raise RegistryError(
            f"no model {tag} in the BentoML store; run `salarymodel train` first"
        ) from error
    try:
        model = SalaryModel.load(folder / BUNDLE_DIR)
        info = json.loads((folder / INFO_FILE).read_text())
    except (BundleError, OSError, ValueError) as error:
        raise RegistryError(f"exported model {tag} cannot be served: {error}") from error
    return model, info


def export_to_bento_store(model: Any, info: Mapping[str, Any]) -> str:
    """Copy a model into the BentoML model store as ``salarymodel:v<version>`` (idempotent)."""
    from salarymodel.model import BundleError, verify_manifest

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
    with bentoml.models.create(tag, labels=labels, metadata=_json_safe(dict(info))) as stored:
        model.save(Path(stored.path) / BUNDLE_DIR)
        (Path(stored.path) / INFO_FILE).write_text(json.dumps(_json_safe(dict(info)), indent=1))
    return tag


_PREDICT_NORMAL, _PREDICT_CONTRIB, _FLOAT64 = 0, 3, 1  # LightGBM C API constants


class FastRow:
    """LightGBM's prepared single-row predictor (``...SingleRowFast`` in its C API).

    ``Booster.predict`` rebuilds its predictor for every call (~0.1 ms, as
    much as walking 800 trees for one row); this one is set up once. ``kind``
    0 predicts, 3 gives SHAP values (TreeSHAP, the same LightGBM code shap
    calls) for trees ``start`` .. ``start + count``. A lock guards the
    output buffer; the C call itself runs without the GIL.
    """

    def __init__(self, booster: Any, kind: int = _PREDICT_NORMAL, start: int = 0,
                 count: int = -1) -> None:  # fmt: skip
        from lightgbm.basic import _LIB, _safe_call

        self._lib, self._check = _LIB, _safe_call
        self._booster = booster  # the C predictor lives inside it: keep it alive
        self._lock = threading.Lock()
        width = booster.num_feature() + 1 if kind == _PREDICT_CONTRIB else 1
        self._out = np.empty(width)
        self._out_len = ctypes.c_int64()
        self._config = ctypes.c_void_p()
        if count == -1 and booster.best_iteration > 0:
            count = booster.best_iteration
        self._check(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(kind),
                ctypes.c_int(start),
                ctypes.c_int(count),
                ctypes.c_int(_FLOAT64),
                ctypes.c_int32(booster.num_feature()),
                ctypes.c_char_p(b"num_threads=1"),
                ctypes.byref(self._config),
            )
        )

    def __call__(self, row: np.ndarray) -> np.ndarray:
        """The prediction (or SHAP values + bias) for one feature row."""
        row = np.ascontiguousarray(row, dtype=np.float64)
        with self._lock:
            self._check(
                self._lib.LGBM_BoosterPredictForMatSingleRowFast(
                    self._config,
                    row.ctypes.data_as(ctypes.c_void_p),
                    ctypes.byref(self._out_len),
                    self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
                )
            )
            return self._out.copy()

    def __del__(self) -> None:
        config = getattr(self, "_config", None)
        if config is not None and config.value:
            self._lib.LGBM_FastConfigFree(config)


class RowPredictor:
    """A booster whose one-row predictions take the prepared fast path."""

    def __init__(self, booster: Any) -> None:
        self.booster = booster
        self._fast = FastRow(booster)

    def predict(self, matrix: np.ndarray, **kwargs: Any) -> np.ndarray:
        """As ``Booster.predict``; one plain row takes the fast path."""
        if matrix.ndim != 2 or matrix.shape[0] != 1 or set(kwargs) - {"num_threads"}:
            return self.booster.predict(matrix, **kwargs)
        return self._fast(matrix[0])

    def __getattr__(self, name: str) -> Any:
        return getattr(self.booster, name)


class SplitTreeShap:
    """Exact SHAP values of one row with the trees split across two cores.

    TreeSHAP on the point booster is most of ``/explain`` (~5 ms a row) and
    is additive over trees: each half of the trees runs in its own thread
    (LightGBM releases the GIL) and the halves are summed. Same numbers as
    the explainer's own ``shap_values``, about half the latency on an idle
    machine; more rows go to the original method.
    """

    _pool = None

    def __init__(self, booster: Any, fallback: Any) -> None:
        from concurrent.futures import ThreadPoolExecutor

        import lightgbm as lgb

        trees = booster.num_trees()
        half = trees // 2
        # LightGBM keeps one prepared predictor per booster and kind: each
        # half needs a booster of its own (copies of the same text model).
        text = booster.model_to_string()
        halves = lgb.Booster(model_str=text), lgb.Booster(model_str=text)
        self._first = FastRow(halves[0], _PREDICT_CONTRIB, 0, half)
        self._second = FastRow(halves[1], _PREDICT_CONTRIB, half, trees - half)
        self._fallback = fallback
        if SplitTreeShap._pool is None:
            SplitTreeShap._pool = ThreadPoolExecutor(1, thread_name_prefix="treeshap")

    def __call__(self, matrix: np.ndarray) -> np.ndarray:
        """Column SHAP values (rows x features, no bias column), as the explainer's."""
        if matrix.ndim != 2 or matrix.shape[0] != 1:
            return self._fallback(matrix)
        other = self._pool.submit(self._second, matrix[0])
        values = self._first(matrix[0]) + other.result()
        return values[:-1].reshape(1, -1)


def speed_up(model: Any, explainer: Any) -> None:
    """Fast one-row paths for a loaded model's boosters and its explainer's SHAP values."""
    try:
        explainer.shap_values = SplitTreeShap(model.booster, explainer.shap_values)
        model.booster = RowPredictor(model.booster)
        if model.ranges is not None:
            model.ranges.low = RowPredictor(model.ranges.low)
            model.ranges.high = RowPredictor(model.ranges.high)
    except Exception as error:  # an older LightGBM without the C entry points: still correct
        logger.warning("fast one-row prediction unavailable: %s", error)


def load_serving_model(
    settings: Settings | None = None, packaged: str | None = None
) -> ServingModel:
    """Load the model to serve, from the configured place, and build its explainer.

    ``packaged`` is the model tag a built Bento carries: served from a Bento,
    the service answers with that model unless told otherwise.
    """

    settings = settings or load_settings()
    default = "bentoml" if packaged else "auto"
    where = os.environ.get("SALARYMODEL_MODEL_SOURCE", default).lower()
    tag = os.environ.get("SALARYMODEL_BENTO_MODEL", packaged or f"{BENTO_MODEL_NAME}:latest")
    if where not in ("auto", "registry", "bentoml"):
        raise ValueError(f"SALARYMODEL_MODEL_SOURCE must be auto, registry or bentoml: {where!r}")
    # A registry that exists but cannot give a sound champion is an error, not
    # a reason to serve whatever was exported last (see `export_champion`).
    if where == "registry" or (where == "auto" and _registry_has_store(settings)):
        model, info = load_from_registry(settings)
        source = "mlflow-registry"
    else:
        model, info = load_from_bento_store(tag)
        source = f"bentoml-store:{tag}"
    return ready_to_serve(model, info, source, tag if source.startswith("bentoml") else None)


def ready_to_serve(
    model: Any, info: Mapping[str, Any], source: str, tag: str | None = None
) -> ServingModel:
    """A loaded model with its explainer, fast paths and model card: ready to swap in."""
    from salarymodel.explanations import Explainer

    started = time.perf_counter()
    # SHAP reads the real booster: build the explainer before the fast path wraps it.
    explainer = Explainer.from_model(model)
    logger.info("explainer built in %.2f s", time.perf_counter() - started)
    speed_up(model, explainer)
    serving = ServingModel(model, explainer, str(info["model_version"]), source, dict(info), tag)
    serving.card = model_card(serving)
    return serving


def export_champion(settings: Settings | None = None) -> str:
    """Export the registry's champion to the BentoML model store; the tag to serve.

    Without a registry (no tracking store, as in a built Bento) or with
    ``SALARYMODEL_MODEL_SOURCE=bentoml``, the exported model
    (``SALARYMODEL_BENTO_MODEL``, default the newest) is served, after its
    checksums are verified. A registry that exists but cannot give a sound
    champion is an error: silently serving an older export could undo a
    rollback or a promotion.
    """
    from salarymodel.registry import RegistryError

    settings = settings or load_settings()
    where = os.environ.get("SALARYMODEL_MODEL_SOURCE", "auto").lower()
    if where != "bentoml" and _registry_has_store(settings):
        model, info = load_from_registry(settings)
        with _project_lock("bento-store"):
            return export_to_bento_store(model, info)
    if where == "registry":
        raise RegistryError("SALARYMODEL_MODEL_SOURCE=registry but there is no tracking store")
    tag = os.environ.get("SALARYMODEL_BENTO_MODEL", f"{BENTO_MODEL_NAME}:latest")
    load_from_bento_store(tag)  # refuses missing or corrupt files before any worker starts
    return str(bentoml.models.get(tag).tag)


# ----- reloading a new champion without failing requests --------------------------------
# `POST /admin/reload` (loopback callers only) makes the worker that receives it
# load the registry's champion, export it to the BentoML store, and swap it in
# as one reference: a request in flight keeps the model it started with. It
# then writes a marker file naming the exported model; every other worker of
# the project polls the marker and swaps the same model in (about a second).
SESSION_ENV = "SALARYMODEL_SERVE_SESSION"
RELOAD_MARKER = "serving-reload.json"
RELOAD_POLL_SECONDS = 1.0
# A relayed request's peer address is the proxy's, not the caller's.
_PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


def is_loopback(host: str | None, headers: Mapping[str, str] | None = None) -> bool:
    """True for a caller on this machine (127.0.0.0/8, ::1); never for a relayed request."""
    if headers is not None and any(name in headers for name in _PROXY_HEADERS):
        return False
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def _marker_path() -> Path:
    return resolve_path("models") / RELOAD_MARKER


def announce(serving: ServingModel) -> None:
    """Tell the other workers which exported model to serve (an atomic file replace)."""
    path = _marker_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    marker = {
        "tag": serving.tag,
        "model_version": serving.version,
        "session": os.environ.get(SESSION_ENV),
        "pid": os.getpid(),
        "at": time.time(),
    }
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(marker))
    os.replace(temporary, path)


def read_marker() -> tuple[int, dict[str, Any]] | None:
    """(modification time in ns, content) of the reload marker, or None."""
    path = _marker_path()
    try:
        return path.stat().st_mtime_ns, json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def load_current_champion(settings: Settings) -> ServingModel:
    """The registry's champion, exported to the BentoML store, ready to swap in."""
    model, info = load_from_registry(settings)
    with _project_lock("bento-store"):
        tag = export_to_bento_store(model, info)
    return ready_to_serve(model, info, "mlflow-registry", tag)


def load_announced(marker: Mapping[str, Any]) -> ServingModel:
    """The model a reload marker names, from the BentoML store."""
    tag = str(marker["tag"])
    model, info = load_from_bento_store(tag)
    return ready_to_serve(model, info, f"bentoml-store:{tag}", tag)


def serve(host: str, port: int, workers: int = 2, tag: str | None = None) -> NoReturn:
    """Start the HTTP server on ``host:port``; does not return.

    The champion is loaded here once (downloaded from the registry if need
    be, checksums verified) and exported to the BentoML model store, unless
    ``tag`` names an export already checked by :func:`export_champion`; the
    workers then all load that exported version, so they cannot disagree if
    a promotion happens while they start.
    """
    import uuid

    tag = tag or export_champion()
    env = {
        **os.environ,
        "SALARYMODEL_MODEL_SOURCE": "bentoml",
        "SALARYMODEL_BENTO_MODEL": tag,
        "SALARYMODEL_WORKERS": str(workers),
        SESSION_ENV: uuid.uuid4().hex,
    }
    command = [sys.executable, "-m", "bentoml", "serve", "salarymodel.service:SalaryService",
               "--host", host, "--port", str(port)]  # fmt: skip
    logger.info("serving %s on http://%s:%d", tag, host, port)
    # exec: signals (Ctrl-C, a test's terminate) reach BentoML's server directly.
    sys.stdout.flush()
    os.execve(sys.executable, command, env)


# ----- scoring -----------------------------------------------------------------------
def canonical_job(request: JobRequest, default_view: str | None) -> dict[str, Any]:
    """A validated request as the canonical job dict the model reads."""
    return {
        "job_title": request.job_title,
        "experience_level": request.experience_level,
        "company_size": request.company_size,
        "country": request.country,
        "company_country": request.company_country or request.country,
        "remote_ratio": request.remote_ratio,
        "employment_type": request.employment_type,
        "skills": request.skills,
        "year": request.year,
        "source": request.view or default_view,
    }


def _resolved(job: Mapping[str, Any]) -> dict[str, Any]:
    # The model compares employee and employer country as ISO2 codes; a name
    # for one and a code for the other must not look like "employer abroad".
    country, _ = resolve_country(job.get("country"))
    company, _ = resolve_country(job.get("company_country"))
    return {**job, "company_country": company if company else job.get("company_country"),
            "country": country or job.get("country")}  # fmt: skip


def _dollars(value: float | None) -> float | None:
    return None if value is None else round(float(value))


def estimate_one(serving: ServingModel, job: Mapping[str, Any]) -> EstimateResponse:
    """Estimate, range and warnings for one canonical job (no pandas on this path)."""
    result = serving.model.estimate_job(_resolved(job))
    return EstimateResponse(
        estimate_usd=round(result.estimate_usd),
        low_usd=_dollars(result.low_usd),
        high_usd=_dollars(result.high_usd),
        coverage=result.coverage,
        support=result.support,
        thin_support=result.thin_support,
        view=result.view,
        warnings=result.warnings,
        model_version=serving.version,
    )


def explain_one(serving: ServingModel, job: Mapping[str, Any]) -> ExplanationResponse:
    """The estimate for one job with each concept's contribution (SHAP, grouped by concept)."""
    resolved = _resolved(job)
    estimate = estimate_one(serving, resolved)
    explanation = serving.explainer.explain_job(resolved)
    contributions = [
        ContributionResponse.model_construct(
            concept=c.concept, value=c.value, percent=round(c.percent, 2), dollars=round(c.dollars)
        )
        for c in explanation.contributions
    ]
    return ExplanationResponse.model_construct(
        **dict(estimate),
        base_usd=round(explanation.base_usd),
        contributions=contributions,
    )


def _batch_frame(jobs: Sequence[Mapping[str, Any]], builder: Any) -> tuple[pd.DataFrame, list]:
    """Canonical records for ``builder.transform`` and per-row input warnings.

    Countries and titles are resolved once per distinct value; the warnings
    say the same as ``FeatureBuilder.encode`` does for one job (a test checks).
    """
    aliases = builder.features.skill_aliases
    countries: dict[object, tuple[str | None, list[str]]] = {}
    titles: dict[str, list[str]] = {}
    vocabulary = set(builder.skills)
    normalised: dict[str, str] = {}
    rows, warnings = [], []
    for job in jobs:
        notes: list[str] = []
        title = job["job_title"]
        if title not in titles:
            family = builder.role_family_of(title)
            titles[title] = (
                [f"job title {title!r} not recognised; role family 'other'"]
                if family == OTHER_FAMILY
                else []
            )
        notes += titles[title]
        country = job.get("country")
        if country not in countries:
            iso2, note = resolve_country(country)
            found = [note] if note else []
            if iso2 is not None:
                _, _, note = builder.country_code(iso2)
                found += [note] if note else []
            countries[country] = (iso2, found)
        iso2, found = countries[country]
        notes += found
        company = job.get("company_country")
        if company not in countries:
            countries[company] = (resolve_country(company)[0], [])
        skills = job.get("skills")
        if skills is not None:
            for skill in skills:
                if skill not in normalised:
                    normalised[skill] = normalise_skill(skill, aliases)
            skills = list(dict.fromkeys(normalised[s] for s in skills))
            unknown = [s for s in skills if s not in vocabulary]
            if unknown:
                notes.append(f"skills not in the model's vocabulary, ignored: {unknown}")
        rows.append({**job, "country": iso2, "company_country": countries[company][0],
                     "skills": skills, "job_category": None})  # fmt: skip
        warnings.append(notes)
    frame = pd.DataFrame.from_records(rows)
    for column in ("remote_ratio", "year"):
        frame[column] = frame[column].astype(float)
    return frame, warnings


def estimate_many(
    serving: ServingModel, jobs: Sequence[Mapping[str, Any]]
) -> list[EstimateResponse]:
    """Estimates for many jobs: one vectorised encode and one call per booster."""
    if len(jobs) < VECTORISE_FROM:
        return [estimate_one(serving, job) for job in jobs]
    model = serving.model
    frame, warnings = _batch_frame(jobs, model.builder)
    scored = model.estimate_records(frame)
    estimate = scored["estimate_usd"].to_numpy()
    has_ranges = model.ranges is not None
    if has_ranges:
        low, high = scored["low_usd"].to_numpy(), scored["high_usd"].to_numpy()
        support = scored["support"].to_numpy()
        thin = support < model.ranges.thin_below
        for i in np.flatnonzero(thin):
            warnings[i].append(
                f"thin support: {int(support[i])} training records share this role family, "
                "experience level and country; the range is calibrated on such jobs"
            )
    coverage = model.ranges.coverage if has_ranges else None
    views = frame["source"].tolist()
    # The values are built here with their exact types: skipping validation
    # saves ~10 µs a row (0.1 s of a 10,000-row batch).
    return [
        EstimateResponse.model_construct(
            estimate_usd=round(float(estimate[i])),
            low_usd=round(float(low[i])) if has_ranges else None,
            high_usd=round(float(high[i])) if has_ranges else None,
            coverage=coverage,
            support=int(support[i]) if has_ranges else None,
            thin_support=bool(thin[i]) if has_ranges else None,
            view=views[i],
            warnings=warnings[i],
            model_version=serving.version,
        )
        for i in range(len(jobs))
    ]


# ----- model information -----------------------------------------------------------------
def model_card(serving: ServingModel) -> dict[str, Any]:
    """What ``GET /model`` answers: version, provenance, metrics and the vocabulary."""
    model = serving.model
    builder = model.builder
    countries = [c for c in builder.countries if c != "other"]
    return _json_safe(
        {
            "model_version": serving.version,
            "loaded_from": serving.source,
            "run_id": serving.info.get("run_id") or model.metadata.get("run_id"),
            "trained_at": model.metadata.get("trained_at"),
            "fingerprint": model.metadata.get("fingerprint"),
            "metrics": serving.info.get("metrics", {}),
            "coverage": model.ranges.coverage if model.ranges is not None else None,
            "default_view": serving.default_view,
            "vocabulary": {
                "role_families": [f for f in builder.role_families],
                "titles": [t for t in builder.titles if t != "other"],
                "countries": [{"code": c, "name": country_name(c)} for c in countries],
                "skills": list(builder.skills),
                "views": list(builder.sources),
            },
            "allowed": {
                "experience_level": EXPERIENCE_NAMES,
                "company_size": COMPANY_SIZE_NAMES,
                "employment_type": EMPLOYMENT_NAMES,
                "remote_ratio": list(REMOTE_RATIOS),
                "view": list(VIEWS),
            },
            "defaults": _request_defaults(serving),
            "limits": {
                "job_title_characters": MAX_TITLE_LENGTH,
                "skills": MAX_SKILLS,
                "skill_characters": MAX_SKILL_LENGTH,
                "batch_jobs": MAX_BATCH,
                "body_bytes": MAX_BODY_BYTES,
            },
        }
    )


def _request_defaults(serving: ServingModel) -> dict[str, Any]:
    defaults = {
        name: field.get_default(call_default_factory=True)
        for name, field in JobRequest.model_fields.items()
        if name != "job_title"
    }
    defaults["company_country"] = "same as country"
    defaults["view"] = serving.default_view
    return defaults


# ----- HTTP guard: body size and type limits, 422 validation errors -----------------------------
def _field_path(location: Sequence[object]) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def describe_errors(errors: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A 422 body from pydantic errors: each names its field and, if fixed, its allowed values."""
    detail = []
    for error in errors:
        location = list(error.get("loc", ()))
        name = next((p for p in reversed(location) if isinstance(p, str)), "")
        item: dict[str, Any] = {"field": _field_path(location), "message": error.get("msg", "")}
        if name in ALLOWED and error.get("type") != "extra_forbidden":
            item["allowed"] = ALLOWED[name]
        detail.append(item)
    summary = "; ".join(
        f"{d['field']}: {d['message']}"
        + (f" (allowed: {', '.join(map(str, d['allowed']))})" if "allowed" in d else "")
        for d in detail
    )
    return {"error": f"invalid request: {summary}", "detail": detail}


class RequestGuard:
    """ASGI middleware in front of the API routes.

    - Reads the body itself and answers 413 past ``MAX_BODY_BYTES`` (also for
      chunked bodies without a Content-Length), so an oversized request is
      refused before anything parses it.
    - Answers 415 to a body that is not JSON. BentoML would parse form and
      multipart bodies too, and answered 500 to ``multipart/form-data``
      without a boundary (found by Schemathesis).
    - BentoML answers a pydantic validation error with 400 and a generic
      body; this turns it into 422 naming each field and its allowed values.
    - Answers ``GET /docs.json`` with :func:`truthful_openapi`'s document.
    - Closes a keep-alive connection after 50-150 requests (nginx's
      ``keepalive_requests``). The workers share one listening socket and the
      first to wake accepts every pending connection: 16 clients connecting
      at once were measured to land on one worker (half the throughput).
      Reconnecting clients go to whichever worker is less busy.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self._served: dict[object, list[int]] = {}  # client address -> [requests, limit]
        self._random = random.Random()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        http = scope["type"] == "http"
        if http and scope.get("path") == "/docs.json" and scope.get("method") in ("GET", "HEAD"):
            await _send_bytes(send, 200, _openapi_document(), scope["method"] == "HEAD")
            return
        limit = MAX_BODY_BYTES.get(scope.get("path", "")) if http else None
        if limit is None or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        close = self._last_on_connection(scope.get("client"))
        if _media_type(scope) not in ("", "application/json"):
            await _send_json(send, 415, {"error": "request body must be application/json"}, close)
            return
        body = await _read_body(receive, limit)
        if body is None:
            await _send_json(send, 413, {"error": f"request body over {limit:,} bytes"}, close)
            return
        await self.app(scope, _replay(body), _rewrite_responses(send, close))

    def _last_on_connection(self, client: object) -> bool:
        if client is None:
            return False
        entry = self._served.get(client)
        if entry is None:
            if len(self._served) > 4096:  # addresses of connections closed by clients
                self._served.clear()
            entry = self._served[client] = [0, self._random.randint(*KEEPALIVE_REQUESTS)]
        entry[0] += 1
        if entry[0] < entry[1]:
            return False
        del self._served[client]
        return True


def _media_type(scope: Mapping[str, Any]) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return value.decode("latin-1").split(";")[0].strip().lower()
    return ""  # BentoML reads a body without a Content-Type as JSON


async def _read_body(receive: Any, limit: int) -> bytes | None:
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def _replay(body: bytes) -> Any:
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _rewrite_responses(send: Any, close: bool) -> Any:
    held: dict | None = None
    buffer: list[bytes] = []

    async def wrapped(message: dict) -> None:
        nonlocal held
        if message["type"] == "http.response.start":
            if message["status"] == 400:
                held = message  # BentoML's validation error: rewritten once the body is in
                return
            if close:
                message = {**message, "headers": [*message.get("headers", []), _CLOSE]}
        if held is None:
            await send(message)
            return
        buffer.append(message.get("body", b""))
        if message.get("more_body"):
            return
        try:
            errors = json.loads(b"".join(buffer))["detail"]
        except (ValueError, KeyError, TypeError):
            errors = None
        if not isinstance(errors, list):
            await send(held)
            await send({"type": "http.response.body", "body": b"".join(buffer)})
            return
        await _send_json(send, 422, describe_errors(errors), close)

    return wrapped


_CLOSE = (b"connection", b"close")


async def _send_json(send: Any, status: int, payload: Mapping[str, Any], close: bool) -> None:
    await _send_bytes(send, status, json.dumps(payload).encode(), close=close)


async def _send_bytes(
    send: Any, status: int, body: bytes, head_only: bool = False, close: bool = False
) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, _CLOSE] if close else headers})  # fmt: skip
    await send({"type": "http.response.body", "body": b"" if head_only else body})


class _ClientErrors(logging.Filter):
    """Drop BentoML's ERROR traceback for a request that failed validation.

    BentoML logs every invalid request body with a full traceback; that is
    the client's mistake (answered 422), and formatting it costs the server.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        from pydantic import ValidationError

        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, ValidationError)


# ----- the OpenAPI document at /docs.json ---------------------------------------------------
_SCHEMAS = "#/components/schemas/"
_STRING = {"type": "string"}
# The bodies this service sends itself (`_send_json`, `describe_errors`, the reload route).
ERROR_SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": _STRING},
        "additionalProperties": False,
    },
    "FieldError": {
        "type": "object",
        "required": ["field", "message"],
        "properties": {
            "field": _STRING,
            "message": _STRING,
            "allowed": {"type": "array", "items": {"anyOf": [_STRING, {"type": "integer"}]}},
        },
        "additionalProperties": False,
    },
    "ValidationErrors": {
        "type": "object",
        "required": ["error", "detail"],
        "properties": {
            "error": _STRING,
            "detail": {"type": "array", "items": {"$ref": f"{_SCHEMAS}FieldError"}},
        },
        "additionalProperties": False,
    },
    "ReloadRefused": {
        "type": "object",
        "required": ["error", "model_version"],
        "properties": {"error": _STRING, "model_version": _STRING},
        "additionalProperties": False,
    },
    "Reloaded": {
        "type": "object",
        "required": ["model_version", "previous_version", "loaded_from", "tag", "other_workers"],
        "properties": dict.fromkeys(
            ("model_version", "previous_version", "loaded_from", "tag", "other_workers"), _STRING
        ),
        "additionalProperties": False,
    },
}


def _answer(description: str, schema: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"{_SCHEMAS}{schema}"}}},
    }


def _as_component(
    schema: dict[str, Any], api: str, components: Mapping[str, Any]
) -> dict[str, Any]:
    # BentoML inlines its flattened copy of a component (named as in
    # `IODescriptor.openapi_components`); the component itself is pydantic's.
    name = schema.get("title")
    name = f"{api}__{name}" if name in ("Input", "Output") else name
    return {"$ref": f"{_SCHEMAS}{name}"} if name in components else schema


def truthful_openapi(spec: Mapping[str, Any], *, metrics: bool) -> dict[str, Any]:
    """BentoML's generated OpenAPI document (as JSON), corrected to what this service answers.

    BentoML 1.4 cannot be told any of this (``Service.openapi_spec`` is a
    property with no hook), and gets these wrong:

    - it lists ``GET /metrics``, which answers 404 unless ``metrics`` is on;
    - an API route's request body is optional, yet without one the answer is 422;
    - its inline body and answer schemas keep only the first branch of each
      ``anyOf``, so nullable fields (``low_usd``, ``company_country``, ...)
      look non-null: they are replaced by references to pydantic's complete
      components, which BentoML publishes too;
    - every API route lists 400 and 404. ``RequestGuard`` turns the 400 of a
      validation error into 422 (``describe_errors``), and answers 413 to a
      body over ``MAX_BODY_BYTES`` and 415 to one that is not JSON; a fixed
      route never answers 404;
    - ``POST /admin/reload`` lists only 200, with no schema; it also answers
      403 (not loopback) and 409 (nothing reloaded).

    Returns a corrected copy; ``spec`` is left as it was.
    """
    spec = json.loads(json.dumps(spec))  # a deep copy, with the status codes as strings
    paths = spec["paths"]
    components = spec.setdefault("components", {}).setdefault("schemas", {})
    components.update(json.loads(json.dumps(ERROR_SCHEMAS)))
    if not metrics:
        paths.pop("/metrics", None)
    for path, item in paths.items():
        for operation in item.values():
            api = operation.get("x-bentoml-name")
            if api is None or "requestBody" not in operation:
                continue
            body = operation["requestBody"]
            body["required"] = True
            for media in body["content"].values():
                media["schema"] = _as_component(media["schema"], api, components)
            responses = operation["responses"]
            for media in responses["200"].get("content", {}).values():
                media["schema"] = _as_component(media["schema"], api, components)
            for status in ("400", "404"):
                responses.pop(status, None)
            if path in MAX_BODY_BYTES:
                responses["413"] = _answer("Request body over the size limit.", "Error")
                responses["415"] = _answer("Request body not `application/json`.", "Error")
            responses["422"] = _answer(
                "Invalid request: each field, its problem and, if fixed, its allowed values.",
                "ValidationErrors",
            )
    reload = paths.get("/admin/reload", {}).get("post")
    if reload is not None:
        reload["responses"] = {
            "200": _answer("The champion now served (this worker; the others follow).", "Reloaded"),
            "403": _answer("Not a loopback caller, or a relayed request.", "Error"),
            "409": _answer("Nothing reloaded; still serving `model_version`.", "ReloadRefused"),
        }
    return spec


@functools.cache
def _openapi_document() -> bytes:
    # Built once: BentoML regenerates the whole document on every request.
    generated = SalaryService.openapi_spec.asdict()
    return json.dumps(truthful_openapi(generated, metrics=METRICS_ENABLED)).encode()


# ----- the service -------------------------------------------------------------------
web = FastAPI(title="salarymodel web", docs_url=None, redoc_url=None, openapi_url=None)
_PAGE_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


@bentoml.asgi_app(web, path="/")
@bentoml.service(
    name="salarymodel",
    workers=int(os.environ.get("SALARYMODEL_WORKERS", "2")),
    # Measured on 2 cores: the access log, Prometheus metrics (~10% of a
    # request's CPU) and OpenTelemetry spans with no exporter configured each
    # cost throughput. Errors are still logged; SALARYMODEL_METRICS=1 turns
    # /metrics back on.
    logging={"access": {"enabled": False}},
    metrics={"enabled": METRICS_ENABLED},
    tracing={"excluded_urls": list(MAX_BODY_BYTES)},
    traffic={"timeout": 60},
    http={"host": SETTINGS.serving.host, "port": SETTINGS.serving.port},
)
class SalaryService:
    """Salary estimates for AI, ML and data jobs: the champion model over HTTP."""

    def __init__(self) -> None:
        logging.getLogger("bentoml._internal.server.http_app").addFilter(_ClientErrors())
        from salarymodel.registry import RegistryError

        started = time.perf_counter()
        try:
            self.serving = load_serving_model(load_settings(), packaged=_packaged_model())
        except RegistryError as error:
            _stop_server_on_failed_start(error)
            raise
        logger.info(
            "serving model v%s from %s (loaded in %.1f s)",
            self.serving.version,
            self.serving.source,
            time.perf_counter() - started,
        )
        self._swap_lock = threading.Lock()
        self._reload_lock = asyncio.Lock()
        self._marker_seen = self._join_session_reload()
        threading.Thread(target=self._follow_reloads, name="reload-watcher", daemon=True).start()

    def __is_ready__(self) -> bool:
        return self.serving is not None

    # ----- reloading ----------------------------------------------------------------------
    def _swap_in(self, serving: ServingModel) -> ServingModel:
        """Serve ``serving`` from now on; one reference assignment, so a request
        in flight finishes with the model it started with. Returns the previous one."""
        with self._swap_lock:
            previous, self.serving = self.serving, serving
        logger.info("now serving model v%s (was v%s)", serving.version, previous.version)
        return previous

    def _join_session_reload(self) -> int | None:
        # A worker (re)started after a reload in this `salarymodel serve`
        # session serves what the reload announced, not the start-up model.
        found = read_marker()
        if found is None:
            return None
        seen, marker = found
        session = os.environ.get(SESSION_ENV)
        same_session = session and marker.get("session") == session and marker.get("tag")
        if same_session and str(marker.get("model_version")) != self.serving.version:
            try:
                self._swap_in(load_announced(marker))
            except Exception as error:  # keep serving what loaded
                logger.warning("cannot load announced %s: %s", marker.get("tag"), error)
        return seen

    def _follow_reloads(self) -> None:
        while True:
            time.sleep(RELOAD_POLL_SECONDS)
            found = read_marker()
            if found is None or found[0] == self._marker_seen:
                continue
            self._marker_seen, marker = found
            if not marker.get("tag") or str(marker.get("model_version")) == self.serving.version:
                continue
            try:
                self._swap_in(load_announced(marker))
            except Exception as error:  # a broken export never stops the service
                logger.warning("cannot follow the reload to %s: %s", marker.get("tag"), error)

    @web.post("/admin/reload")
    async def reload(self, request: Request) -> JSONResponse:
        """Load the registry's champion and serve it from now on (loopback callers only)."""
        from salarymodel.registry import RegistryError

        host = request.client.host if request.client else None
        if not is_loopback(host, request.headers):
            return JSONResponse(
                {"error": "reload is accepted only from this machine (loopback, not relayed)"},
                status_code=403,
            )
        async with self._reload_lock:
            try:
                # Built off the event loop: requests keep being answered meanwhile.
                serving = await asyncio.to_thread(load_current_champion, load_settings())
            except (RegistryError, OSError, bentoml.exceptions.BentoMLException) as error:
                return JSONResponse(
                    {"error": f"nothing reloaded: {error}", "model_version": self.serving.version},
                    status_code=409,
                )
            previous = self._swap_in(serving)
            announce(serving)
            found = read_marker()
            self._marker_seen = found[0] if found else None
        return JSONResponse(
            {
                "model_version": serving.version,
                "previous_version": previous.version,
                "loaded_from": serving.source,
                "tag": serving.tag,
                "other_workers": f"follow within about {RELOAD_POLL_SECONDS:g} s plus load time",
            }
        )

    # ----- the API ------------------------------------------------------------------------
    # Short CPU work runs on the event loop: a thread hop per request costs
    # more than the ~0.2 ms estimate itself. Each request reads `self.serving`
    # once, so a reload between two lines of a handler cannot mix two models.
    @bentoml.api(route="/predict", input_spec=JobRequest)
    async def predict(self, **fields: Any) -> EstimateResponse:
        """Estimate the yearly salary (USD) of one job, with its calibrated range."""
        serving = self.serving
        job = canonical_job(JobRequest.model_construct(**fields), serving.default_view)
        return estimate_one(serving, job)

    @bentoml.api(route="/explain", input_spec=JobRequest)
    async def explain(self, **fields: Any) -> ExplanationResponse:
        """The estimate with each input's contribution in percent and dollars."""
        serving = self.serving
        job = canonical_job(JobRequest.model_construct(**fields), serving.default_view)
        return explain_one(serving, job)

    # Adaptive batching: concurrent batch requests are merged into one call;
    # a long batch runs in a worker thread, off the event loop.
    @bentoml.api(route="/predict_batch", batchable=True, max_batch_size=MAX_BATCH,
                 max_latency_ms=30_000)  # fmt: skip
    def predict_batch(
        self, jobs: Annotated[list[JobRequest], Field(max_length=MAX_BATCH)]
    ) -> list[EstimateResponse]:
        """Estimates for up to 10,000 jobs, in order."""
        serving = self.serving
        return estimate_many(serving, [canonical_job(j, serving.default_view) for j in jobs])

    @web.get("/model")
    def model_info(self) -> JSONResponse:
        """Model version, data fingerprint, metrics, vocabulary and allowed values."""
        return JSONResponse(self.serving.card)

    @web.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(self) -> FileResponse:
        """The web page (a form; no external resources)."""
        return FileResponse(WEB_DIR / "index.html", media_type="text/html")

    @web.get("/ui", response_class=HTMLResponse, include_in_schema=False)
    def ui(self) -> FileResponse:
        """The web page, under its own name."""
        return FileResponse(WEB_DIR / "index.html", media_type="text/html")

    @web.get("/ui/{name}", include_in_schema=False)
    def asset(self, name: str) -> Any:
        """The page's script and style sheet (a fixed list: no path from the request is opened)."""
        path = WEB_ASSETS.get(name)
        if path is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        return FileResponse(path, media_type=_PAGE_TYPES[path.suffix])


def _stop_server_on_failed_start(error: Exception) -> None:
    """A BentoML worker that cannot load a sound model stops the whole server.

    BentoML respawns a worker whose start fails, forever: with missing or
    damaged model files the service would flap instead of refusing to start.
    Only in a BentoML worker process (whose parent is the server), never in a
    process that merely builds the app (tests, `bentoml build`).
    """
    if "_bentoml_impl" in sys.argv[0] and "worker" in sys.argv[0]:
        logger.critical("refusing to start, stopping the server: %s", error)
        os.kill(os.getppid(), signal.SIGTERM)


def _packaged_model() -> str | None:
    # BentoML sets `bento` on the service when it serves a built Bento.
    bento = getattr(SalaryService, "bento", None)
    models = bento.info.models if bento is not None else []
    return str(models[0].tag) if models else None


WEB_ASSETS = {p.name: p for p in WEB_DIR.glob("*") if p.suffix in _PAGE_TYPES}
SalaryService.add_asgi_middleware(RequestGuard)
