"""Starting and stopping the HTTP server (BentoML's) for `salarymodel serve`."""

from __future__ import annotations

import logging
import os
import signal
import sys
import uuid
from typing import NoReturn

from salarymodel.config.settings import load_settings
from salarymodel.serving.admin_auth import ensure_token_file
from salarymodel.serving.loading import export_champion
from salarymodel.serving.reload import SESSION_ENV, in_bentoml_worker

logger = logging.getLogger("salarymodel.serving")


def serve(host: str, port: int, workers: int = 2, tag: str | None = None) -> NoReturn:
    """Start the HTTP server on ``host:port``; does not return.

    The champion is loaded here once (downloaded from the registry if need
    be, checksums verified) and exported to the BentoML model store, unless
    ``tag`` names an export already checked by :func:`export_champion`; the
    workers then all load that exported version, so they cannot disagree if
    a promotion happens while they start, and none of them imports MLflow.
    """
    settings = load_settings()
    tag = tag or export_champion(settings)
    # The reload token (0600) exists before any worker can be asked to reload.
    ensure_token_file(settings)
    env = {
        **os.environ,
        "SALARYMODEL_MODEL_SOURCE": "bentoml",
        "SALARYMODEL_BENTO_MODEL": tag,
        "SALARYMODEL_WORKERS": str(workers),
        SESSION_ENV: uuid.uuid4().hex,
    }
    command = [sys.executable, "-m", "bentoml", "serve",
               "salarymodel.serving.service:SalaryService",
               "--host", host, "--port", str(port)]  # fmt: skip
    logger.info("serving %s on http://%s:%d", tag, host, port)
    # exec: signals (Ctrl-C, a test's terminate) reach BentoML's server directly.
    sys.stdout.flush()
    os.execve(sys.executable, command, env)


def stop_server_on_failed_start(error: Exception) -> None:
    """A BentoML worker that cannot load a sound model at the server's first start
    stops the whole server.

    BentoML respawns a worker whose start fails, forever: with missing or
    damaged model files the service would flap instead of refusing to start.
    Only in a BentoML worker process (whose parent is the server), never in a
    process that merely builds the app (tests, `bentoml build`); and never for
    a worker restarted beside workers that serve (the service retries instead).
    """
    if in_bentoml_worker():
        logger.critical("refusing to start, stopping the server: %s", error)
        os.kill(os.getppid(), signal.SIGTERM)
