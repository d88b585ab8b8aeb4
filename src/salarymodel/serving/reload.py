"""Swapping in a new champion on every worker at once, or on none.

``POST /admin/reload`` (loopback callers only) reaches one worker, the
coordinator. Every worker of a `salarymodel serve` session registers in a
session folder under ``models/serving/`` and follows a reload file there:

1. The coordinator exports the registry's champion to the BentoML store in a
   child process (MLflow is imported there, never in a worker), then loads it.
2. **prepare**: it writes the reload file naming the export; each other live
   worker loads that model without serving it yet and acknowledges with a
   file (loaded, or the error that stopped it).
3. Only when every live worker has loaded it does the coordinator write
   **commit**: each worker swaps the model in as one reference (a request in
   flight finishes with the model it started with) and acknowledges. The
   answer is 200 with each worker's version.
4. When a worker cannot load the model or does not answer within
   ``serving.reload_timeout_seconds``, the coordinator writes **abort**:
   nobody switches, and the answer (409) names the workers and their reasons.

So every worker serves one version before and after a reload, never two
versions side by side. A worker (re)started later in the session serves the
last committed model.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from salarymodel.config import resolve_path

logger = logging.getLogger("salarymodel.serving")

SESSION_ENV = "SALARYMODEL_SERVE_SESSION"
POLL_SECONDS = 0.25
# A relayed request's peer address is the proxy's, not the caller's.
_PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


def is_loopback(host: str | None, headers: Mapping[str, str] | None = None) -> bool:
    """True for a caller on this machine (127.0.0.0/8, ::1); never for a relayed request."""
    if headers is not None and any(name in headers for name in _PROXY_HEADERS):
        return False
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_json(path: Path, payload: Mapping[str, Any]) -> None:
    # Readers poll these files: a rename makes each write whole or absent.
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
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
        """This process's session: `salarymodel serve` names it; a lone process is its own."""
        session = os.environ.get(SESSION_ENV) or f"process-{os.getpid()}"
        return cls(resolve_path("models") / "serving" / session)

    def register(self, pid: int, version: str) -> None:
        """Record that worker ``pid`` serves ``version``."""
        _write_json(self.root / "workers" / f"{pid}.json", {"pid": pid, "version": version})

    def live_workers(self) -> dict[int, str]:
        """Registered workers still running, and the version each last reported."""
        found = {}
        for path in (self.root / "workers").glob("*.json"):
            entry = _read_json(path)
            if entry and _alive(int(entry["pid"])):
                found[int(entry["pid"])] = str(entry["version"])
        return found

    @property
    def request_file(self) -> Path:
        return self.root / "reload.json"

    def request(self) -> dict[str, Any] | None:
        """The newest reload request (its id, phase, tag and version), if any."""
        return _read_json(self.request_file)

    def ack(self, reload_id: str, phase: str, pid: int, error: str | None, version: str) -> None:
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


@dataclass
class ReloadOutcome:
    """What a reload did: every worker's version, or why nobody switched."""

    ok: bool
    version: str
    workers: dict[str, str] = field(default_factory=dict)  # pid -> version, or the reason
    error: str | None = None


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
) -> ReloadOutcome:
    """Run one reload from the worker ``pid`` that received it (see the module docstring).

    ``load`` raising means this worker cannot serve the model: nothing is
    asked of the others and the outcome says why.
    """
    pid = os.getpid() if pid is None else pid
    try:
        prepared = load(tag)
    except Exception as error:
        return ReloadOutcome(False, version, {str(pid): str(error)}, f"this worker: {error}")
    others = set(folder.live_workers()) - {pid}
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
        return ReloadOutcome(False, version, refused, f"not every worker could load it ({named})")
    _write_json(folder.request_file, {**base, "phase": "commit"})
    swap(prepared)
    folder.register(pid, version)
    done = _wait_for(folder, reload_id, "commit", others, timeout)
    workers = {str(pid): version} | {
        str(p): done[p]["version"] if p in done else "no confirmation" for p in sorted(others)
    }
    missing = [p for p, v in workers.items() if v != version]
    unconfirmed = f"workers {', '.join(missing)} did not confirm the switch" if missing else None
    return ReloadOutcome(not missing, version, workers, unconfirmed)


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
        time.sleep(POLL_SECONDS / 2)


class Follower:
    """A worker's side of reloads: prepare, then commit or abort, as the coordinator says."""

    def __init__(self, folder: SessionFolder, load: Loader, swap: Swapper,
                 version: Callable[[], str]) -> None:  # fmt: skip
        self.folder = folder
        self.load, self.swap, self.version = load, swap, version
        self.pid = os.getpid()
        self._prepared: dict[str, Any] = {}
        self._seen: tuple[str, str] | None = None

    def join(self) -> None:
        """Register, serving the session's last committed model if it differs from ours."""
        request = self.folder.request()
        if request and request.get("phase") == "commit":
            self._seen = (request["id"], "commit")
            if str(request["model_version"]) != self.version():
                self.swap(self.load(str(request["tag"])))
        elif request:
            self._seen = (request["id"], str(request.get("phase")))
        self.folder.register(self.pid, self.version())

    def poll(self) -> None:
        """Act on a new phase of the reload file, once."""
        request = self.folder.request()
        if request is None or request.get("by") == self.pid:
            return
        reload_id, phase = str(request["id"]), str(request.get("phase"))
        if self._seen == (reload_id, phase):
            return
        self._seen = (reload_id, phase)
        if phase == "prepare":
            self._prepare(reload_id, str(request["tag"]))
        elif phase == "commit":
            self._commit(reload_id, str(request["tag"]))
        else:
            self._prepared.pop(reload_id, None)

    def _prepare(self, reload_id: str, tag: str) -> None:
        self._prepared.clear()  # an older reload that never committed
        try:
            self._prepared[reload_id] = self.load(tag)
        except Exception as error:
            self.folder.ack(reload_id, "prepare", self.pid, str(error), self.version())
            return
        self.folder.ack(reload_id, "prepare", self.pid, None, self.version())

    def _commit(self, reload_id: str, tag: str) -> None:
        serving = self._prepared.pop(reload_id, None)
        try:
            self.swap(serving if serving is not None else self.load(tag))
        except Exception as error:
            self.folder.ack(reload_id, "commit", self.pid, str(error), self.version())
            return
        self.folder.register(self.pid, self.version())
        self.folder.ack(reload_id, "commit", self.pid, None, self.version())

    def follow_forever(self) -> None:
        """Poll the reload file (a daemon thread's loop); a failure never stops the worker."""
        while True:
            time.sleep(POLL_SECONDS)
            try:
                self.poll()
            except Exception as error:
                logger.warning("reload follower: %s", error)
