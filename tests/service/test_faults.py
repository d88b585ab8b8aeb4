"""Faults: damaged or missing model files, an unreachable tracking store, huge bodies.

The service must refuse to start with a message that says what is wrong
(never fall back to an older model, never flap), and keep answering, with
bounded memory, when a caller sends 10 MB.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import httpx
import psutil
import pytest
from helpers.served import (
    JOB,
    SHARED,
    champion_root,
    free_port,
    project_env,
    ready_or_fail,
    served_url,
)

from salarymodel.serving.schemas import MAX_BODY_BYTES

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return champion_root(tmp_path_factory)


def _copy_project(source: Path, copy: Path) -> Path:
    copy.mkdir()
    for name in ("configs", "mlflow.db", "models", "bentoml_home"):
        if (source / name).is_dir():
            shutil.copytree(source / name, copy / name, symlinks=True)
        elif (source / name).exists():
            shutil.copy2(source / name, copy / name)
    (copy / "data").symlink_to((source / "data").resolve())
    return copy


@pytest.fixture(scope="module")
def exported(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the champion's project, exported once (`serve --export-only`): its
    registry cache and BentoML store hold the champion, as after any served start."""
    copy = _copy_project(root, tmp_path_factory.mktemp("faults") / "exported")
    done = _export_only(copy)
    assert done.returncode == 0, done.stderr[-3000:]
    return copy


@pytest.fixture()
def project(exported: Path, tmp_path: Path) -> Path:
    """A copy of the exported project (registry cache and BentoML store included).

    The MLflow store records absolute artifact paths, so the copy's registry
    artifacts are the original's: tests that damage them restore them.
    """
    return _copy_project(exported, tmp_path / "project")


def _artifact_bundle(project: Path) -> Path:
    """The registry's stored bundle of the champion (where MLflow logged it)."""
    from salarymodel.config.settings import load_settings
    from salarymodel.registry.champion import champion_version
    from salarymodel.registry.store import connect

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SALARYMODEL_ROOT", str(project))
        settings = load_settings()
        client = connect(settings)
        version = champion_version(client, settings)
        model_id = version.source.removeprefix("models:/")  # MLflow 3: the logged model
        location = client.get_logged_model(model_id).artifact_location
    bundle = Path(location.removeprefix("file://")) / "artifacts" / "bundle"
    assert (bundle / "manifest.json").is_file(), bundle
    return bundle


@pytest.fixture()
def damaged_store(project: Path) -> Iterator[tuple[Path, Path]]:
    """(project, stored bundle): the bundle's files are restored after the test."""
    bundle = _artifact_bundle(project)
    backup = project.parent / "bundle-backup"
    shutil.copytree(bundle, backup)
    shutil.rmtree(project / "models" / "registry-cache", ignore_errors=True)
    try:
        yield project, bundle
    finally:
        shutil.rmtree(bundle)
        shutil.copytree(backup, bundle)


def _flip_a_digit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    at = next(i for i in range(middle, len(data)) if chr(data[i]).isdigit())
    data[at] = ord("1") if data[at] != ord("1") else ord("2")
    path.write_bytes(bytes(data))


class ServerStarted(BaseException):
    """Raised where `serve` would start the HTTP server (no ``except Exception`` hides it)."""


def _no_server(*args: object) -> None:
    raise ServerStarted(f"serve started a server {args} instead of refusing")


def _serve(project: Path, extra_env: dict[str, str] | None = None):
    """`salarymodel serve` expecting it to refuse: (exit code, output, seconds)."""
    argv = ["serve", "--port", str(free_port()), "--workers", "1"]
    return _run_main(project, argv, extra_env)


def _run_main(project: Path, argv: list[str], extra_env: dict[str, str] | None = None):
    """The console script's ``main`` run in ``project`` in this process, its error
    handling included, with the environment and folder the process would have:
    (exit code, output, seconds). What `serve` refuses, and why, is decided before any
    server process starts; starting one fails the test.
    """
    from salarymodel.cli.app import main
    from salarymodel.serving import server

    env = {**project_env(project), "COLUMNS": "1000", **(extra_env or {})}
    output = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        for name in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
            patch.delenv(name, raising=False)  # what `connect` sets is put back afterwards
        patch.chdir(project)
        patch.setattr(server, "serve", _no_server)
        patch.setattr(sys, "argv", ["salarymodel", *argv])
        started = time.perf_counter()
        with redirect_stdout(output), redirect_stderr(output), pytest.raises(SystemExit) as done:
            main()
        seconds = time.perf_counter() - started
    # Rich wraps long messages (at COLUMNS): compare words, not lines.
    return done.value.code, " ".join(output.getvalue().split()), seconds


