"""A worker's side of a reload: prepare, then switch or abort, as the coordinator says.

The protocol and the coordinator's side are in ``serving.reload``. Each
worker polls the session's reload file (``SessionFolder``) from a daemon
thread, loads the model named at **prepare** without serving it, swaps it
in at **commit** (its request gate closed meanwhile) and opens the gate at
**open** or **abort**. A worker (re)started later loads the committed model.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from salarymodel.serving.gate import GATE, Gate
from salarymodel.serving.reload import (
    POLL_SECONDS,
    SWITCH_POLL_SECONDS,
    Loader,
    SessionFolder,
    Swapper,
    switch_model,
)

logger = logging.getLogger("salarymodel.serving")


class Follower:
    """A worker's side of reloads: prepare, then switch or abort, as the coordinator says."""

    def __init__(self, folder: SessionFolder, load: Loader, swap: Swapper,
                 version: Callable[[], str | None], timeout: float,
                 gate: Gate = GATE) -> None:  # fmt: skip
        self.folder = folder
        self.load, self.swap, self.version = load, swap, version
        self.timeout = timeout
        self.gate = gate
        self.pid = os.getpid()
        self._prepared: dict[str, Any] = {}
        self._prepared_id: str | None = None
        self._prepared_until = 0.0  # a coordinator that died must not keep us polling fast
        self._switched: str | None = None  # the last reload this worker switched for
        self._holding: str | None = None  # the reload whose "open" this worker awaits
        self._woken: str | None = None
        self.wake = threading.Event()  # set on a commit: a not-ready worker retries now

    def join(self) -> None:
        """Register (with the version served, or None when no model is loaded yet)."""
        request = self.folder.request()
        if request and request.get("phase") == "prepare":
            self._prepared_id = str(request["id"])  # begun before this worker: not asked
        self.folder.register(self.pid, self.version())

    def poll(self) -> None:
        """Act on the reload file's phase (each phase once)."""
        request = self.folder.request()
        if request is None or request.get("by") == self.pid:
            return
        reload_id, phase = str(request["id"]), str(request.get("phase"))
        tag, version = str(request["tag"]), str(request["model_version"])
        if phase == "prepare" and self._prepared_id != reload_id:
            self._prepared_id = reload_id
            if self.version() is not None:
                self._prepare(reload_id, tag)
        elif phase in ("commit", "open") and self._switched != reload_id:
            current = self.version()
            if current is None:
                if self._woken != reload_id:  # not ready: the retry loop loads it now
                    self._woken = reload_id
                    self.wake.set()
            else:
                self._switched = reload_id
                if current != version:
                    self._commit(reload_id, tag)
        elif phase == "abort":
            self._prepared.pop(reload_id, None)
        if phase in ("open", "abort") or (self._holding and self._holding != reload_id):
            self._release()

    def load_committed(self, load: Loader, start_up: Callable[[], Any]) -> Any:
        """The session's last committed model if a reload committed one, else the
        start-up model; loaded again if a reload commits meanwhile.

        A worker restarted after a reload loads the committed model directly:
        the start-up one may be gone or damaged, and serving it would mix versions.
        """
        committed = self.folder.committed()
        while True:
            serving = load(str(committed["tag"])) if committed else start_up()
            now = self.folder.committed()
            if now == committed:
                return serving
            committed = now

    def retry_until_loaded(
        self, load: Loader, start_up: Callable[[], Any], longest_pause: float,
        failed: Callable[[Exception, float], None], pause: float = 1.0,
    ) -> None:  # fmt: skip
        """Load the committed model until it loads and swap it in: ``pause``, then twice
        as long each time (up to ``longest_pause``), or at once when a reload commits.
        ``failed(error, next pause)`` hears of each failure."""
        while self.version() is None:
            self.wake.wait(pause)
            self.wake.clear()
            try:
                serving = self.load_committed(load, start_up)
            except Exception as error:  # whatever it is, this worker goes on trying
                pause = min(2 * pause, longest_pause)
                failed(error, pause)
                continue
            self.swap(serving)
            self.folder.register(self.pid, self.version())

    def switching(self) -> bool:
        """Is a switch near or under way (a model prepared, or this worker's requests held)?
        Then the reload file is read often: every worker's requests wait for the slowest."""
        waiting = bool(self._prepared) and time.monotonic() < self._prepared_until
        return self._holding is not None or waiting

    def _release(self) -> None:
        if self._holding is not None:
            self._holding = None
            self.gate.open()

    def _prepare(self, reload_id: str, tag: str) -> None:
        self._prepared.clear()  # an older reload that never committed
        self._prepared_until = time.monotonic() + 2 * self.timeout
        try:
            self._prepared[reload_id] = self.load(tag)
        except Exception as error:
            self.folder.ack(reload_id, "prepare", self.pid, str(error), self.version())
            return
        self.folder.ack(reload_id, "prepare", self.pid, None, self.version())

    def _commit(self, reload_id: str, tag: str) -> None:
        serving = self._prepared.pop(reload_id, None)
        try:
            if serving is None:  # started during the reload: load it now, then switch
                serving = self.load(tag)
            self._holding = reload_id
            switch_model(self.gate, serving, self.swap, self.timeout)
        except Exception as error:
            self._release()
            self.folder.ack(reload_id, "commit", self.pid, str(error), self.version())
            return
        self.folder.register(self.pid, self.version())
        self.folder.ack(reload_id, "commit", self.pid, None, self.version())

    def follow_forever(self) -> None:
        """Poll the reload file (a daemon thread's loop); a failure never stops the worker."""
        while True:
            time.sleep(SWITCH_POLL_SECONDS if self.switching() else POLL_SECONDS)
            try:
                self.poll()
            except Exception as error:
                logger.warning("reload follower: %s", error)
