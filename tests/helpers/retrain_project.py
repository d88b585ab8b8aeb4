"""A small retraining project: survey rows before 2024 and postings as the shipped
sources, a champion v1 trained there, and the CLI run in this process.

Used by tests/workflows (test_retraining, test_retrain_safety, test_retrain_refusals,
test_hostile_cli, test_gate).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from helpers.served import BIN, ROOT, project_env
from helpers.trained_once import trained_copy
from salarymodel.cli.app import app
from salarymodel.config import settings as config

__all__ = [
    "BIN",
    "MAX_FILE_BYTES",
    "invoke_cli",
    "make_fast_project",
    "make_project",
    "project_env",
    "trained_champion",
]
runner = CliRunner()


def invoke_cli(*args: str, code: int = 0) -> str:
    """Run the CLI in this process; its output with Rich's line wrapping undone."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return " ".join(result.output.split())


def make_project(root: Path, aijobs_raw: pd.DataFrame, postings_raw: pd.DataFrame) -> None:
    """Configs and small real data: survey rows before 2024 and postings as the shipped
    sources; ``data/new.csv`` holds 2024 survey rows plus re-delivered old ones."""
    shutil.copytree(ROOT / "configs", root / "configs")
    data = root / "data"
    data.mkdir()
    # The reference tables the features read (BLS wages: features.location.bls_table).
    for table in (ROOT / "data").glob("bls_*.csv.gz"):
        shutil.copy(table, data)
    years = aijobs_raw["work_year"].astype(int)
    old = aijobs_raw[years < 2024].sample(2000, random_state=1)
    old.to_csv(data / "aijobs_old.csv", index=False)
    postings_raw.sample(1200, random_state=1).to_csv(data / "postings.csv", index=False)
    later = aijobs_raw[years == 2024].sample(1500, random_state=3)
    new = pd.concat([later, old.sample(200, random_state=2)], ignore_index=True)
    new.to_csv(data / "new.csv", index=False)
    sources = (root / "configs" / "sources.yaml").read_text()
    sources = sources.replace("data/aijobs_salaries_2020_2024.csv.gz", "data/aijobs_old.csv")
    sources = sources.replace("data/data_jobs_2023_annual_salary.csv.gz", "data/postings.csv")
    (root / "configs" / "sources.yaml").write_text(sources)
    settings = (root / "configs" / "salarymodel.yaml").read_text()
    # One LightGBM thread (a served process runs beside training in one test);
    # fewer rounds and SHAP rows: these tests check behaviour, not accuracy.
    settings = settings.replace("num_threads: 2", "num_threads: 1")
    settings = settings.replace("sample_size: 5000", "sample_size: 300")
    # A backtest on this little data (the gate of `train` pairs its rows): the
    # survey's 2023 after 313 earlier records, postings' last quarter.
    for old, new in (("min_train_rows: 1000", "min_train_rows: 300"),
                     ("min_test_rows: 200", "min_test_rows: 100"),
                     ("max_folds_per_source: 3", "max_folds_per_source: 1")):  # fmt: skip
        assert old in settings, old
        settings = settings.replace(old, new)
    (root / "configs" / "salarymodel.yaml").write_text(settings)


# The fast project's cap on a file's bytes: lowered so that a small generated gzip bomb
# (test_hostile_cli) passes it and is caught while it expands.
MAX_FILE_BYTES = 32 << 20


def make_fast_project(root: Path, aijobs_raw: pd.DataFrame, postings_raw: pd.DataFrame) -> None:
    """``make_project``, cheaper to train, with a lenient gate and a lower file cap: for
    tests of what a retrain does with a hostile file (test_hostile_cli) or a kill
    (test_retrain_safety), not of accuracy. Both share its champion (one training)."""
    make_project(root, aijobs_raw, postings_raw)
    path = root / "configs" / "salarymodel.yaml"
    text = path.read_text()
    for old, new in [
        ("  num_boost_round: 200\n", "  num_boost_round: 60\n"),
        ("  num_boost_round: 150\n", "  num_boost_round: 40\n"),
        ("  n_folds: 5\n", "  n_folds: 2\n"),
        ("  evaluate_ranges: true\n", "  evaluate_ranges: false\n"),
        # Every retrain of a good file passes (test_retrain_safety kills them).
        ("  tolerance: 0.0\n", "  tolerance: 0.5\n"),
        ("  existing_tolerance: 0.05\n", "  existing_tolerance: 0.5\n"),
        ("  max_file_bytes: 134217728", f"  max_file_bytes: {MAX_FILE_BYTES}"),
    ]:
        assert old in text, old
        text = text.replace(old, new, 1)
    path.write_text(text)


@contextmanager
def pointed_at(root: Path) -> Iterator[Path]:
    """This process pointed at the project ``root`` (environment, folder, settings read
    afresh)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in project_env(root).items():
            patch.setenv(name, value)
        patch.chdir(root)
        config._load_settings.cache_clear()
        yield root
    config._load_settings.cache_clear()


def _train(root: Path) -> None:
    with pointed_at(root):
        invoke_cli("train", "--no-baselines")


@contextmanager
def trained_champion(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """This process pointed at the project ``root``, with its champion v1 trained by the
    CLI: once per session for the same configs and data (helpers/trained_once.py),
    ``root`` holding its own copy."""
    trained_copy(root, tmp_path_factory, _train)
    with pointed_at(root):
        yield root
