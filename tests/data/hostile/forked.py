"""CLI commands run as child processes forked from one process that already imported them.

A `salarymodel retrain`, `predict` or `drift` started from the console script
spends about 3.5 CPU-seconds importing MLflow, pandas and pandera before it
reads a byte; test_hostile_cli runs 27 of them. Here a multiprocessing fork
server imports those modules once, and each command runs in a fresh child
forked from it: its own process (own pid, memory, file descriptors, exit
status; SIGKILL-able), its stdout and stderr in files, the project's
environment and folder, ``salarymodel.cli.app.main`` with the command's
arguments, and the interpreter's exit handlers run as at a normal exit. The
peak memory is sampled as ``corpus.probe`` samples it (``VmHWM``): the fork
server's imported modules count in it (more than some commands import), so the
figure is, if anything, higher than the console script's.

What this does not cover, the console script itself (its entry point and
imports), tests/workflows/test_hostile_cli.py runs through the real binary.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import sys
import time
import traceback
from multiprocessing.context import ForkServerContext
from pathlib import Path

from data.hostile.corpus import Probe, sample_peak

# What the three commands import when they run (each imports inside the command):
# imported once in the fork server instead of once per command.
PRELOAD = [
    "salarymodel.cli.app",
    "salarymodel.retraining.job",
    "salarymodel.core.prediction",
    "salarymodel.evaluation.drift",
    "salarymodel.evaluation.drift_output",
    "salarymodel.registry.bundles",
    # The child's own code, and the parent's main script (a child imports it again
    # unless the server already has: under plain pytest, pytest itself).
    "data.hostile.forked",
    "__main__",
]


def fork_server() -> ForkServerContext:
    """The process's fork server (one per process: started on first use, with ``PRELOAD``)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def _main(argv: list[str], env: dict[str, str], cwd: str, out: str, err: str) -> None:
    """In the child: as the console script would run, with these streams, env and folder."""
    for fd, path in ((1, out), (2, err)):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    sys.argv = ["salarymodel", *argv]
    from salarymodel.cli.app import main
    from salarymodel.config import settings

    settings._load_settings.cache_clear()  # read in this project, not the fork server's
    code: int | str | None = 0
    try:
        main()
    except SystemExit as stop:
        code = stop.code
    except BaseException:  # what the interpreter does with an uncaught exception
        traceback.print_exc()
        code = 1
    atexit._run_exitfuncs()  # a forked child skips them; the console script runs them
    if isinstance(code, str):
        print(code, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else (0 if code is None else 1))


def probe_forked(
    context: ForkServerContext,
    argv: list[str],
    env: dict[str, str],
    cwd: Path,
    ceiling_mb: float,
    timeout: float = 900,
) -> Probe:
    """``corpus.probe`` for ``salarymodel <argv>`` in a child of the fork server."""
    start = time.perf_counter()
    out_file, err_file = cwd / ".probe.out", cwd / ".probe.err"
    child = context.Process(
        target=_main, args=(argv, env, str(cwd), str(out_file), str(err_file)), daemon=True
    )
    child.start()
    assert child.pid is not None
    peak, killed = sample_peak(child.pid, ceiling_mb, start, timeout, child.join)
    assert child.exitcode is not None
    return Probe(
        returncode=child.exitcode,
        peak_mb=peak,
        seconds=time.perf_counter() - start,
        stdout=out_file.read_text(errors="replace"),
        stderr=err_file.read_text(errors="replace"),
        killed_at_mb=killed,
    )