# ----- damaged or missing model files ----------------------------------------------------------
@pytest.mark.parametrize(
    ("damage", "named"),
    [
        (lambda b: _flip_a_digit(b / "booster.txt"), "booster.txt is corrupt"),
        (lambda b: (b / "booster_low.txt").write_bytes(b""), "booster_low.txt is corrupt"),
        (lambda b: (b / "features.json").unlink(), "missing features.json"),
    ],
    ids=["flipped-digit", "emptied-range-booster", "missing-vocabulary"],
)
def test_serve_refuses_damaged_registry_files_naming_the_file(damaged_store, damage, named):
    project, bundle = damaged_store
    damage(bundle)
    code, output, seconds = _serve(project)
    assert code != 0
    assert named in output and "cannot be served" in output, output
    assert "Traceback" not in output
    assert seconds < 60
    # Nothing was exported or started: no damaged copy lies in the BentoML store.
    assert "serving salarymodel" not in output


def test_evaluate_refuses_a_damaged_champion_bundle_clearly(damaged_store) -> None:
    # The BLS reality check reads the champion's bundle: it once failed there with
    # "unexpected RegistryError", outside the command's error handling.
    project, bundle = damaged_store
    (bundle / "features.json").unlink()
    code, output, _ = _run_main(project, ["evaluate"])
    assert code == 2
    assert "missing features.json" in output and "cannot be served" in output, output
    assert "unexpected" not in output and "Traceback" not in output


