"""A small real champion trained once per session, and `salarymodel serve` over it.

Used by tests/service (test_service, test_web, test_fuzz, test_load, test_faults,
test_reload, test_location_service, test_deploy) and tests/workflows (retraining).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers.trained_once import trained_copy
from salarymodel.serving.readiness import NotReady, stop_process, wait_until_ready

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SHARED: dict[str, Any] = {}  # the served process and its URL, once per session

JOB = {
    "job_title": "Senior Data Scientist",
    "experience_level": "SE",
    "company_size": "M",
    "country": "Germany",
    "remote_ratio": 0,
    "employment_type": "FT",
    "skills": ["python", "sql"],
}


def project_env(root: Path) -> dict[str, str]:
    """Environment pointing the CLI, MLflow and BentoML at a throw-away project root."""
    return {
        **os.environ,
        "SALARYMODEL_ROOT": str(root),
        "BENTOML_HOME": str(root / "bentoml_home"),
        "BENTOML_DO_NOT_TRACK": "True",
        "GIT_PYTHON_REFRESH": "quiet",
    }


def champion_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project root holding a small real champion, trained via the CLI once per session.

    Under pytest-xdist each worker gets its own copy (its own base folder) of the
    one trained champion (helpers/trained_once.py): some tests briefly damage and
    restore the champion's files, which another worker must not see.
    """
    root = tmp_path_factory.getbasetemp() / "service-project"
    if not (root / ".trained").exists():
        root.mkdir(exist_ok=True)
        service_configs(root)
        trained_copy(root, tmp_path_factory, _train_champion)
        (root / ".trained").touch()
    return root


def service_configs(root: Path) -> None:
    """``root`` gets the served champion's configs and a link to the shipped data.

    A project laid out so (test_distributed's) shares the one trained champion."""
    shutil.copytree(ROOT / "configs", root / "configs", dirs_exist_ok=True)
    # One LightGBM thread: on 2 cores two multi-threaded LightGBM processes
    # (tests beside another job) slow each other down by orders of magnitude.
    settings = root / "configs" / "salarymodel.yaml"
    text = settings.read_text().replace("num_threads: 2", "num_threads: 1")
    # The training's global SHAP explanations on 300 records, not all 1,500 (they
    # took 21 s of one measured 54 s training): no test reads this champion's
    # explanation files; /explain explains each job with the model itself.
    assert "  sample_size: 5000\n" in text
    settings.write_text(text.replace("  sample_size: 5000\n", "  sample_size: 300\n"))
    if not (root / "data").exists():
        (root / "data").symlink_to(ROOT / "data")


def _train_champion(root: Path) -> None:
    command = [str(BIN / "salarymodel"), "train", "--sample", "1500", "--no-baselines"]
    done = subprocess.run(
        command, cwd=root, env=project_env(root), capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def served_url(root: Path, request: pytest.FixtureRequest) -> str:
    """`salarymodel serve` on a free port, started once per session; its base URL.

    Stopped when the session ends (not when the asking test or module does): every
    module that reads from the served champion (none damages it) shares the one
    process, instead of paying an export and a server start each.
    """
    if "url" in SHARED:
        return SHARED["url"]
    port = free_port()
    log = root / f"serve-{port}.log"  # one per xdist worker: each serves its own process
    process = subprocess.Popen(
        # One worker: half the start-up CPU of the default two (same code path).
        [str(BIN / "salarymodel"), "serve", "--port", str(port), "--workers", "1"],
        cwd=root,
        env=project_env(root),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    request.config.add_cleanup(lambda: (stop_process(process), SHARED.pop("url", None)))
    url = f"http://127.0.0.1:{port}"
    ready_or_fail(url, process, log, seconds=180)
    SHARED.update(url=url, process=process)
    return url


def ready_or_fail(url: str, process: subprocess.Popen, log: Path, seconds: float = 180) -> None:
    """Wait for the served ``url``'s readiness probe; fail with ``log``'s tail if it never is."""
    try:
        wait_until_ready(url, process, seconds)
    except NotReady as error:
        raise AssertionError(f"{error}: {log.read_text()[-3000:]}") from None


def wait_for_model(base: str, process: subprocess.Popen, seconds: float = 120) -> dict:
    """The served model card at ``base``/model, once the process answers ready."""
    try:
        wait_until_ready(base, process, seconds)
    except NotReady as error:
        raise AssertionError(str(error)) from None
    return httpx.get(f"{base}/model", timeout=10).raise_for_status().json()


@contextmanager
def service_client(root: Path) -> Iterator[Any]:
    """The service in this process (Starlette's TestClient), serving ``root``'s champion."""
    from starlette.testclient import TestClient

    with pytest.MonkeyPatch.context() as patch:
        for name, value in project_env(root).items():
            patch.setenv(name, value)
        from salarymodel.serving.service import SalaryService

        with TestClient(SalaryService.to_asgi()) as test_client:
            yield test_client
