"""The ASGI guard in front of the API: body limits, 413/415/422 answers, keep-alive spreading."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from salarymodel.serving import memory
from salarymodel.serving.schemas import (
    ALLOWED,
    BATCH_ROUTE,
    MAX_BATCH,
    MAX_BODY_BYTES,
    PATTERN_WORDS,
    SETTINGS,
)

# A keep-alive connection is closed after a random number of requests in this range.
KEEPALIVE_REQUESTS = (50, 150)


def _field_path(location: Sequence[object]) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


_PATTERN_MESSAGE = "String should match pattern '"


def _in_words(error: Mapping[str, Any]) -> str:
    """An error's message; a pattern's in words (``PATTERN_WORDS``) rather than its regex.
    BentoML passes pydantic's errors on without their context: the pattern is read
    back from the message then."""
    message = str(error.get("msg", ""))
    if error.get("type") != "string_pattern_mismatch":
        return message
    pattern = (error.get("ctx") or {}).get("pattern")
    if pattern is None and message.startswith(_PATTERN_MESSAGE) and message.endswith("'"):
        pattern = message[len(_PATTERN_MESSAGE) : -1]
    return PATTERN_WORDS.get(str(pattern), message)


def describe_errors(errors: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A 422 body from pydantic errors: each names its field and, if fixed, its allowed values."""
    detail = []
    for error in errors:
        location = list(error.get("loc", ()))
        name = next((p for p in reversed(location) if isinstance(p, str)), "")
        message = _in_words(error)
        item: dict[str, Any] = {"field": _field_path(location), "message": message}
        if name in ALLOWED and error.get("type") != "extra_forbidden":
            item["allowed"] = ALLOWED[name]
        detail.append(item)
    summary = "; ".join(
        f"{d['field']}: {d['message']}"
        + (f" (allowed: {', '.join(map(str, d['allowed']))})" if "allowed" in d else "")
        for d in detail
    )
    return {"error": f"invalid request: {summary}", "detail": detail}


def too_large(path: str) -> dict[str, str]:
    """The 413 body for a request body over its route's byte limit, naming the limit."""
    limit = MAX_BODY_BYTES[path]
    setting = " (serving.batch_max_bytes)" if path == BATCH_ROUTE else ""
    return {"error": f"request body over the limit of {limit:,} bytes for {path}{setting}"}


def too_many_jobs() -> dict[str, str]:
    """The 413 body for a batch of more jobs than the limit, naming the limit."""
    return {
        "error": f"batch over the limit of {MAX_BATCH:,} jobs per request "
        "(serving.batch_max_jobs): split it"
    }


def _too_many_jobs(errors: Sequence[Mapping[str, Any]]) -> bool:
    # pydantic's error for `jobs` past its max_length (BatchRequest, the batch API's input).
    return any(e.get("type") == "too_long" and list(e.get("loc", ())) == ["jobs"] for e in errors)


class RequestGuard:
    """ASGI middleware in front of the API routes.

    - Reads the body itself and answers 413 past ``MAX_BODY_BYTES`` (also for
      chunked bodies without a Content-Length), so an oversized request is
      refused before anything parses it; a batch of more than ``MAX_BATCH``
      jobs gets 413 too (pydantic's 400 for it, rewritten). Both name the limit.
    - Bounds batch work: a worker reads, parses and scores at most
      ``serving.batch_concurrency`` batches at once (the others wait, their
      bodies unread), and after a body of ``serving.batch_release_bytes`` or
      more collects garbage and trims the heap (``serving.memory``). Without
      these, 16 concurrent 32 MiB batches took the service to 1.9 GB.
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

    def __init__(self, app: Any, openapi_document: Callable[[], bytes]) -> None:
        self.app = app
        self._openapi_document = openapi_document
        self._served: dict[object, list[int]] = {}  # client address -> [requests, limit]
        self._random = random.Random()
        self._batches = asyncio.Semaphore(SETTINGS.serving.batch_concurrency)
        self._release_bytes = SETTINGS.serving.batch_release_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        http = scope["type"] == "http"
        if http and scope.get("path") == "/docs.json" and scope.get("method") in ("GET", "HEAD"):
            await _send_bytes(send, 200, self._openapi_document(), scope["method"] == "HEAD")
            return
        limit = MAX_BODY_BYTES.get(scope.get("path", "")) if http else None
        if limit is None or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        close = self._last_on_connection(scope.get("client"))
        if _media_type(scope) not in ("", "application/json"):
            await _send_json(send, 415, {"error": "request body must be application/json"}, close)
            return
        if scope["path"] != BATCH_ROUTE:
            await self._answer(scope, receive, send, limit, close)
            return
        async with self._batches:
            size = await self._answer(scope, receive, send, limit, close)
            if size >= self._release_bytes:
                # The batch's objects are unreachable now; give their pages back
                # before the next batch is read (the trim runs off the event loop).
                memory.collect()
                await asyncio.to_thread(memory.trim)

    async def _answer(self, scope: dict, receive: Any, send: Any, limit: int, close: bool) -> int:
        """Read the body (413 past ``limit``), let the app answer; the body's size."""
        body = await _read_body(receive, limit)
        if body is None:
            await _send_json(send, 413, too_large(scope["path"]), close)
            return limit
        size = len(body)
        await self.app(scope, _replay(body), _rewrite_responses(send, close))
        return size

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
        if _too_many_jobs(errors):
            await _send_json(send, 413, too_many_jobs(), close)
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


class ClientErrors(logging.Filter):
    """Drop BentoML's ERROR traceback for a request that failed validation.

    BentoML logs every invalid request body with a full traceback; that is
    the client's mistake (answered 422), and formatting it costs the server.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        from pydantic import ValidationError

        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, ValidationError)
