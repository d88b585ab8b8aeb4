"""The batch limits of ``RequestGuard``: 413 naming the limit for too many bytes or jobs,
at most ``serving.batch_concurrency`` batches at work per worker, memory released after.

Fast (no model): the guard in front of a stand-in for BentoML that, like
BentoML, validates the body with pydantic and answers its errors with 400.
The served process is checked in test_service.py and benchmarks/batch_memory.py.
"""

from __future__ import annotations

import asyncio
import json
import platform

import pytest
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from salarymodel.config.settings import load_settings
from salarymodel.serving import guard as guard_module
from salarymodel.serving.guard import RequestGuard
from salarymodel.serving.schemas import BATCH_ROUTE, MAX_BATCH, MAX_BODY_BYTES, BatchRequest

LIMITS = load_settings().serving
JSON = {"content-type": "application/json"}


class StandIn:
    """Like BentoML: pydantic errors -> 400 with ``detail``; counts batches at work."""

    def __init__(self) -> None:
        self.running = self.most = self.answered = 0

    async def batch(self, request: Request) -> JSONResponse:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            body = await request.body()
            await asyncio.sleep(0.05)  # at work: parsing and scoring
            try:
                jobs = BatchRequest.model_validate_json(body).jobs
            except ValidationError as error:
                detail = error.errors(include_context=False, include_input=False)
                return JSONResponse({"error": "invalid", "detail": detail}, status_code=400)
            self.answered += 1
            return JSONResponse([{"estimate_usd": 1} for _ in jobs])
        finally:
            self.running -= 1


def _client(stand_in: StandIn) -> TestClient:
    app = Starlette(routes=[Route(BATCH_ROUTE, stand_in.batch, methods=["POST"])])
    return TestClient(RequestGuard(app, lambda: b"{}"))


def _jobs(n: int) -> dict:
    return {"jobs": [{"job_title": "Data Engineer"}] * n}


def test_the_limits_come_from_the_settings() -> None:
    assert LIMITS.batch_max_jobs == MAX_BATCH
    assert MAX_BODY_BYTES[BATCH_ROUTE] == LIMITS.batch_max_bytes


def test_a_batch_of_too_many_jobs_gets_413_naming_the_limit() -> None:
    client = _client(StandIn())
    assert client.post(BATCH_ROUTE, json=_jobs(MAX_BATCH)).status_code == 200
    answer = client.post(BATCH_ROUTE, json=_jobs(MAX_BATCH + 1))
    assert answer.status_code == 413
    assert f"{MAX_BATCH:,} jobs" in answer.json()["error"]
    assert "serving.batch_max_jobs" in answer.json()["error"]
    # An invalid job in a batch within the limit is still a 422 naming the field.
    invalid = client.post(BATCH_ROUTE, json={"jobs": [{"job_title": "x", "remote_ratio": 7}]})
    assert invalid.status_code == 422
    assert invalid.json()["detail"][0]["field"] == "jobs[0].remote_ratio"


def test_a_batch_body_over_the_byte_limit_gets_413_naming_it() -> None:
    limit = MAX_BODY_BYTES[BATCH_ROUTE]
    client = _client(StandIn())
    job = json.dumps({"job_title": "Data Engineer", "skills": ["python"] * 50})
    rows = (limit - 20) // (len(job) + 1)
    at_limit = ('{"jobs":[' + ",".join([job] * min(rows, MAX_BATCH)) + "]}").encode()
    assert len(at_limit) <= limit
    padded = at_limit[:-2] + b" " * (limit - len(at_limit)) + b"]}"
    assert len(padded) == limit
    assert client.post(BATCH_ROUTE, content=padded, headers=JSON).status_code == 200
    over = padded[:-2] + b" ]}"
    answer = client.post(BATCH_ROUTE, content=over, headers=JSON)
    assert answer.status_code == 413
    assert f"{limit:,} bytes" in answer.json()["error"]
    assert "serving.batch_max_bytes" in answer.json()["error"]


def test_batches_at_work_per_worker_are_bounded_and_memory_is_released(monkeypatch) -> None:
    released: list[str] = []
    monkeypatch.setattr(guard_module.memory, "collect", lambda: released.append("gc"))
    monkeypatch.setattr(guard_module.memory, "trim", lambda: released.append("trim") or True)
    stand_in = StandIn()
    client = _client(stand_in)
    large = max(LIMITS.batch_release_bytes, 1)
    job = json.dumps({"job_title": "Data Engineer", "skills": ["python"] * 50})
    rows = min(MAX_BATCH, large // len(job) + 1)
    body = ('{"jobs":[' + ",".join([job] * rows) + "]}").encode()
    assert large <= len(body) <= MAX_BODY_BYTES[BATCH_ROUTE]

    async def fire() -> list[int]:
        import httpx

        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            answers = await asyncio.gather(
                *[http.post(BATCH_ROUTE, content=body, headers=JSON) for _ in range(6)]
            )
        return [a.status_code for a in answers]

    assert asyncio.run(fire()) == [200] * 6
    assert stand_in.answered == 6
    assert stand_in.most == LIMITS.batch_concurrency < 6
    assert released.count("gc") == released.count("trim") == 6
    # A small batch is not worth a collection.
    released.clear()
    assert client.post(BATCH_ROUTE, json=_jobs(2)).status_code == 200
    assert released == []


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_trim_is_not_a_silent_no_op_on_glibc() -> None:
    # The deployed image is Debian (glibc): the release must really trim there.
    assert guard_module.memory.trim() is True
