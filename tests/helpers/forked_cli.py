"""CLI commands run as child processes forked from one process that already imported them.

A `salarymodel retrain`, `predict` or `drift` started from the console script
spends 3.5 to 6 CPU-seconds importing MLflow, pandas, pandera, scikit-learn
and SHAP before its own work; test_hostile_cli runs 27 of them and
test_retrain_safety six retrains. Here a multiprocessing fork server imports
those modules once, and each command runs in a fresh child forked from it: its
own process (own pid, memory, file descriptors and exit status; SIGKILL ends
it as it ends any process), its stdout and stderr in files, the project's
environment and folder, ``salarymodel.cli.app.main`` with the command's
arguments, and the interpreter's exit handlers run as at a normal exit. The
fork server's modules are in the child's memory, so a peak measured there is
if anything higher than the console script's (which imports only what its
command needs).

Not covered here, the console script itself (its entry point and imports):
each user keeps a run through the real binary.

Used by tests/workflows (test_hostile_cli, test_retrain_safety).
"""

from __future__ import annotations

import atexit
import multiprocessing
import multiprocessing.forkserver
import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from pathlib import Path

# What the commands import when they run (each imports inside the command):
# imported once in the fork server instead of once per command.
PRELOAD = [
    "salarymodel.cli.app",
    "salarymodel.retraining.job",
    "salarymodel.core.prediction",
    "salarymodel.evaluation.drift",
    "salarymodel.evaluation.drift_output",
    "salarymodel.registry.bundles",
    # ... and what those import only when used: MLflow's SQL stores (and alembic), the
    # checks pandera registers on first use, LightGBM (a bundle's boosters), GitPython
    # (an MLflow run's source tags), jinja2 (the drift report).
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.model_registry.sqlalchemy_store",
    "pandera.backends.pandas.builtin_checks",
    "pandera.backends.pandas.container",
    "lightgbm",
    "git",
    "jinja2",
    # The child's own code, and the parent's main script (a child imports it again
    # unless the server already has: under plain pytest, pytest itself).
    "helpers.forked_cli",
    "__main__",
]
# What a retrain that fits, explains and logs a challenger imports besides.
FITTING = [
    "salarymodel.report.explanation_plots",
    "salarymodel.evaluation.group_plot",
    "shap",
    "sklearn.model_selection",
    "mlflow.pyfunc",
]


@contextmanager
def fork_server(extra: tuple[str, ...] = ()) -> Iterator[ForkServerContext]:
    """This process's fork server (one per process, started on first use with
    ``PRELOAD`` and ``extra``), stopped and waited for on exit: the CPU of its children
    then counts as this process's (a server left running would be reaped by init,
    their CPU unseen)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([*PRELOAD, *extra])
    try:
        yield context
    finally:
        multiprocessing.forkserver._forkserver._stop()  # type: ignore[attr-defined]


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


def start(
    context: ForkServerContext,
    argv: list[str],
    env: dict[str, str],
    cwd: Path,
    out: Path,
    err: Path,
) -> BaseProcess:
    """``salarymodel <argv>`` started in a child of the fork server; stdout to ``out``,
    stderr to ``err`` (the caller joins it: ``exitcode`` is negative for a signal)."""
    child = context.Process(
        target=_main, args=(argv, env, str(cwd), str(out), str(err)), daemon=True
    )
    child.start()
    return child


@dataclass
class Completed:
    """What a finished command left: exit status (-9: SIGKILL) and what it printed."""

    returncode: int
    stdout: str
    stderr: str


def run(
    context: ForkServerContext, argv: list[str], env: dict[str, str], cwd: Path, timeout: float
) -> Completed:
    """``salarymodel <argv>`` run to its end in a child of the fork server."""
    out, err = cwd / ".forked.out", cwd / ".forked.err"
    child = start(context, argv, env, cwd, out, err)
    child.join(timeout)
    if child.exitcode is None:
        child.kill()
        child.join()
        raise TimeoutError(f"salarymodel {' '.join(argv)} still running after {timeout} s")
    return Completed(
        child.exitcode, out.read_text(errors="replace"), err.read_text(errors="replace")
    )
