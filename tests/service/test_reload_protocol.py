"""The reload protocol's pieces (``serving.reload``), each on its own and in-process.

The session folder's files, a follower's answer to each phase (polled by
hand, one phase at a time), the coordinator's records and refusals, and the
follower's polling loop. Stand-in workers are real :class:`Follower` objects
in this process; only their pids and their models (strings) are made up.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import salarymodel.serving.reload as reload
from salarymodel.serving.follower import Follower
from salarymodel.serving.gate import Gate
from salarymodel.serving.reload import SESSION_ENV, SessionFolder, coordinate, in_bentoml_worker

ME, OTHER = 101, 102


@pytest.fixture()
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SessionFolder:
    # Stand-in workers live in this process: their "pids" are alive as long as it is.
    monkeypatch.setattr(reload, "_alive", lambda pid: pid in (ME, OTHER, 103))
    return SessionFolder(tmp_path / "session")


def _ask(folder: SessionFolder, reload_id: str, phase: str, by: int = ME, to: str = "v2") -> None:
    """Write the reload file as a coordinator does."""
    folder.request_file.parent.mkdir(parents=True, exist_ok=True)
    folder.request_file.write_text(json.dumps(
        {"id": reload_id, "tag": f"salarymodel:{to}", "model_version": to, "by": by,
         "phase": phase}
    ))  # fmt: skip


class _Model:
    """A stand-in worker's model and what its follower did with it."""

    def __init__(self, serving: str | None = "v1", fails: bool = False) -> None:
        self.serving, self.fails = serving, fails
        self.loaded: list[str] = []
        self.swapped: list[tuple[str, bool]] = []  # (model, was the gate closed)
        self.gate = Gate()

    def load(self, tag: str) -> str:
        self.loaded.append(tag)
        if self.fails:
            raise RuntimeError(f"cannot read {tag}")
        return tag.split(":")[1]

    def swap(self, serving: str) -> None:
        self.swapped.append((serving, self.gate.closed))
        self.serving = serving

    def follower(self, folder: SessionFolder, pid: int = OTHER) -> Follower:
        follower = Follower(folder, self.load, self.swap, lambda: self.serving, 1.0, self.gate)
        follower.pid = pid
        return follower


# ----- the session folder ------------------------------------------------------------------
def test_a_session_is_named_by_serve_by_the_bentoml_server_or_by_the_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SALARYMODEL_ROOT", str(tmp_path))
    monkeypatch.setenv(SESSION_ENV, "serve-42")
    assert SessionFolder.current().root == tmp_path / "models" / "serving" / "serve-42"
    monkeypatch.delenv(SESSION_ENV)
    monkeypatch.setattr(sys, "argv", ["pytest"])
    assert not in_bentoml_worker()
    assert SessionFolder.current().root.name == f"process-{os.getpid()}"
    monkeypatch.setattr(sys, "argv", ["/x/_bentoml_impl/worker/service.py", "--worker-id", "1"])
    assert in_bentoml_worker()
    parent = os.getppid()
    started = Path(f"/proc/{parent}/stat").read_text().rsplit(")", 1)[1].split()[19]
    assert started.isdigit()
    expected = tmp_path / "models" / "serving" / f"server-{parent}-{started}"
    assert SessionFolder.current().root == expected
    monkeypatch.setattr(sys, "argv", ["/x/_bentoml_impl/server/serve_http.py"])
    assert not in_bentoml_worker()  # the server itself is not a worker


