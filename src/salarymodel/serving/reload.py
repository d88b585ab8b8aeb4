"""Swapping in a new champion on every worker at once, or on none.

``POST /admin/reload`` (``serving.admin_auth`` says who may call it) reaches
one worker, the coordinator. Every worker of a `salarymodel serve` session
registers in a session folder under ``models/serving/`` and follows a reload
file there:

1. The coordinator exports the registry's champion to the BentoML store in a
   child process (MLflow is imported there, never in a worker), then loads it.
2. **prepare**: it writes the reload file naming the export; each other
   serving worker loads that model without serving it yet and acknowledges
   with a file (loaded, or the error that stopped it).
3. When every one has loaded it, the coordinator records the model as the
   session's **committed** model (``committed.json``) and writes **commit**:
   each worker closes its request gate (``serving.gate``: new requests wait),
   lets the requests already past it finish, swaps the model in (one
   reference) and acknowledges.
4. When every worker has switched, the coordinator writes **open**: the gates
   open and the held requests are answered by the new model. The answer is
   200 with each worker's version.
5. When a worker cannot load the model or does not answer within
   ``serving.reload_timeout_seconds``, the coordinator writes **abort**:
   nobody switches, and the answer (409) names the workers and their reasons.

So no answer from the old model is sent after an answer from the new one,
and every request sent after the 200 is answered by the new model; requests
that arrive during the switch wait (milliseconds, plus the longest request
in flight) instead. A worker (re)started later in the session loads the
committed model directly, never the start-up one.

The coordinator's side is here, with the session folder both sides read;
each worker's side is ``serving.follower``.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from salarymodel.config.settings import resolve_path
from salarymodel.serving.gate import GATE, Gate

logger = logging.getLogger("salarymodel.serving")

SESSION_ENV = "SALARYMODEL_SERVE_SESSION"
POLL_SECONDS = 0.25
# While a switch is under way a worker looks at the reload file this often:
# requests are held meanwhile.
SWITCH_POLL_SECONDS = 0.005


def in_bentoml_worker() -> bool:
    """Is this process a BentoML server worker (whose parent is the server)?"""
    return "_bentoml_impl" in sys.argv[0] and "worker" in sys.argv[0]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _started(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot): with the pid, unique."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "unknown"


def _write_json(path: Path, payload: Mapping[str, Any]) -> None:
    # Readers poll these files: a rename makes each write whole or absent.
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    temporary.write_text(json.dumps(payload))
    os.replace(temporary, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class SessionFolder:
    """The files through which the workers of one serving session coordinate."""

    root: Path

    @classmethod
    def current(cls) -> SessionFolder:
        """This process's session: `salarymodel serve` names it; the workers of a plain
        `bentoml serve` share their server's (its pid and start time); a lone process is
        its own."""
        session = os.environ.get(SESSION_ENV)
        if not session and in_bentoml_worker():
            parent = os.getppid()
            session = f"server-{parent}-{_started(parent)}"
        return cls(resolve_path("models") / "serving" / (session or f"process-{os.getpid()}"))

    def register(self, pid: int, version: str | None) -> None:
        """Record that worker ``pid`` serves ``version`` (None: no model loaded yet)."""
        _write_json(self.root / "workers" / f"{pid}.json", {"pid": pid, "version": version})

    def registered(self) -> dict[int, str | None]:
        """Every worker ever registered in the session and the version it last reported."""
        found: dict[int, str | None] = {}
        for path in (self.root / "workers").glob("*.json"):
            entry = _read_json(path)
            if entry:
                version = entry.get("version")
                found[int(entry["pid"])] = None if version is None else str(version)
        return found

    def live_workers(self) -> dict[int, str | None]:
        """Registered workers still running, and the version each last reported."""
        return {pid: v for pid, v in self.registered().items() if _alive(pid)}

    def has_served(self) -> bool:
        """Has a worker of this session served a model? Then a worker starting now is a
        restart, beside workers that serve: it must not stop the server."""
        return any(v is not None for v in self.registered().values())

    @property
    def request_file(self) -> Path:
        return self.root / "reload.json"

    def request(self) -> dict[str, Any] | None:
        """The newest reload request (its id, phase, tag and version), if any."""
        return _read_json(self.request_file)

    def commit(self, record: Mapping[str, Any]) -> None:
        """Record the model every worker of the session serves from now on."""
        _write_json(self.root / "committed.json", record)

    def committed(self) -> dict[str, Any] | None:
        """The last committed reload (its id, tag and version), or None before any."""
        return _read_json(self.root / "committed.json")

    def ack(self, reload_id: str, phase: str, pid: int, error: str | None,
            version: str | None) -> None:  # fmt: skip
        """Worker ``pid``'s answer to one phase of a reload."""
        payload = {"pid": pid, "ok": error is None, "error": error, "version": version}
        _write_json(self.root / "acks" / reload_id / f"{phase}.{pid}.json", payload)

    def acks(self, reload_id: str, phase: str) -> dict[int, dict[str, Any]]:
        """The answers received so far to one phase of a reload, by worker."""
        found = {}
        for path in (self.root / "acks" / reload_id).glob(f"{phase}.*.json"):
            entry = _read_json(path)
            if entry:
                found[int(entry["pid"])] = entry
        return found

    @contextmanager
    def lock(self) -> Iterator[None]:
        """One reload at a time in a session (two workers may each get a call)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / "reload.lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class ReloadOutcome:
    """What a reload did: every worker's version, or why nobody switched."""

    ok: bool
    version: str
    workers: dict[str, str] = field(default_factory=dict)  # pid -> version, or the reason
    error: str | None = None
    committed: bool = False  # did the coordinator write commit (some worker switched)?


