"""A worker's request gate (``serving.gate``) on its own: held, counted, drained, or 503.

In-process: the ASGI middleware is called with a stand-in app, as the server calls it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time

import pytest

from salarymodel.serving.gate import GATE, MODEL_ROUTES, Gate, GateMiddleware


async def _receive() -> dict:
    return {"type": "http.request", "body": b"{}"}


def _call(middleware: GateMiddleware, path: str, kind: str = "http") -> list[dict]:
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(middleware({"type": kind, "path": path}, _receive, send))
    return sent


class _App:
    """Answers 200 and notes how many requests the gate counted while it answered."""

    def __init__(self, gate: Gate, fails: bool = False) -> None:
        self.gate, self.fails = gate, fails
        self.seen: list[tuple[str, int]] = []

    async def __call__(self, scope, receive, send) -> None:
        assert receive is _receive  # the request's body reaches the handler
        self.seen.append((scope["path"], self.gate.in_flight))
        if self.fails:
            raise RuntimeError("the handler failed")
        await send({"type": "http.response.start", "status": 200, "headers": []})


def test_a_new_gate_is_open_not_ready_and_empty() -> None:
    gate = Gate()
    assert not gate.closed and not gate.ready and gate.in_flight == 0
    assert gate.not_ready_reason == "the model is loading"
    body = _call(GateMiddleware(_App(gate), gate), "/predict")[1]["body"]
    assert json.loads(body) == {
        "error": "this worker has no model loaded (the model is loading); retry"
    }


@pytest.mark.parametrize("path", MODEL_ROUTES)
def test_every_model_route_is_refused_without_a_model(path: str) -> None:
    gate = Gate()
    app = _App(gate)
    assert _call(GateMiddleware(app, gate), path)[0]["status"] == 503 and app.seen == []
    gate.ready = True
    assert _call(GateMiddleware(app, gate), path)[0]["status"] == 200
    assert app.seen == [(path, 1)]  # counted while it was answered
    assert gate.in_flight == 0


@pytest.mark.parametrize(("path", "kind"), [("/readyz", "http"), ("/predict", "websocket"),
                                            ("/predict", "lifespan")])  # fmt: skip
def test_what_is_not_a_model_request_passes_untouched(path: str, kind: str) -> None:
    gate = Gate()  # not ready, and closed: a model route would wait, then get 503
    gate.close(longest=60)
    app = _App(gate)
    assert _call(GateMiddleware(app, gate), path, kind)[0]["status"] == 200
    assert app.seen == [(path, 0)]  # not counted


def test_a_failing_handler_is_no_longer_counted() -> None:
    gate = Gate()
    gate.ready = True
    with pytest.raises(RuntimeError, match="the handler failed"):
        _call(GateMiddleware(_App(gate, fails=True), gate), "/predict")
    assert gate.in_flight == 0


def test_the_middleware_uses_the_process_gate_by_default() -> None:
    assert GateMiddleware(_App(GATE)).gate is GATE
    own = Gate()
    assert GateMiddleware(_App(own), own).gate is own


def test_a_held_request_goes_as_soon_as_the_gate_opens() -> None:
    gate = Gate()
    gate.ready = True
    gate.close(longest=60)
    assert gate.closed
    app = _App(gate)
    threading.Timer(0.05, gate.open).start()
    start = time.monotonic()
    assert _call(GateMiddleware(app, gate), "/predict")[0]["status"] == 200
    waited = time.monotonic() - start
    assert 0.04 < waited < 0.5, waited  # held, then let through within milliseconds
    assert not gate.closed


def test_a_gate_closed_too_long_opens_by_itself_and_says_so(caplog) -> None:
    gate = Gate()
    gate.close(longest=0.05)
    assert gate.closed
    time.sleep(0.1)
    with caplog.at_level(logging.WARNING, logger="salarymodel.serving"):
        assert not gate.closed
    assert [r.name for r in caplog.records] == ["salarymodel.serving"]
    assert "closed too long" in caplog.records[0].getMessage()
    caplog.clear()
    assert not gate.closed and not caplog.records  # opened: said once


def test_close_holds_for_the_time_given() -> None:
    gate = Gate()
    gate.close(longest=0.3)
    time.sleep(0.1)
    assert gate.closed  # not yet past the deadline
    gate.open()
    assert not gate.closed


def test_drain_waits_for_the_requests_in_flight_and_no_longer() -> None:
    gate = Gate()
    assert gate.drain(0.0)  # nothing in flight
    gate.in_flight = 1
    start = time.monotonic()
    assert not gate.drain(0.05)
    assert 0.05 <= time.monotonic() - start < 0.5

    def answered() -> None:
        gate.in_flight = 0

    threading.Timer(0.05, answered).start()
    start = time.monotonic()
    assert gate.drain(5.0)
    assert time.monotonic() - start < 0.5  # noticed within milliseconds, not at the timeout


def test_requests_answered_at_once_are_each_counted() -> None:
    gate = Gate()
    gate.ready = True
    release = asyncio.Event()
    counted: list[int] = []

    async def slow(scope, receive, send) -> None:
        counted.append(gate.in_flight)
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})

    middleware = GateMiddleware(slow, gate)

    async def scenario() -> None:
        async def send(message: dict) -> None:
            pass

        calls = [asyncio.create_task(middleware({"type": "http", "path": p}, _receive, send))
                 for p in ("/predict", "/explain", "/model")]  # fmt: skip
        await asyncio.sleep(0.05)
        assert gate.in_flight == 3 and sorted(counted) == [1, 2, 3]
        assert not gate.drain(0.01)  # a reload would wait for these three
        release.set()
        await asyncio.gather(*calls)
        assert gate.in_flight == 0 and gate.drain(0.0)

    asyncio.run(scenario())