def test_a_process_is_alive_until_it_has_exited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert reload._alive(os.getpid())
    # A live process is only asked about, never signalled; its start time is read even
    # when its name holds a ")" (the name is in parentheses in /proc/PID/stat).
    odd = tmp_path / "odd) name"
    odd.symlink_to(sys.executable)
    live = subprocess.Popen([str(odd), "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.2)
        assert reload._alive(live.pid) and live.poll() is None
        stat = Path(f"/proc/{live.pid}/stat").read_text()
        assert "odd) name" in stat
        assert reload._started(live.pid) == stat.rpartition(")")[2].split()[19]
    finally:
        live.kill()
        live.wait()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not reload._alive(child.pid)
    assert reload._started(child.pid) == "unknown"

    def not_ours(pid: int, signal: int) -> None:
        raise PermissionError(pid)

    monkeypatch.setattr(os, "kill", not_ours)  # another user's process: alive
    assert reload._alive(1)


def test_workers_register_and_the_dead_are_not_live(folder: SessionFolder) -> None:
    assert folder.registered() == {} and not folder.has_served()
    folder.register(ME, None)
    assert not folder.has_served()  # registered, but no model loaded yet
    folder.register(104, "v1")  # not alive
    assert folder.registered() == {ME: None, 104: "v1"}
    assert folder.live_workers() == {ME: None}
    assert folder.has_served()  # 104 served, even if it is gone
    folder.register(ME, "v2")
    assert folder.live_workers() == {ME: "v2"}
    (folder.root / "workers" / "105.json").write_text("{torn")  # half written: skipped
    assert folder.registered() == {ME: "v2", 104: "v1"}
    assert [p.name for p in folder.root.rglob("*.tmp")] == []  # written whole, by rename


def test_requests_commits_and_answers_are_read_back(folder: SessionFolder) -> None:
    assert folder.request() is None and folder.committed() is None
    _ask(folder, "a", "prepare")
    assert folder.request() == {"id": "a", "tag": "salarymodel:v2", "model_version": "v2",
                                "by": ME, "phase": "prepare"}  # fmt: skip
    folder.commit({"id": "a", "tag": "salarymodel:v2"})
    assert folder.committed() == {"id": "a", "tag": "salarymodel:v2"}
    folder.ack("a", "prepare", OTHER, None, "v1")
    folder.ack("a", "prepare", 103, "cannot read", "v1")
    folder.ack("a", "commit", OTHER, None, "v2")
    folder.ack("b", "prepare", 103, None, "v1")
    assert folder.acks("a", "prepare") == {
        OTHER: {"pid": OTHER, "ok": True, "error": None, "version": "v1"},
        103: {"pid": 103, "ok": False, "error": "cannot read", "version": "v1"},
    }
    assert set(folder.acks("a", "commit")) == {OTHER} and folder.acks("c", "prepare") == {}


def test_one_reload_at_a_time(folder: SessionFolder) -> None:
    order: list[str] = []

    def second() -> None:
        with folder.lock():
            order.append("second")

    with folder.lock():
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.1)
        order.append("first done")
    thread.join(5)
    assert order == ["first done", "second"]


# ----- a follower, one phase at a time -------------------------------------------------------
def test_a_follower_loads_on_prepare_switches_on_commit_and_opens_on_open(
    folder: SessionFolder,
) -> None:
    model = _Model()
    follower = model.follower(folder)
    follower.poll()  # no reload yet
    assert model.loaded == [] and not follower.switching()
    _ask(folder, "a", "prepare")
    follower.poll()
    follower.poll()  # each phase once
    assert model.loaded == ["salarymodel:v2"] and model.serving == "v1"
    assert folder.acks("a", "prepare") == {
        OTHER: {"pid": OTHER, "ok": True, "error": None, "version": "v1"}
    }
    assert follower.switching()  # a model prepared: the reload file is read often
    _ask(folder, "a", "commit")
    follower.poll()
    follower.poll()
    assert model.swapped == [("v2", True)]  # swapped once, requests held meanwhile
    assert model.loaded == ["salarymodel:v2"]  # the prepared model, not loaded again
    assert folder.acks("a", "commit") == {
        OTHER: {"pid": OTHER, "ok": True, "error": None, "version": "v2"}
    }
    assert folder.registered() == {OTHER: "v2"}
    assert model.gate.closed and follower.switching()  # held until every worker switched
    _ask(folder, "a", "open")
    follower.poll()
    assert not model.gate.closed and not follower.switching()
    assert model.swapped == [("v2", True)]


def test_a_follower_ignores_its_own_reload(folder: SessionFolder) -> None:
    model = _Model()
    follower = model.follower(folder, pid=ME)
    for phase in ("prepare", "commit", "open"):
        _ask(folder, "a", phase, by=ME)
        follower.poll()
    assert model.loaded == [] and model.swapped == [] and folder.acks("a", "prepare") == {}


def test_a_follower_that_cannot_load_says_why(folder: SessionFolder) -> None:
    model = _Model(fails=True)
    follower = model.follower(folder)
    _ask(folder, "a", "prepare")
    follower.poll()
    assert folder.acks("a", "prepare") == {
        OTHER: {"pid": OTHER, "ok": False, "error": "cannot read salarymodel:v2", "version": "v1"}
    }
    _ask(folder, "a", "abort")
    follower.poll()
    assert model.swapped == [] and not model.gate.closed and not follower.switching()


def test_an_aborted_reload_drops_the_prepared_model(folder: SessionFolder) -> None:
    model = _Model()
    follower = model.follower(folder)
    _ask(folder, "a", "prepare")
    follower.poll()
    assert follower.switching()
    _ask(folder, "a", "abort")
    follower.poll()
    assert not follower.switching() and model.swapped == [] and model.serving == "v1"


def test_a_follower_that_serves_nothing_is_not_asked_but_woken_once(
    folder: SessionFolder,
) -> None:
    model = _Model(serving=None)
    follower = model.follower(folder)
    _ask(folder, "a", "prepare")
    follower.poll()
    assert model.loaded == [] and folder.acks("a", "prepare") == {}
    _ask(folder, "a", "commit")
    follower.poll()
    assert follower.wake.is_set() and model.swapped == []  # its retry loop loads it
    follower.wake.clear()
    _ask(folder, "a", "open")
    follower.poll()
    assert not follower.wake.is_set()  # woken once per reload
    _ask(folder, "b", "commit")
    follower.poll()
    assert follower.wake.is_set()


def test_a_follower_already_on_the_version_does_not_switch(folder: SessionFolder) -> None:
    model = _Model(serving="v2")
    follower = model.follower(folder)
    _ask(folder, "a", "commit")
    follower.poll()
    assert model.swapped == [] and folder.acks("a", "commit") == {}
    assert not model.gate.closed


def test_a_follower_started_during_a_reload_loads_at_commit(folder: SessionFolder) -> None:
    _ask(folder, "a", "prepare")
    model = _Model()
    follower = model.follower(folder)
    follower.join()  # the prepare began before it: not asked
    assert folder.registered() == {OTHER: "v1"}
    follower.poll()
    assert model.loaded == [] and folder.acks("a", "prepare") == {}
    _ask(folder, "a", "commit")
    follower.poll()
    assert model.loaded == ["salarymodel:v2"] and model.swapped == [("v2", True)]
    assert folder.acks("a", "commit")[OTHER]["ok"]


def test_a_follower_that_cannot_switch_opens_its_gate_and_says_why(
    folder: SessionFolder,
) -> None:
    model = _Model()
    follower = model.follower(folder)

    def broken(serving: str) -> None:
        raise RuntimeError("out of memory")

    follower.swap = broken
    _ask(folder, "a", "prepare")
    follower.poll()
    _ask(folder, "a", "commit")
    follower.poll()
    assert folder.acks("a", "commit") == {
        OTHER: {"pid": OTHER, "ok": False, "error": "out of memory", "version": "v1"}
    }
    assert not model.gate.closed and not follower.switching()


def test_a_newer_reload_releases_requests_held_for_an_older_one(folder: SessionFolder) -> None:
    model = _Model()
    follower = model.follower(folder)
    _ask(folder, "a", "commit")  # its "open" never comes: the coordinator died
    follower.poll()
    assert model.gate.closed
    _ask(folder, "b", "prepare", to="v3")
    follower.poll()
    assert not model.gate.closed and model.loaded[-1] == "salarymodel:v3"


def test_a_prepared_model_stops_fast_polling_after_twice_the_timeout(
    folder: SessionFolder,
) -> None:
    model = _Model()
    follower = model.follower(folder)
    follower.timeout = 0.05
    _ask(folder, "a", "prepare")
    follower.poll()
    assert follower.switching()
    time.sleep(0.15)
    assert not follower.switching()  # the coordinator died between prepare and commit


def test_the_follower_loop_survives_a_failure_and_polls_faster_while_switching(
    folder: SessionFolder, caplog: pytest.LogCaptureFixture
) -> None:
    model = _Model()
    follower = model.follower(folder)
    calls: list[float] = []

    class Stop(BaseException):
        """Ends the endless loop (not an Exception, which it survives)."""

    def poll() -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RuntimeError("the reload file is unreadable")
        if len(calls) == 4:
            raise Stop

    _ask(folder, "a", "prepare")
    follower.poll()  # a model prepared: the switch is near, poll every few milliseconds
    assert follower.switching()
    follower.poll = poll  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="salarymodel.serving"), pytest.raises(Stop):
        follower.follow_forever()
    assert len(calls) == 4
    assert calls[-1] - calls[0] < 0.2  # three pauses of SWITCH_POLL_SECONDS, not POLL_SECONDS
    assert [r.getMessage() for r in caplog.records] == [
        "reload follower: the reload file is unreadable"
    ]
    _ask(folder, "a", "abort")
    Follower.poll(follower)
    assert not follower.switching()
    calls.clear()
    start = time.monotonic()
    with pytest.raises(Stop):
        follower.follow_forever()
    assert 4 * reload.POLL_SECONDS <= time.monotonic() - start < 4 * reload.POLL_SECONDS + 0.5


