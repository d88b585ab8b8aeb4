"""The BentoML service: estimates, ranges and explanations over HTTP, and the web page.

Endpoints (all on 127.0.0.1 by default, ``serving.host``/``serving.port``):

- ``POST /predict``        one job (flat JSON) -> estimate, calibrated range, support, warnings
- ``POST /predict_batch``  ``{"jobs": [...]}`` (up to 10,000) -> one result per job, in order
- ``POST /explain``        one job -> the estimate and each concept's part in % and USD
- ``GET  /model``          version, data fingerprint, metrics, vocabulary, allowed values
- ``POST /admin/reload``   (loopback only) every worker switches to the registry's champion,
                           or none does (``serving.reload``)
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

from salarymodel.config import load_settings
from salarymodel.serving import reload
from salarymodel.serving.guard import ClientErrors, RequestGuard
from salarymodel.serving.loading import (
    ModelSourceError,
    ServingModel,
    export_in_child_process,
    load_announced,
    load_serving_model,
)
from salarymodel.serving.openapi import truthful_openapi
from salarymodel.serving.schemas import (
    MAX_BATCH,
    MAX_BODY_BYTES,
    EstimateRequest,
    EstimateResponse,
    ExplanationResponse,
    JobRequest,
    PredictResponse,
)
from salarymodel.serving.scoring import (
    canonical_job,
    estimate_many,
    explain_one,
    predict_one,
    request_terms,
    served_pay,
)
from salarymodel.serving.server import stop_server_on_failed_start

logger = logging.getLogger("salarymodel.service")

SETTINGS = load_settings()
METRICS_ENABLED = SETTINGS.serving.metrics
WEB_DIR = Path(__file__).resolve().parent / "web"
_PAGE_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
WEB_ASSETS = {p.name: p for p in WEB_DIR.glob("*") if p.suffix in _PAGE_TYPES}
# Fault injection for the reload test only: the worker with this BentoML
# worker index cannot load a reloaded model.
FAULT_RELOAD_WORKER_ENV = "SALARYMODEL_TEST_RELOAD_FAILS_IN_WORKER"


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


def _load_for_reload(tag: str) -> ServingModel:
    from bentoml._internal.context import server_context

    failing = os.environ.get(FAULT_RELOAD_WORKER_ENV)
    if failing and failing == str(server_context.worker_index):
        raise ModelSourceError(f"{FAULT_RELOAD_WORKER_ENV} makes this worker refuse {tag}")
    return load_announced(tag)


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
    traffic={"timeout": 60},
    http={"host": SETTINGS.serving.host, "port": SETTINGS.serving.port},
)
class SalaryService:
    """Salary estimates for AI, ML and data jobs: the champion model over HTTP."""

    def __init__(self) -> None:
        logging.getLogger("bentoml._internal.server.http_app").addFilter(ClientErrors())
        started = time.perf_counter()
        self._swap_lock = threading.Lock()
        self._reload_lock = asyncio.Lock()
        self._session = reload.SessionFolder.current()
        follower = reload.Follower(
            self._session, _load_for_reload, self._swap_in, lambda: self.serving.version
        )
        try:
            self.serving = load_serving_model(load_settings(), packaged=_packaged_model())
            _SERVED[:] = [self.serving]
            # A worker (re)started after a reload serves the committed model, or
            # none: serving the start-up one beside the others would mix versions.
            follower.join()
        except ModelSourceError as error:
            stop_server_on_failed_start(error)
            raise
        logger.info("serving model v%s from %s (loaded in %.1f s)", self.serving.version,
                    self.serving.source, time.perf_counter() - started)  # fmt: skip
        threading.Thread(target=follower.follow_forever, name="reloads", daemon=True).start()
        # What is loaded now lives as long as the worker: keep it out of the
        # cyclic collector's passes, which otherwise ran during a 10,000-job
        # batch (its ~100,000 new objects) and scanned the model each time.
        gc.freeze()

    def __is_ready__(self) -> bool:
        return self.serving is not None

    def _swap_in(self, serving: ServingModel) -> None:
        """Serve ``serving`` from now on: one reference assignment, so a request in
        flight finishes with the model it started with."""
        with self._swap_lock:
            previous, self.serving = self.serving, serving
            _SERVED[:] = [serving]
        logger.info("now serving model v%s (was v%s)", serving.version, previous.version)

    @web.post("/admin/reload")
    async def reload(self, request: Request) -> JSONResponse:
        """Every worker switches to the registry's champion, or none does (loopback only)."""
        host = request.client.host if request.client else None
        if not reload.is_loopback(host, request.headers):
            return JSONResponse(
                {"error": "reload is accepted only from this machine (loopback, not relayed)"},
                status_code=403,
            )
        timeout = load_settings().serving.reload_timeout_seconds
        async with self._reload_lock:
            previous = self.serving.version
            try:
                # Off the event loop: requests keep being answered meanwhile.
                tag, version = await asyncio.to_thread(export_in_child_process, timeout)
            except ModelSourceError as error:
                return JSONResponse(
                    {"error": f"nothing reloaded: {error}", "model_version": previous},
                    status_code=409,
                )
            outcome = await asyncio.to_thread(
                reload.coordinate, self._session, tag, version, _load_for_reload, self._swap_in,
                timeout,
            )  # fmt: skip
        if not outcome.ok and self.serving.version == previous:
            return JSONResponse(
                {"error": f"nothing reloaded: v{version} {outcome.error}",
                 "model_version": previous, "workers": outcome.workers},
                status_code=409,
            )  # fmt: skip
        if not outcome.ok:
            return JSONResponse(
                {"error": f"reload to v{version} incomplete: {outcome.error}",
                 "model_version": self.serving.version, "workers": outcome.workers},
                status_code=500,
            )  # fmt: skip
        return JSONResponse(
            {
                "model_version": self.serving.version,
                "previous_version": previous,
                "loaded_from": self.serving.source,
                "tag": self.serving.tag,
                "workers": outcome.workers,
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
        serving = self.serving
        request = EstimateRequest.model_construct(**fields)
        terms = request_terms(serving, request)  # 422 on an unsupported currency or salary
        return predict_one(serving, canonical_job(request, serving.default_view), terms)

    @bentoml.api(route="/explain", input_spec=EstimateRequest)
    async def explain(self, **fields: Any) -> ExplanationResponse:
        """The estimate with each input's contribution in percent and dollars (and in the
        request's currency and period)."""
        serving = self.serving
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
        serving = self.serving
        return estimate_many(serving, [canonical_job(j, serving.default_view) for j in jobs])

    @web.get("/model")
    def model_info(self) -> JSONResponse:
        """Model version, data fingerprint, metrics, vocabulary and allowed values.

        ``worker`` is the process that answered: with several workers, an
        operator (and the reload test) can see that each serves the same version.
        """
        card = self.serving.card
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


def _packaged_model() -> str | None:
    # BentoML sets `bento` on the service when it serves a built Bento.
    bento = getattr(SalaryService, "bento", None)
    models = bento.info.models if bento is not None else []
    return str(models[0].tag) if models else None


# (a bentoml Service: see openapi_document for why mypy does not know it)
SalaryService.add_asgi_middleware(  # type: ignore[attr-defined]
    RequestGuard, openapi_document=openapi_document
)