def _export_only(project: Path) -> subprocess.CompletedProcess:
    """`salarymodel serve --export-only`: load the champion, export it, exit."""
    return subprocess.run(
        [str(BIN / "salarymodel"), "serve", "--export-only"],
        cwd=project,
        env=project_env(project),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_damaged_registry_cache_is_downloaded_again(project: Path) -> None:
    booster = next((project / "models" / "registry-cache").rglob("booster.txt"))
    sound = booster.read_bytes()
    _flip_a_digit(booster)
    done = _export_only(project)
    assert done.returncode == 0, done.stderr
    assert "downloading v" in done.stdout + done.stderr
    assert booster.read_bytes() == sound


def test_a_damaged_export_is_replaced_from_the_registry(project: Path) -> None:
    exported = next((project / "bentoml_home" / "models" / "salarymodel").glob("v*"))
    booster = exported / "bundle" / "booster.txt"
    sound = booster.read_bytes()
    _flip_a_digit(booster)
    done = _export_only(project)
    assert done.returncode == 0, done.stderr
    assert "re-exporting" in done.stdout + done.stderr
    assert booster.read_bytes() == sound


def test_bentoml_workers_refuse_a_damaged_export_and_the_server_exits(project: Path) -> None:
    """Served straight from the BentoML store (as a Bento is): no endless respawning."""
    exported = next((project / "bentoml_home" / "models" / "salarymodel").glob("v*"))
    features = exported / "bundle" / "features.json"
    features.write_text(features.read_text() + " ")
    env = {**project_env(project), "SALARYMODEL_MODEL_SOURCE": "bentoml"}
    log = project / "bentoml-serve.log"
    command = [sys.executable, "-m", "bentoml", "serve",
               "salarymodel.serving.service:SalaryService",
               "--port", str(free_port())]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=project, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        process.wait(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail(f"the server kept running on a damaged model: {log.read_text()[-2000:]}")
    text = log.read_text()
    assert "refusing to start" in text and "features.json is corrupt" in text


def test_serve_without_any_model_says_to_train(tmp_path: Path, root: Path) -> None:
    # A path longer than 80 columns: Rich wrapped it (at a "/") before the error was
    # printed unwrapped, and the path no longer read whole.
    project = tmp_path / ("a-long-project-folder-name-" * 3) / "empty"
    project.mkdir(parents=True)
    code, output, _ = _serve(project)
    assert code != 0
    assert f"no {project}/configs/salarymodel.yaml" in output and "Traceback" not in output
    shutil.copytree(root / "configs", project / "configs")
    code, output, _ = _serve(project)
    assert code != 0
    assert "run `salarymodel train` first" in output and "Traceback" not in output


# ----- the tracking store ------------------------------------------------------------------------
def test_an_unreachable_tracking_store_fails_fast_and_clearly(project: Path) -> None:
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    code, output, seconds = _serve(project, {"SALARYMODEL_TRACKING_URI": uri})
    assert code != 0
    assert f"tracking store {uri} is unreachable" in output
    assert "Traceback" not in output
    assert seconds < 30  # MLflow's default retries took about four minutes


def test_a_tracking_store_in_a_missing_folder_is_named(project: Path) -> None:
    uri = f"sqlite:///{project}/gone/mlflow.db"
    code, output, _ = _run_main(project, ["versions"], {"SALARYMODEL_TRACKING_URI": uri})
    assert code != 0
    assert "does not exist" in output and "Traceback" not in output
    assert not (project / "gone").exists()  # nothing created by looking


# ----- huge bodies against the served process --------------------------------------------------
def _tree_rss(pid: int) -> int:
    parent = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [parent, *parent.children(recursive=True)])


def test_ten_megabyte_bodies_are_refused_with_bounded_memory(root: Path, request) -> None:
    url = served_url(root, request)
    pid = SHARED["process"].pid
    before = _tree_rss(pid)
    ten_mb = 10 * 1024**2
    headers = {"content-type": "application/json"}
    filler = json.dumps({**JOB, "job_title": "x" * ten_mb}).encode()
    # Within the batch byte limit (serving.batch_max_bytes): parsed, then refused.
    within = MAX_BODY_BYTES["/predict_batch"] - 64
    garbage = b"[" * within
    row = b'{"job_title":"Data Engineer"},'
    many_jobs = b'{"jobs":[' + row * (within // len(row)) + b'{"job_title":"x"}]}'
    answers = {
        "predict": httpx.post(f"{url}/predict", content=filler, headers=headers, timeout=60),
        "explain": httpx.post(f"{url}/explain", content=filler, headers=headers, timeout=60),
        "batch-garbage": httpx.post(
            f"{url}/predict_batch", content=garbage, headers=headers, timeout=60
        ),
        "batch-too-many": httpx.post(
            f"{url}/predict_batch", content=many_jobs, headers=headers, timeout=60
        ),
    }
    codes = {name: answer.status_code for name, answer in answers.items()}
    assert codes == {
        "predict": 413, "explain": 413, "batch-garbage": 422, "batch-too-many": 413
    }, codes  # fmt: skip
    assert "jobs" in answers["batch-too-many"].text
    grown = (_tree_rss(pid) - before) / 1024**2
    assert grown < 400, f"serving grew by {grown:.0f} MB on 10 MB bodies"
    assert httpx.post(f"{url}/predict", json=JOB, timeout=30).status_code == 200


# ----- security ---------------------------------------------------------------------------------
def test_the_served_process_listens_on_loopback_only(root: Path, request) -> None:
    """Only the service's port listens on TCP: the process manager's control and event
    sockets (circus; BentoML put them on loopback TCP, unauthenticated) are unix sockets
    in a folder only the service's user can enter (serving/control.py)."""
    url = served_url(root, request)  # started with no --host: the configured default
    parent = psutil.Process(SHARED["process"].pid)
    family = [parent, *parent.children(recursive=True)]
    listening = {
        (c.laddr.ip, c.laddr.port)
        for p in family
        for c in p.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    }
    assert listening == {("127.0.0.1", int(url.rsplit(":", 1)[1]))}, listening
    control = [
        Path(c.laddr)
        for c in parent.net_connections(kind="unix")
        if c.laddr and "salarymodel-control-" in c.laddr
    ]
    assert {p.name for p in control} >= {"control", "events"}, control
    for socket_path in control:
        folder = socket_path.parent.stat()
        assert folder.st_mode & 0o777 == 0o700 and folder.st_uid == os.getuid()


def _token(project: Path) -> dict[str, str]:
    token = (project / "models" / "reload-token").read_text().strip()
    return {"authorization": f"Bearer {token}"}


def test_a_refused_reload_names_versions_not_paths(project: Path) -> None:
    """The registry's files are damaged after the start: the reload is refused (409),
    its body names the file, never where it lies; the server's log has the full path."""
    port = free_port()
    log = project / "serve-409.log"
    process = subprocess.Popen(
        [str(BIN / "salarymodel"), "serve", "--port", str(port), "--workers", "1"],
        cwd=project, env=project_env(project), stdout=log.open("w"),
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    bundle = _artifact_bundle(project)
    backup = project.parent / "bundle-backup-409"
    try:
        url = f"http://127.0.0.1:{port}"
        ready_or_fail(url, process, log, seconds=180)
        shutil.copytree(bundle, backup)
        _flip_a_digit(bundle / "booster.txt")
        shutil.rmtree(project / "models" / "registry-cache")
        answer = httpx.post(f"{url}/admin/reload", headers=_token(project), timeout=200)
        assert answer.status_code == 409, answer.text
        assert "booster.txt is corrupt" in answer.json()["error"]
        assert "/" not in answer.text, answer.text
        assert f"{bundle}" in log.read_text() or str(project) in log.read_text()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        if backup.exists():
            shutil.rmtree(bundle)
            shutil.copytree(backup, bundle)
