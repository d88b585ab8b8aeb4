"""Reload is all or nothing: every worker serves the new champion, or none does.

The protocol (``serving.reload``) is tested with worker objects in threads,
one of which cannot load; then a real `salarymodel serve` with two workers,
where one is made unable to load a reloaded model, refuses the reload and
keeps one version on both workers. A served worker's modules are checked too.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from test_service import BIN, _stop, champion_root, free_port, project_env

from salarymodel.serving.reload import Follower, SessionFolder, coordinate

HEAVY = ("shap", "mlflow", "pandera", "matplotlib", "sklearn", "pandas", "lightgbm")


class _Worker:
    """A stand-in worker: what it serves, and a follower thread driving its reloads."""

    def __init__(self, folder: SessionFolder, pid: int, fails: bool) -> None:
        self.serving = "v1"
        self.fails = fails
        self.follower = Follower(folder, self.load, self.swap, lambda: self.serving)
        self.follower.pid = pid
        self.follower.join()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def load(self, tag: str) -> str:
        if self.fails:
            raise RuntimeError(f"cannot read {tag}")
        return tag.split(":")[1]

    def swap(self, serving: str) -> None:
        self.serving = serving

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.follower.poll()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join()


@pytest.fixture()
def pids(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    # Stand-in workers live in this process: their "pids" are alive as long as it is.
    import salarymodel.serving.reload as reload

    monkeypatch.setattr(reload, "_alive", lambda pid: pid in (101, 102, 103))
    return [101, 102, 103]


def _run(tmp_path: Path, pids: list[int], failing: set[int], timeout: float = 5.0):
    folder = SessionFolder(tmp_path / "session")
    workers = [_Worker(folder, pid, pid in failing) for pid in pids[1:]]
    me = {"serving": "v1"}
    try:
        folder.register(pids[0], "v1")
        outcome = coordinate(
            folder, "salarymodel:v2", "v2", lambda tag: tag.split(":")[1],
            lambda s: me.update(serving=s), timeout, pid=pids[0],
        )  # fmt: skip
        time.sleep(0.3)  # an aborted reload must not be acted on late either
        return outcome, [me["serving"], *(w.serving for w in workers)]
    finally:
        for worker in workers:
            worker.stop()


def test_every_worker_switches_when_all_can_load(tmp_path: Path, pids: list[int]) -> None:
    outcome, serving = _run(tmp_path, pids, failing=set())
    assert outcome.ok and outcome.error is None
    assert serving == ["v2", "v2", "v2"]
    assert outcome.workers == {"101": "v2", "102": "v2", "103": "v2"}


def test_no_worker_switches_when_one_cannot_load(tmp_path: Path, pids: list[int]) -> None:
    outcome, serving = _run(tmp_path, pids, failing={103})
    assert not outcome.ok
    assert serving == ["v1", "v1", "v1"]
    assert (
        set(outcome.workers) == {"103"} and "cannot read salarymodel:v2" in outcome.workers["103"]
    )
    assert "worker 103" in outcome.error


def test_a_worker_that_never_answers_aborts_the_reload(tmp_path: Path, pids: list[int]) -> None:
    folder = SessionFolder(tmp_path / "session")
    folder.register(103, "v1")  # registered and alive, but its follower never polls
    outcome, serving = _run(tmp_path, pids[:2], failing=set(), timeout=0.5)
    assert not outcome.ok and serving == ["v1", "v1"]
    assert outcome.workers == {"103": "no answer within 0.5 s"}


def test_a_worker_started_after_a_reload_serves_the_committed_model(
    tmp_path: Path, pids: list[int]
) -> None:
    _run(tmp_path, pids[:2], failing=set())
    late = _Worker(SessionFolder(tmp_path / "session"), 103, fails=False)
    late.stop()
    assert late.serving == "v2"


# ----- a real server with two workers ----------------------------------------------------
def _serve(root: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "salarymodel"), "serve", "--port", str(port), "--workers", "2"],
        cwd=root, env=env, stdout=(root / "serve-2.log").open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, (root / "serve-2.log").read_text()[-3000:]
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    _stop(process)
    raise AssertionError("not ready in 180 s")


def _versions_by_worker(url: str) -> dict[int, str]:
    """/model from each worker: fresh connections until both have answered."""
    seen: dict[int, str] = {}
    for _ in range(300):
        card = httpx.get(f"{url}/model", timeout=10).json()
        seen[card["worker"]] = card["model_version"]
        if len(seen) == 2:
            break
    assert len(seen) == 2, f"only workers {sorted(seen)} answered"
    return seen


def _worker_pids(server: int) -> list[int]:
    found = subprocess.run(
        ["pgrep", "-s", str(server), "-f", "_bentoml_impl.worker"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return [int(pid) for pid in found.stdout.split()]


@pytest.mark.slow
def test_a_reload_one_worker_cannot_follow_is_refused_and_both_keep_one_version(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    root = champion_root(tmp_path_factory)
    env = {**project_env(root), "SALARYMODEL_TEST_RELOAD_FAILS_IN_WORKER": "2"}
    process, url = _serve(root, env)
    try:
        before = _versions_by_worker(url)
        assert len(set(before.values())) == 1
        answer = httpx.post(f"{url}/admin/reload", timeout=120)
        assert answer.status_code == 409, answer.text
        body = answer.json()
        assert body["error"].startswith("nothing reloaded")
        assert len(body["workers"]) == 1  # the one worker that could not load, by pid
        (failed,) = body["workers"]
        assert int(failed) in before and "refuse" in body["workers"][failed]
        assert _versions_by_worker(url) == before
    finally:
        _stop(process)


@pytest.mark.slow
def test_a_reload_every_worker_can_follow_answers_with_every_workers_version(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    root = champion_root(tmp_path_factory)
    process, url = _serve(root, project_env(root))
    try:
        before = _versions_by_worker(url)
        answer = httpx.post(f"{url}/admin/reload", timeout=120)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert {int(p) for p in body["workers"]} == set(before)
        assert set(body["workers"].values()) == {body["model_version"]}
        assert _versions_by_worker(url) == dict.fromkeys(before, body["model_version"])
        # A served worker holds none of the heavy libraries (their compiled
        # modules would be mapped into it); MLflow ran in a child process.
        for pid in _worker_pids(process.pid):
            maps = Path(f"/proc/{pid}/maps").read_text()
            for name in HEAVY:
                assert f"/site-packages/{name}/" not in maps, f"worker {pid} loaded {name}"
    finally:
        _stop(process)


def test_a_worker_imports_none_of_the_heavy_libraries(tmp_path_factory) -> None:
    """The service as a worker runs it: load the exported model, answer every route."""
    root = champion_root(tmp_path_factory)
    export = subprocess.run(
        [str(BIN / "salarymodel"), "serve", "--export-only"],
        cwd=root, env=project_env(root), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert export.returncode == 0, export.stderr
    script = (
        "import sys\n"
        "from starlette.testclient import TestClient\n"
        "from salarymodel.service import SalaryService\n"
        "with TestClient(SalaryService.to_asgi()) as c:\n"
        "    job = {'job_title': 'Data Scientist', 'skills': ['python']}\n"
        "    assert c.post('/predict', json=job).status_code == 200\n"
        "    assert c.post('/explain', json=job).status_code == 200\n"
        "    assert c.post('/predict_batch', json={'jobs': [job] * 100}).status_code == 200\n"
        "    assert c.get('/model').status_code == 200\n"
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    env = {**project_env(root), "SALARYMODEL_MODEL_SOURCE": "bentoml"}
    done = subprocess.run(
        [str(BIN / "python"), "-c", script], cwd=root, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "", f"a worker imported: {done.stdout.strip()}"


def test_importing_the_cli_loads_no_heavy_library() -> None:
    script = (
        "import sys, salarymodel.cli\n"
        "heavy = ('shap', 'mlflow', 'bentoml', 'lightgbm', 'sklearn', 'matplotlib', 'pandera')\n"
        "print(' '.join(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [str(BIN / "python"), "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"`import salarymodel.cli` loaded: {done.stdout.strip()}"
