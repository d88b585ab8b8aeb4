"""The BentoML service: estimates, ranges and explanations over HTTP, and the web page.

Endpoints (all on 127.0.0.1 by default, ``serving.host``/``serving.port``):

- ``POST /predict``        one job (flat JSON) -> estimate, calibrated range, support, warnings
- ``POST /predict_batch``  ``{"jobs": [...]}`` (up to 10,000) -> one result per job, in order
- ``POST /explain``        one job -> the estimate and each concept's part in % and USD
- ``GET  /model``          version, data fingerprint, metrics, vocabulary, allowed values
- ``POST /admin/reload``   (loopback and the reload token only, ``serving.admin_auth``)
                           every worker switches to the registry's champion, or none
                           does (``serving.reload``)
- ``GET  /`` (and ``/ui``) the web page; ``/readyz``, ``/livez``, ``/healthz``; ``/docs.json``

This module only ties the ``serving`` package to BentoML: where the model
comes from (``serving.loading``), how a request is scored
(``serving.scoring``), the request guard and the OpenAPI document. Speed and
weight are measured in ``benchmarks/serving.py`` and ``benchmarks/startup.py``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import bentoml
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from pydantic import Field

from salarymodel.config.settings import Settings, load_settings
from salarymodel.serving import reload
from salarymodel.serving.admin_auth import (
    AdminRefused,
    check_admin,
    ensure_token_file,
    read_token,
    without_paths,
)
from salarymodel.serving.control import is_server_process, private_control_endpoints
from salarymodel.serving.follower import Follower
from salarymodel.serving.gate import GATE, GateMiddleware
from salarymodel.serving.guard import ClientErrors, RequestGuard
from salarymodel.serving.loading import (
    ModelSourceError,
    export_in_child_process,
    load_announced,
    load_serving_model,
)
from salarymodel.serving.model_card import served_pay
from salarymodel.serving.openapi import truthful_openapi
from salarymodel.serving.pay_terms import request_terms
from salarymodel.serving.schemas import (
    MAX_BATCH,
    MAX_BODY_BYTES,
    EstimateRequest,
    EstimateResponse,
    ExplanationResponse,
    JobRequest,
    PredictResponse,
)
from salarymodel.serving.scoring import canonical_job, estimate_many, explain_one, predict_one
from salarymodel.serving.served import ServingModel
from salarymodel.serving.server import stop_server_on_failed_start

logger = logging.getLogger("salarymodel.serving.service")

SETTINGS = load_settings()
METRICS_ENABLED = SETTINGS.serving.metrics
WEB_DIR = Path(__file__).resolve().parent / "web"
_PAGE_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
WEB_ASSETS = {p.name: p for p in WEB_DIR.glob("*") if p.suffix in _PAGE_TYPES}
# Fault injection for the reload tests only: while the file this names exists,
# every worker but the one that got the call refuses a reloaded model.
FAULT_RELOAD_ENV = "SALARYMODEL_TEST_RELOAD_REFUSED_WHILE"

if is_server_process():
    # The process manager's control socket: private, not on loopback TCP.
    private_control_endpoints()


# The model this worker serves, for the OpenAPI document (which states the
# model's currencies); set when the service loads or swaps in a model.
_SERVED: list[ServingModel] = []


_DOCUMENTS: dict[str | None, bytes] = {}


def openapi_document() -> bytes:
    """The corrected OpenAPI document of the served model, as JSON bytes."""
    serving = _SERVED[-1] if _SERVED else None
    version = serving.version if serving else None
    # Built once per model: BentoML regenerates the whole document on every request.
    if version not in _DOCUMENTS:
        # mypy keeps a decorated class's own type (python/mypy#3135): it does
        # not see that @bentoml.service made SalaryService a bentoml Service.
        generated = SalaryService.openapi_spec.asdict()  # type: ignore[attr-defined]
        pay = served_pay(serving) if serving is not None else None
        document = truthful_openapi(generated, metrics=METRICS_ENABLED, pay=pay)
        _DOCUMENTS[version] = json.dumps(document).encode()
    return _DOCUMENTS[version]


def _load_for_reload(tag: str, coordinating: bool = True) -> ServingModel:
    fault = os.environ.get(FAULT_RELOAD_ENV)
    if fault and not coordinating and Path(fault).exists():
        raise ModelSourceError(f"{FAULT_RELOAD_ENV} makes this worker refuse {tag}")
    return load_announced(tag)


def _load_following(tag: str) -> ServingModel:
    return _load_for_reload(tag, coordinating=False)


web = FastAPI(title="salarymodel web", docs_url=None, redoc_url=None, openapi_url=None)


@bentoml.asgi_app(web, path="/")
@bentoml.service(
    name="salarymodel",
    workers=SETTINGS.serving.workers,
    # Measured on 2 cores: the access log, Prometheus metrics (~10% of a
    # request's CPU) and OpenTelemetry spans with no exporter configured each
    # cost throughput. Errors are still logged; serving.metrics (or
    # SALARYMODEL_METRICS=1) turns /metrics back on.
    logging={"access": {"enabled": False}},
    metrics={"enabled": METRICS_ENABLED},
    tracing={"excluded_urls": list(MAX_BODY_BYTES)},
    # A reload answers within serving.reload_timeout_seconds (export, load and
    # switch together); past BentoML's timeout the caller would get 504 while
    # the reload went on.
    traffic={"timeout": max(60.0, SETTINGS.serving.reload_timeout_seconds + 15)},
    http={"host": SETTINGS.serving.host, "port": SETTINGS.serving.port},
)
class SalaryService:
    """Salary estimates for AI, ML and data jobs: the champion model over HTTP."""

    def __init__(self) -> None:
        logging.getLogger("bentoml._internal.server.http_app").addFilter(ClientErrors())
        started = time.perf_counter()
        settings = load_settings()
        self._swap_lock = threading.Lock()
        self._reload_lock = asyncio.Lock()
        self._session = reload.SessionFolder.current()
        self.serving: ServingModel | None = None
        self._follower = Follower(
            self._session, _load_following, self._swap_in, self._version,
            settings.serving.reload_timeout_seconds,
        )  # fmt: skip
        _ensure_reload_token(settings)
        try:
            self._swap_in(self._load_committed(settings))
        except ModelSourceError as error:
            if not self._session.has_served():
                # The server's first start: refuse to start rather than flap.
                stop_server_on_failed_start(error)
                raise
            # Restarted beside workers that serve: never stop them; retry instead.
            GATE.not_ready_reason = without_paths(str(error))
            logger.error("not ready, retrying while the other workers serve: %s", error)
            threading.Thread(target=self._retry_until_loaded, args=(settings,),
                             name="load-retry", daemon=True).start()  # fmt: skip
        else:
            assert self.serving is not None
            logger.info("serving model v%s from %s (loaded in %.1f s)", self.serving.version,
                        self.serving.source, time.perf_counter() - started)  # fmt: skip
        self._follower.join()
        threading.Thread(target=self._follower.follow_forever, name="reloads", daemon=True).start()
        # What is loaded now lives as long as the worker: keep it out of the
        # cyclic collector's passes, which otherwise ran during a 10,000-job
        # batch (its ~100,000 new objects) and scanned the model each time.
        gc.freeze()

    def __is_ready__(self) -> bool:
        return self.serving is not None

    def _version(self) -> str | None:
        return self.serving.version if self.serving is not None else None

    def _model(self) -> ServingModel:
        serving = self.serving
        if serving is None:  # the gate answers 503 first; this is the last line
            raise bentoml.exceptions.ServiceUnavailable("this worker has no model loaded")
        return serving

    def _load_committed(self, settings: Settings) -> ServingModel:
        """The session's last committed model, else the start-up one (``follower.Follower``)."""
        return self._follower.load_committed(  # type: ignore[no-any-return]
            load_announced, lambda: load_serving_model(settings, packaged=_packaged_model())
        )

    def _retry_until_loaded(self, settings: Settings) -> None:
        def failed(error: Exception, pause: float) -> None:
            GATE.not_ready_reason = without_paths(str(error))
            logger.error("still not ready, next try in %g s: %s", pause, error)

        self._follower.retry_until_loaded(
            load_announced, lambda: load_serving_model(settings, packaged=_packaged_model()),
            settings.serving.load_retry_max_seconds, failed,
        )  # fmt: skip
        logger.info("ready: serving model v%s", self._version())

    def _swap_in(self, serving: ServingModel) -> None:
        """Serve ``serving`` from now on: one reference assignment, so a request in
        flight finishes with the model it started with."""
        with self._swap_lock:
            previous, self.serving = self.serving, serving
            _SERVED[:] = [serving]
            GATE.ready = True
        if previous is not None:
            logger.info("now serving model v%s (was v%s)", serving.version, previous.version)

    @web.post("/admin/reload")
    async def reload(self, request: Request) -> JSONResponse:
        """Every worker switches to the registry's champion, or none does (loopback callers
        with the reload token only). Answers once every worker serves the new model."""
        settings = load_settings()
        host = request.client.host if request.client else None
        try:
            check_admin(host, request.headers, read_token(settings))
        except AdminRefused as refusal:
            return JSONResponse({"error": str(refusal)}, status_code=403)
        timeout = settings.serving.reload_timeout_seconds
        deadline = time.monotonic() + timeout
        async with self._reload_lock:
            previous = self._version()
            try:
                # Off the event loop: requests keep being answered meanwhile.
                tag, version = await asyncio.to_thread(export_in_child_process, timeout)
            except ModelSourceError as error:
                logger.error("reload refused: %s", error)
                return JSONResponse(
                    {"error": f"nothing reloaded: {without_paths(str(error))}",
                     "model_version": previous},
                    status_code=409,
                )  # fmt: skip
            # What is left of the time allowed (at least a few seconds to load and switch).
            left = max(deadline - time.monotonic(), 5.0)
            outcome = await asyncio.to_thread(
                reload.coordinate, self._session, tag, version, _load_for_reload, self._swap_in,
                left,
            )  # fmt: skip
        # Reasons name files; the caller learns versions and workers, never paths.
        workers = {pid: without_paths(why) for pid, why in outcome.workers.items()}
        if not outcome.ok:
            logger.error("reload to v%s: %s", version, outcome.error)
            nothing = not outcome.committed
            return JSONResponse(
                {"error": (f"nothing reloaded: v{version} " if nothing
                           else f"reload to v{version} incomplete: ")
                          + without_paths(outcome.error or ""),
                 "model_version": self._version(), "workers": workers},
                status_code=409 if nothing else 500,
            )  # fmt: skip
        serving = self._model()
        return JSONResponse(
            {
                "model_version": serving.version,
                "previous_version": previous,
                "loaded_from": serving.source,
                "tag": serving.tag,
                "workers": workers,
            }
        )

    # ----- the API ------------------------------------------------------------------------
    # Short CPU work runs on the event loop: a thread hop per request costs
    # more than the ~0.2 ms estimate itself. Each request reads `self.serving`
    # once, so a reload between two lines of a handler cannot mix two models.
    @bentoml.api(route="/predict", input_spec=EstimateRequest)
    async def predict(self, **fields: Any) -> PredictResponse:
        """Estimate the yearly salary (USD) of one job, with its calibrated range; also in
        the request's currency and period, and where `current_salary` falls (percentile)."""
        serving = self._model()
        request = EstimateRequest.model_construct(**fields)
        terms = request_terms(serving, request)  # 422 on an unsupported currency or salary
        return predict_one(serving, canonical_job(request, serving.default_view), terms)

    @bentoml.api(route="/explain", input_spec=EstimateRequest)
    async def explain(self, **fields: Any) -> ExplanationResponse:
        """The estimate with each input's contribution in percent and dollars (and in the
        request's currency and period)."""
        serving = self._model()
        request = EstimateRequest.model_construct(**fields)
        terms = request_terms(serving, request)
        return explain_one(serving, canonical_job(request, serving.default_view), terms)

    # Adaptive batching: concurrent batch requests are merged into one call;
    # a long batch runs in a worker thread, off the event loop.
    @bentoml.api(route="/predict_batch", batchable=True, max_batch_size=MAX_BATCH,
                 max_latency_ms=30_000)  # fmt: skip
    def predict_batch(
        self, jobs: Annotated[list[JobRequest], Field(max_length=MAX_BATCH)]
    ) -> list[EstimateResponse]:
        """Estimates for up to 10,000 jobs, in order."""
        serving = self._model()
        return estimate_many(serving, [canonical_job(j, serving.default_view) for j in jobs])

    @web.get("/model")
    def model_info(self) -> JSONResponse:
        """Model version, data fingerprint, metrics, vocabulary and allowed values.

        ``worker`` is the process that answered: with several workers, an
        operator (and the reload test) can see that each serves the same version.
        """
        card = self._model().card
        assert card is not None  # built with the ServingModel (serving.loading.ready_to_serve)
        return JSONResponse({**card, "worker": os.getpid()})

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


def _ensure_reload_token(settings: Settings) -> None:
    # `salarymodel serve` creates it; a plain `bentoml serve` gets it here.
    try:
        ensure_token_file(settings)
    except OSError as error:  # a read-only disk: the token must come from the environment
        logger.warning("no reload token file (%s): reload needs %s", error,
                       settings.serving.reload_token_env)  # fmt: skip


def _packaged_model() -> str | None:
    # BentoML sets `bento` on the service when it serves a built Bento.
    bento = getattr(SalaryService, "bento", None)
    models = bento.info.models if bento is not None else []
    return str(models[0].tag) if models else None


# (a bentoml Service: see openapi_document for why mypy does not know it)
SalaryService.add_asgi_middleware(  # type: ignore[attr-defined]
    RequestGuard, openapi_document=openapi_document
)
# Held while the workers switch models, 503 while this worker has none (serving.gate).
SalaryService.add_asgi_middleware(GateMiddleware)  # type: ignore[attr-defined]
