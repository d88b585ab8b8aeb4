"""The process manager's control endpoints: unix sockets in a private folder, never TCP.

BentoML 1.4 runs its workers under a circus arbiter whose control endpoint
(``circusctl``: list, stop, add watchers, ...) and event endpoint it binds on
``tcp://127.0.0.1:<free port>``, hard-coded in
``bentoml._internal.utils.circus.create_standalone_arbiter``, with no
authentication: any local user could stop or reconfigure the service.
circus has no authentication to turn on, so the endpoints move to ZeroMQ
``ipc://`` sockets (unix domain sockets) in a folder made by
``tempfile.mkdtemp`` (mode 0700): only the service's user (and root) can
reach them. The folder is removed when the arbiter stops.

BentoML offers no setting for this: the arbiter classes of that module are
replaced by subclasses that bind elsewhere, in the server process only
(``bentoml serve``, which `salarymodel serve` execs), before the arbiter is
made. ``tests/service/test_faults.py`` checks that the served process tree
listens on TCP at the service's port only, and that the socket's folder is 0700.
"""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

logger = logging.getLogger("salarymodel.serving")

_MODULE = "bentoml._internal.utils.circus"


def is_server_process() -> bool:
    """Is this `bentoml serve`'s main process (which will create the arbiter)?"""
    program = Path(sys.argv[0]).name if sys.argv else ""
    return program in ("bentoml", "__main__.py") and sys.argv[1:2] == ["serve"]


def private_control_endpoints() -> None:
    """Make BentoML's arbiter bind its control and event endpoints as private unix sockets."""
    import importlib

    module = importlib.import_module(_MODULE)
    for name in ("Arbiter", "ThreadedArbiter"):
        base = getattr(module, name)
        if not getattr(base, "_salarymodel_private", False):
            setattr(module, name, _private(base))


def _private(base: type) -> type:
    class PrivateEndpoints(base):  # type: ignore[misc, valid-type]
        _salarymodel_private = True

        def __init__(
            self, watchers: Any, endpoint: Any = None, pubsub_endpoint: Any = None,
            *args: Any, **kwargs: Any,
        ) -> None:  # fmt: skip
            # BentoML's reserved TCP ports (endpoint, pubsub_endpoint) are not used.
            folder = tempfile.mkdtemp(prefix="salarymodel-control-")  # mode 0700
            self.control_folder = folder
            super().__init__(watchers, f"ipc://{folder}/control", f"ipc://{folder}/events",
                             *args, **kwargs)  # fmt: skip
            self.exit_stack.callback(shutil.rmtree, folder, True)
            logger.info("process manager control socket: ipc://%s/control (mode 0700)", folder)

    PrivateEndpoints.__name__ = PrivateEndpoints.__qualname__ = f"Private{base.__name__}"
    return PrivateEndpoints
