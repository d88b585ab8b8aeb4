"""The request gate of one worker: held while the workers switch models, 503 while not ready.

A reload switches every worker at once (``serving.reload``). Each worker
closes its gate (new requests wait), lets the requests already past it
finish (so every answer from the old model is sent), swaps the model in and
says so; only when every worker has switched does the coordinator open the
gates. So no answer from the old model is ever sent after one from the new
model, and a request sent after the reload's 200 gets the new model.

A worker with no model yet (restarted, retrying its load) answers the API
routes with 503 and ``Retry-After`` instead of failing inside a handler.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from typing import Any

logger = logging.getLogger("salarymodel.serving")

# Routes that answer from the model: held while switching, 503 while not ready.
MODEL_ROUTES = ("/predict", "/predict_batch", "/explain", "/model")
_WAIT_SECONDS = 0.002  # how often a held request looks at the gate


class Gate:
    """This worker's gate; one per process (:data:`GATE`), shared by the middleware,
    the service and the reload follower, which runs in another thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closed_until: float | None = None  # monotonic deadline while closed
        self.in_flight = 0  # requests past the gate, not yet answered
        self.ready = False
        self.not_ready_reason = "the model is loading"

    @property
    def closed(self) -> bool:
        until = self._closed_until
        if until is None:
            return False
        if time.monotonic() > until:
            # A coordinator that died must not hold this worker's requests forever.
            logger.warning("request gate closed too long: opened without the reload's word")
            self._closed_until = None
            return False
        return True

    def close(self, longest: float) -> None:
        """Hold new requests (for at most ``longest`` seconds)."""
        with self._lock:
            self._closed_until = time.monotonic() + longest

    def open(self) -> None:
        """Let held and new requests through."""
        with self._lock:
            self._closed_until = None

    def drain(self, timeout: float) -> bool:
        """Wait until every request past the gate is answered; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.in_flight > 0:
            if time.monotonic() > deadline:
                return False
            time.sleep(_WAIT_SECONDS)
        return True


GATE = Gate()


class GateMiddleware:
    """ASGI middleware: the model routes pass :data:`GATE` (held, counted, or 503)."""

    def __init__(self, app: Any, gate: Gate | None = None) -> None:
        self.app = app
        self.gate = gate or GATE

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") not in MODEL_ROUTES:
            await self.app(scope, receive, send)
            return
        gate = self.gate
        while gate.closed:
            await asyncio.sleep(_WAIT_SECONDS)
        if not gate.ready:
            await _not_ready(send, gate.not_ready_reason)
            return
        gate.in_flight += 1  # on the event loop only: no lock needed
        try:
            await self.app(scope, receive, send)
        finally:
            gate.in_flight -= 1


async def _not_ready(send: Any, reason: str) -> None:
    body = json.dumps({"error": f"this worker has no model loaded ({reason}); retry"}).encode()
    headers = [(b"content-type", b"application/json"), (b"retry-after", b"1"),
               (b"content-length", str(len(body)).encode())]  # fmt: skip
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})
