"""Waiting for a started service's readiness probe (``serving.readiness``): ready, exited, late."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from helpers.served import free_port

from salarymodel.serving.readiness import NotReady, answers_ready, stop_process, wait_until_ready


class _Probe(BaseHTTPRequestHandler):
    """Answers /readyz 503 until ``ready_after`` probes have been asked, then 200."""

    asked = 0
    ready_after = 0

    def do_GET(self) -> None:
        type(self).asked += 1
        ready = self.path == "/readyz" and type(self).asked > type(self).ready_after
        self.send_response(200 if ready else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:  # quiet
        pass


def _server(ready_after: int) -> Iterator[str]:
    handler = type("Probe", (_Probe,), {"ready_after": ready_after, "asked": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def late() -> Iterator[str]:
    """A server whose probe answers 503 twice, then 200."""
    yield from _server(ready_after=2)


@pytest.fixture()
def never() -> Iterator[str]:
    """A server whose probe always answers 503."""
    yield from _server(ready_after=10**9)


def test_it_waits_through_not_ready_answers_until_the_probe_says_ready(late: str) -> None:
    assert not answers_ready(late)  # the first 503
    waited = wait_until_ready(late, seconds=10, pause=0.05)
    assert waited >= 0.05  # it had to wait one pause at least (the second 503)
    assert answers_ready(late)


def test_a_probe_that_never_says_ready_is_not_ready_in_time(never: str) -> None:
    with pytest.raises(NotReady, match=r"not ready within 0\.3 s"):
        wait_until_ready(never, seconds=0.3, pause=0.05)


def test_nothing_listening_is_not_ready() -> None:
    assert not answers_ready(f"http://127.0.0.1:{free_port()}", timeout=0.5)


def test_a_service_that_exited_is_not_waited_for(late: str) -> None:
    exited = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    exited.wait()
    with pytest.raises(NotReady, match="exited with 3"):
        wait_until_ready(late, exited, seconds=10, pause=0.05)


def _started(code: str) -> subprocess.Popen[bytes]:
    """A child in its own session that says "up" once its signal handlers are set."""
    process = subprocess.Popen(
        [sys.executable, "-c", f"{code}\nprint('up', flush=True)\nimport time; time.sleep(60)"],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert process.stdout is not None and process.stdout.readline() == b"up\n"
    return process


def test_stop_ends_a_server_with_sigterm() -> None:
    process = _started("")
    stop_process(process, grace=10)
    assert process.returncode == -signal.SIGTERM


def test_stop_kills_a_server_that_ignores_sigterm() -> None:
    process = _started("import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN)")
    stop_process(process, grace=0.5)
    assert process.returncode == -signal.SIGKILL


def test_stop_leaves_an_exited_server_alone() -> None:
    done = subprocess.Popen([sys.executable, "-c", "raise SystemExit(4)"], start_new_session=True)
    done.wait()
    stop_process(done)  # no killpg of a group that is gone (it would raise)
    assert done.returncode == 4
