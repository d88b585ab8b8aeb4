"""Waiting for a started `salarymodel serve` to answer ready (``/readyz``), and stopping it.

What a deployment's readiness probe asks, asked by a caller that started the
server itself (the tests, the benchmarks), and the stop that caller owes it:
the standard library only, so it adds nothing to what a worker or a script imports.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from typing import Protocol

PROBE = "/readyz"


class NotReady(RuntimeError):
    """The service exited, or its probe did not answer 200 in the time allowed."""


class Started(Protocol):
    """A started process, as ``subprocess.Popen`` is one: has it exited, and how."""

    returncode: int | None

    def poll(self) -> int | None: ...


def answers_ready(url: str, timeout: float = 2.0) -> bool:
    """Does ``url``'s readiness probe answer 200 right now?"""
    try:
        with urllib.request.urlopen(f"{url}{PROBE}", timeout=timeout) as answer:
            return bool(answer.status == 200)
    # Refused, not ready (503), too slow, or cut off while the server starts.
    except (urllib.error.URLError, http.client.HTTPException, OSError):
        return False


def wait_until_ready(
    url: str, process: Started | None = None, seconds: float = 180.0, pause: float = 0.5
) -> float:
    """Poll ``url``'s readiness probe until it answers 200; the seconds it took.

    Raises ``NotReady`` as soon as ``process`` (the server, when the caller
    started it) has exited, or once ``seconds`` have passed.
    """
    started = time.monotonic()
    deadline = started + seconds
    while True:
        if process is not None and process.poll() is not None:
            raise NotReady(f"the service exited with {process.returncode}")
        if answers_ready(url):
            return time.monotonic() - started
        if time.monotonic() > deadline:
            raise NotReady(f"the service at {url} was not ready within {seconds:g} s")
        time.sleep(pause)


def stop_process(process: subprocess.Popen[bytes], grace: float = 30.0) -> None:
    """SIGTERM a server started in its own session (its whole process group: the
    arbiter and its workers); SIGKILL the group if it has not gone within ``grace`` s."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=grace)
