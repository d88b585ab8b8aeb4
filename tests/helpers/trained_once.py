"""Trained projects shared by the whole session: trained once, each user gets its own copy.

Several modules train the same small champion (same configs, same data): the
served champion (helpers/served.py, test_cli) and the retraining project
(helpers/retrain_project.py: test_gate, test_retraining, test_retrain_refusals).
The first xdist worker to need one trains it under a lock in the session's
shared folder, keyed by a hash of the project's configs and data; every caller
then gets a copy of its own, with the MLflow store's absolute artifact paths
rewritten to the copy, so a test that damages or adds to its copy is not seen
by any other module or worker.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

# What a trained project is: its store, artifacts and model files (configs and
# data are the caller's, and part of the key), and what train printed on stdout.
TRAINED = ("mlflow.db", "mlruns", "models", "train.stdout")


def project_key(root: Path) -> str:
    """A hash of ``root``'s configs and data: files by content, links by target."""
    digest = hashlib.sha256()
    for folder in ("configs", "data"):
        path = root / folder
        if path.is_symlink():  # the shipped data, linked: unchanged during a session
            digest.update(f"{folder} -> {path.resolve()}".encode())
            continue
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(str(file.relative_to(root)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def shared_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder every xdist worker of this session sees (the session's own without xdist)."""
    base = tmp_path_factory.getbasetemp()
    # Under xdist each worker's base is <session>/popen-gwN: the parent is the session's.
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder = shared / "trained-once"
    folder.mkdir(exist_ok=True)
    return folder


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # a worker waits while another trains
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def copy_trained(source: Path, dest: Path) -> None:
    """Copy ``source``'s trained store into ``dest``; the store's paths now name ``dest``.

    MLflow keeps absolute artifact locations (experiments, runs, logged models,
    model versions): without the rewrite the copy would read and write the
    source's artifacts.
    """
    for name in TRAINED:
        if (source / name).is_dir():
            shutil.copytree(source / name, dest / name, symlinks=True)
        elif (source / name).exists():
            shutil.copy2(source / name, dest / name)
    old, new = str(source.resolve()), str(dest.resolve())
    with sqlite3.connect(dest / "mlflow.db") as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for column in db.execute(f'PRAGMA table_info("{table}")').fetchall():
                if "CHAR" in column[2].upper() or "TEXT" in column[2].upper():
                    name = column[1]
                    db.execute(
                        f'UPDATE "{table}" SET "{name}" = replace("{name}", ?, ?) '
                        f'WHERE "{name}" LIKE ?',
                        (old, new, f"%{old}%"),
                    )
    db.close()


def trained_copy(
    root: Path, tmp_path_factory: pytest.TempPathFactory, train: Callable[[Path], None]
) -> None:
    """Give ``root`` (configs and data in place) a trained store: ``train(folder)`` runs
    once per session for each distinct configs+data, in a shared folder laid out like
    ``root``; ``root`` gets a copy."""
    shared = shared_folder(tmp_path_factory) / project_key(root)
    with _locked(shared.with_suffix(".lock")):
        if not (shared / ".trained").exists():
            shutil.rmtree(shared, ignore_errors=True)  # a half-trained one from a failure
            shared.mkdir()
            for folder in ("configs", "data"):
                if (root / folder).is_symlink():
                    (shared / folder).symlink_to((root / folder).resolve())
                else:
                    shutil.copytree(root / folder, shared / folder, symlinks=True)
            train(shared)
            (shared / ".trained").touch()
    copy_trained(shared, root)


def train_in_process(root: Path) -> None:
    """``salarymodel train --sample 1500 --no-baselines`` in this process, in ``root``:
    the champion v1 of test_cli's projects (the real configs and the shipped data).

    What train printed on stdout at 80 columns is kept in ``train.stdout`` (test_terminal
    reads it: Rich reads COLUMNS when it prints, and stdout here is not a terminal)."""
    from typer.testing import CliRunner

    from salarymodel.cli.app import app

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SALARYMODEL_ROOT", str(root))
        patch.setenv("COLUMNS", "80")
        patch.chdir(root)
        result = CliRunner().invoke(app, ["train", "--sample", "1500", "--no-baselines"])
    assert result.exit_code == 0, result.output
    (root / "train.stdout").write_text(result.stdout)
