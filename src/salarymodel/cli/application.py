"""The Typer app every command registers on, its consoles, and how a command fails."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

# Imports follow use: each command imports what it needs when it runs, so
# `salarymodel --help` loads none of pandas, LightGBM, MLflow, SHAP or BentoML.
# One clean line for --help (the module docstring's list is for readers of the code;
# Typer lists every command with its docstring's first line).
HELP = "Train, evaluate, explain and serve the salary model; manage its versions."

app = typer.Typer(add_completion=False, no_args_is_help=True, help=HELP)

console = Console(stderr=True)

stdout = Console()


@app.callback()
def _quiet_libraries() -> None:
    # Before any command. MLflow and alembic log every migration and artifact at INFO; the CLI
    # prints its own summary instead.
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name in ("mlflow", "alembic", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # Its SQL store logs a failed query with SQL and traceback before raising;
    # the command reports the error itself, on one line.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", module="mlflow")


@contextmanager
def terminate_as_exit() -> Iterator[None]:
    """SIGTERM (`kill`, a job's time limit) raises SystemExit(143) while training, so
    the open MLflow run ends FAILED instead of staying RUNNING (SIGKILL still cannot)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers
        return

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def fail(message: str, code: int = 2) -> typer.Exit:
    from rich.markup import escape  # a message may hold [brackets] (paths, SQL)

    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)  # one line
    return typer.Exit(code)