# ----- the coordinator -----------------------------------------------------------------------
def _following(
    folder: SessionFolder, model: _Model, pid: int
) -> tuple[threading.Event, threading.Thread]:
    follower = model.follower(folder, pid)
    follower.join()
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(0.005):
            follower.poll()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return stop, thread


def _coordinate(folder: SessionFolder, timeout: float = 2.0):
    me = _Model()
    folder.register(ME, "v1")
    outcome = coordinate(folder, "salarymodel:v2", "v2", me.load, me.swap, timeout, pid=ME,
                         gate=me.gate)  # fmt: skip
    return outcome, me, me.gate


@contextmanager
def _answering_prepare_only(folder: SessionFolder, followers: list[Follower]) -> Iterator[None]:
    """While inside: ``followers`` answer a reload's prepare, then never switch.

    Each follower polls once per reload: a second poll could read the commit the
    coordinator writes right after the last prepare answer, and switch."""
    stop = threading.Event()
    answered: set[str] = set()

    def prepare_only() -> None:
        while not stop.wait(0.005):
            request = folder.request()
            if request and request["phase"] == "prepare" and request["id"] not in answered:
                answered.add(request["id"])
                for follower in followers:
                    follower.poll()

    thread = threading.Thread(target=prepare_only, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def test_a_coordinator_that_cannot_load_asks_nobody(folder: SessionFolder) -> None:
    me = _Model(fails=True)
    outcome = coordinate(folder, "salarymodel:v2", "v2", me.load, me.swap, 1.0, pid=ME)
    assert (outcome.ok, outcome.version, outcome.committed) == (False, "v2", False)
    assert outcome.workers == {str(ME): "cannot read salarymodel:v2"}
    assert outcome.error == "this worker: cannot read salarymodel:v2"
    assert folder.request() is None and folder.committed() is None


def test_a_reload_writes_prepare_commit_open_and_records_the_committed_model(
    folder: SessionFolder,
) -> None:
    other = _Model()
    stop, thread = _following(folder, other, OTHER)
    folder.register(103, None)  # restarting, serves nothing: not waited for
    try:
        outcome, me, gate = _coordinate(folder)
    finally:
        stop.set()
        thread.join()
    assert outcome.ok and outcome.committed and outcome.error is None
    assert outcome.workers == {str(ME): "v2", str(OTHER): "v2"}
    assert me.swapped == [("v2", True)] and other.swapped == [("v2", True)]
    request = folder.request()
    assert request is not None and request["phase"] == "open" and not gate.closed
    assert folder.committed() == {"id": request["id"], "tag": "salarymodel:v2",
                                  "model_version": "v2", "by": ME}  # fmt: skip
    assert folder.registered()[ME] == "v2"
    assert set(folder.acks(request["id"], "prepare")) == {OTHER}


def test_a_refused_reload_writes_abort_and_names_each_worker(folder: SessionFolder) -> None:
    broken, silent = _Model(fails=True), 103
    stop, thread = _following(folder, broken, OTHER)
    folder.register(silent, "v1")  # alive, never answers
    try:
        outcome, me, gate = _coordinate(folder, timeout=0.3)
    finally:
        stop.set()
        thread.join()
    assert (outcome.ok, outcome.committed, outcome.version) == (False, False, "v2")
    assert outcome.workers == {str(OTHER): "cannot read salarymodel:v2",
                               str(silent): "no answer within 0.3 s"}  # fmt: skip
    assert outcome.error == (
        "not every worker could load it (worker 102: cannot read salarymodel:v2; "
        "worker 103: no answer within 0.3 s)"
    )
    request = folder.request()
    assert request is not None and request["phase"] == "abort"
    assert me.swapped == [] and folder.committed() is None and not gate.closed


def test_a_worker_that_dies_during_a_reload_is_not_waited_for(
    folder: SessionFolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder.register(OTHER, "v1")  # never answers, and is gone
    monkeypatch.setattr(reload, "_alive", lambda pid: pid == ME)
    start = time.monotonic()
    outcome, _, _ = _coordinate(folder, timeout=5.0)
    assert outcome.ok and outcome.workers == {str(ME): "v2"}
    assert time.monotonic() - start < 2.0  # not the 5 s timeout


def test_a_switch_unconfirmed_in_time_is_named(folder: SessionFolder) -> None:
    other = _Model()
    follower = other.follower(folder, OTHER)
    follower.join()
    with _answering_prepare_only(folder, [follower]):
        outcome, me, gate = _coordinate(folder, timeout=0.3)
    assert not outcome.ok and outcome.committed
    assert outcome.workers == {str(ME): "v2", str(OTHER): "no confirmation"}
    assert outcome.error == f"workers {OTHER} did not switch"
    assert me.swapped == [("v2", True)] and not gate.closed


def test_a_worker_without_a_model_retries_the_start_up_one_and_registers_it(
    folder: SessionFolder,
) -> None:
    """No reload committed yet: the start-up model is retried (pause 1 s, doubled, capped)."""
    model = _Model(serving=None)
    follower = model.follower(folder)
    tries: list[str] = []

    def start_up() -> str:
        tries.append("start-up")
        if len(tries) < 3:
            raise RuntimeError(f"the start-up model is damaged ({len(tries)})")
        return "v1"

    heard: list[tuple[str, float]] = []

    def failed(error: Exception, pause: float) -> None:
        heard.append((str(error), pause))
        follower.wake.set()  # as a commit would: retry now, not after the pause

    follower.wake.set()
    follower.retry_until_loaded(model.load, start_up, 3.0, failed)
    assert heard == [("the start-up model is damaged (1)", 2.0),
                     ("the start-up model is damaged (2)", 3.0)]  # fmt: skip
    assert model.serving == "v1" and model.loaded == [] and not follower.wake.is_set()
    assert folder.registered() == {OTHER: "v1"}


# ----- the switch and its confirmations ----------------------------------------------------
def test_a_switch_holds_requests_for_at_most_twice_the_timeout_and_says_when_it_swaps_anyway(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The gate closes for 2 x timeout at most (a dead coordinator must not hold requests
    forever); a request still in flight after the timeout is named in the log, and the
    model is swapped all the same."""
    model = _Model()
    before = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="salarymodel.serving"):
        reload.switch_model(model.gate, "v2", model.swap, 0.5)
    assert model.swapped == [("v2", True)] and model.gate.closed
    until = model.gate._closed_until
    assert until is not None and before + 1.0 <= until <= time.monotonic() + 1.0
    assert not caplog.records  # nothing in flight: no warning
    held = _Model()
    held.gate.in_flight = 1  # a request past the gate that never finishes
    with caplog.at_level(logging.WARNING, logger="salarymodel.serving"):
        reload.switch_model(held.gate, "v2", held.swap, 0.05)
    assert held.swapped == [("v2", True)]
    assert [r.getMessage() for r in caplog.records] == [
        "requests still in flight after 0.05 s: swapping anyway"
    ]


def test_a_commit_acknowledged_is_the_confirmation_and_a_registered_version_too(
    folder: SessionFolder,
) -> None:
    """A worker's switch is confirmed by its commit answer (its version as answered), or by
    its registration already on the new version; a refused answer never counts."""
    folder.register(OTHER, "v1")  # its registration lags its answer
    folder.ack("r1", "commit", OTHER, None, "v2")
    folder.register(103, "v2")  # registered on the new version, no answer (yet)
    assert reload._wait_for_switch(folder, "r1", "v2", ME, 1.0) == {OTHER: "v2", 103: "v2"}
    folder.ack("r1", "commit", 103, "disk full", "v1")
    switched = reload._wait_for_switch(folder, "r1", "v2", ME, 1.0)
    assert switched == {OTHER: "v2", 103: "could not switch: disk full"}


def test_a_reload_committed_while_a_restarted_worker_loads_is_loaded_instead(
    folder: SessionFolder,
) -> None:
    """A worker restarting loads the committed model; when a reload commits meanwhile, it
    loads that one, never the one it started with (nor the start-up model)."""
    folder.commit({"id": "r1", "tag": "salarymodel:v2", "model_version": "v2"})
    model = _Model(serving=None)
    loaded: list[str] = []

    def load(tag: str) -> str:
        loaded.append(tag)
        if len(loaded) == 1:  # a second reload commits while the first model loads
            folder.commit({"id": "r2", "tag": "salarymodel:v3", "model_version": "v3"})
        return model.load(tag)

    def start_up() -> str:
        raise AssertionError("the start-up model is not loaded after a reload")

    assert model.follower(folder).load_committed(load, start_up) == "v3"
    assert loaded == ["salarymodel:v2", "salarymodel:v3"]


def test_the_coordinator_stops_waiting_once_every_worker_has_answered(
    folder: SessionFolder,
) -> None:
    """Answers in: the coordinator goes on at once, not at the end of its timeout."""
    folder.ack("r1", "prepare", OTHER, None, "v1")
    folder.ack("r1", "prepare", 103, "cannot read it", "v1")
    started = time.monotonic()
    answers = reload._wait_for(folder, "r1", "prepare", {OTHER, 103}, 5.0)
    assert time.monotonic() - started < 2.5
    assert {p: a["ok"] for p, a in answers.items()} == {OTHER: True, 103: False}


def test_an_answer_that_comes_later_is_seen_within_a_fraction_of_a_second(
    folder: SessionFolder,
) -> None:
    """The coordinator looks for answers often (POLL_SECONDS / 10): requests are held."""
    late = threading.Timer(0.05, folder.ack, ("r1", "prepare", OTHER, None, "v1"))
    started = time.monotonic()
    late.start()
    answers = reload._wait_for(folder, "r1", "prepare", {OTHER}, 5.0)
    late.join()
    assert set(answers) == {OTHER} and time.monotonic() - started < 1.0


def test_a_reload_to_the_version_a_worker_already_serves_is_confirmed_by_its_registration(
    folder: SessionFolder,
) -> None:
    """A worker already on the version loads it at prepare but has nothing to switch at
    commit: its registration confirms it, and the outcome names the version."""
    other = _Model(serving="v2")
    stop, thread = _following(folder, other, OTHER)
    try:
        started = time.monotonic()
        outcome, _, _ = _coordinate(folder, timeout=3.0)
    finally:
        stop.set()
        thread.join()
    assert outcome.ok and (outcome.version, outcome.error) == ("v2", None)
    assert outcome.workers == {str(ME): "v2", str(OTHER): "v2"} and other.swapped == []
    assert time.monotonic() - started < 2.5  # not held until the timeout


def test_a_reload_without_a_pid_is_this_process_s(folder: SessionFolder) -> None:
    me = _Model()
    outcome = coordinate(folder, "salarymodel:v2", "v2", me.load, me.swap, 1.0, gate=me.gate)
    assert outcome.ok and outcome.workers == {str(os.getpid()): "v2"}
    request = folder.request()
    assert request is not None and request["by"] == os.getpid()


def test_every_worker_that_did_not_switch_is_named(folder: SessionFolder) -> None:
    followers = []
    for pid in (OTHER, 103):
        follower = _Model().follower(folder, pid)
        follower.join()
        followers.append(follower)
    with _answering_prepare_only(folder, followers):  # both answer, neither switches
        outcome, _, _ = _coordinate(folder, timeout=0.3)
    assert not outcome.ok and outcome.error == f"workers {OTHER}, 103 did not switch"


def test_a_follower_that_could_not_switch_does_not_try_again_on_each_poll(
    folder: SessionFolder,
) -> None:
    model = _Model()
    follower = model.follower(folder)
    tries: list[str] = []

    def broken(serving: str) -> None:
        tries.append(serving)
        raise RuntimeError("out of memory")

    follower.swap = broken
    _ask(folder, "a", "prepare")
    follower.poll()
    _ask(folder, "a", "commit")
    for _ in range(3):
        follower.poll()
    assert tries == ["v2"] and model.loaded == ["salarymodel:v2"]


def test_a_prepared_model_keeps_fast_polling_for_twice_the_timeout(folder: SessionFolder) -> None:
    follower = _Model().follower(folder)
    follower.timeout = 10.0
    _ask(folder, "a", "prepare")
    before = time.monotonic()
    follower.poll()
    assert before + 20.0 <= follower._prepared_until <= time.monotonic() + 20.0


def test_a_follower_answers_as_its_own_process(folder: SessionFolder) -> None:
    model = _Model()
    follower = Follower(folder, model.load, model.swap, lambda: model.serving, 1.0, model.gate)
    assert follower.pid == os.getpid()
    follower.join()
    assert folder.registered() == {os.getpid(): "v1"}