Loader = Callable[[str], Any]  # an exported model's tag -> a ServingModel
Swapper = Callable[[Any], None]


def coordinate(
    folder: SessionFolder,
    tag: str,
    version: str,
    load: Loader,
    swap: Swapper,
    timeout: float,
    pid: int | None = None,
    gate: Gate = GATE,
) -> ReloadOutcome:
    """Run one reload from the worker ``pid`` that received it (see the module docstring).

    ``load`` raising means this worker cannot serve the model: nothing is
    asked of the others and the outcome says why.
    """
    pid = os.getpid() if pid is None else pid
    with folder.lock():
        try:
            prepared = load(tag)
        except Exception as error:
            return ReloadOutcome(False, version, {str(pid): str(error)}, f"this worker: {error}")
        # A worker with no model (restarting) serves nothing, so it cannot mix
        # versions: it is not waited for, and loads the committed model itself.
        others = {p for p, v in folder.live_workers().items() if v is not None} - {pid}
        reload_id = uuid.uuid4().hex
        base = {"id": reload_id, "tag": tag, "model_version": version, "by": pid}
        _write_json(folder.request_file, {**base, "phase": "prepare"})
        answers = _wait_for(folder, reload_id, "prepare", others, timeout)
        refused = {
            str(p): answers[p]["error"] if p in answers else f"no answer within {timeout:g} s"
            for p in sorted(others)
            if p not in answers or not answers[p]["ok"]
        }
        if refused:
            _write_json(folder.request_file, {**base, "phase": "abort"})
            named = "; ".join(f"worker {p}: {why}" for p, why in refused.items())
            return ReloadOutcome(
                False, version, refused, f"not every worker could load it ({named})"
            )
        folder.commit(base)  # a worker (re)started from now on loads this model
        _write_json(folder.request_file, {**base, "phase": "commit"})
        try:
            switch_model(gate, prepared, swap, timeout)
            folder.register(pid, version)
            switched = _wait_for_switch(folder, reload_id, version, pid, timeout)
        finally:  # whatever happened, no worker's requests stay held
            _write_json(folder.request_file, {**base, "phase": "open"})
            gate.open()
    workers = {str(pid): version, **{str(p): v for p, v in sorted(switched.items())}}
    missing = [p for p, v in workers.items() if v != version]
    unconfirmed = f"workers {', '.join(missing)} did not switch" if missing else None
    return ReloadOutcome(not missing, version, workers, unconfirmed, committed=True)


def switch_model(gate: Gate, serving: Any, swap: Swapper, timeout: float) -> None:
    """Close the gate, let the requests in flight finish, swap: the gate stays closed."""
    gate.close(longest=2 * timeout)
    if not gate.drain(timeout):
        logger.warning("requests still in flight after %g s: swapping anyway", timeout)
    swap(serving)


def _wait_for(
    folder: SessionFolder, reload_id: str, phase: str, workers: set[int], timeout: float
) -> dict[int, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        answers = folder.acks(reload_id, phase)
        # A worker that died meanwhile is not waited for (its replacement
        # starts on the last committed model).
        pending = {p for p in workers if p not in answers and _alive(p)}
        if not pending or time.monotonic() > deadline:
            return answers
        time.sleep(POLL_SECONDS / 10)


def _wait_for_switch(
    folder: SessionFolder, reload_id: str, version: str, pid: int, timeout: float
) -> dict[int, str]:
    """Each other live worker's version once it has switched (or the reason it did not).

    The set of workers is read again on each pass: a worker that started
    during the reload is waited for as well.
    """
    deadline = time.monotonic() + timeout
    while True:
        acks = folder.acks(reload_id, "commit")
        result: dict[int, str] = {}
        pending = False
        for worker, served in folder.live_workers().items():
            if worker == pid or served is None:
                continue
            ack = acks.get(worker)
            if ack is not None and not ack["ok"]:
                result[worker] = f"could not switch: {ack['error']}"
            elif ack is not None or served == version:
                # `ok` checked above: a refused switch never counts as switched.
                result[worker] = str(ack["version"] if ack is not None else served)
            else:
                result[worker] = "no confirmation"
                pending = True
        if not pending or time.monotonic() > deadline:
            return result
        time.sleep(SWITCH_POLL_SECONDS)
