"""Shared fixtures: configuration and small real samples of the shipped data."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from salarymodel.config.settings import Settings, load_settings, load_sources
from salarymodel.config.sources import SourcesConfig
from salarymodel.data.reading import read_csv

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("slow_timeout", "pytest-timeout seconds for tests marked slow", default="900")


# The longest modules, longest first (pytest --durations, summed per module; see
# the Makefile's test target). `make test` runs `--dist loadfile
# --no-loadscope-reorder`: an idle xdist worker takes the next module in this
# order, so a long module started last cannot hold one worker while the other idles.
LONGEST_FIRST = (
    "workflows/test_cli.py",
    "model/test_distributed.py",
    "workflows/test_hostile_cli.py",
    "workflows/test_gate.py",
    "workflows/test_retrain_safety.py",
    "code/test_terminal.py",
    "code/test_suite_layout.py",
    "service/test_reload.py",
    "service/test_faults.py",
    "service/test_fuzz.py",
    "workflows/test_retraining.py",
    "workflows/test_retrain_refusals.py",
    "workflows/test_report.py",
    "service/test_page_browser.py",
    "model/test_evaluation.py",
    "workflows/test_single_source.py",
    "service/test_web.py",
    "model/test_explanations.py",
    "model/test_model_behaviour.py",
    "service/test_load.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked slow get the longer ``slow_timeout`` unless they set their own; the
    longest modules run first (``LONGEST_FIRST``), each module's tests in file order."""
    seconds = float(config.getini("slow_timeout"))
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(seconds))
    rank = {ROOT / "tests" / name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path, len(rank)))  # stable: the rest as found


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings(ROOT / "configs" / "salarymodel.yaml")


@pytest.fixture(scope="session")
def sources() -> SourcesConfig:
    return load_sources(ROOT / "configs" / "sources.yaml")


@pytest.fixture(scope="session")
def aijobs_raw() -> pd.DataFrame:
    """The whole shipped survey file, read as text (tests sample from it)."""
    return read_csv(DATA / "aijobs_salaries_2020_2024.csv.gz")


@pytest.fixture(scope="session")
def postings_raw() -> pd.DataFrame:
    return read_csv(DATA / "data_jobs_2023_annual_salary.csv.gz")


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A throw-away project root: real configs, a link to the real data, its own MLflow store."""
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    (tmp_path / "data").symlink_to(DATA)
    monkeypatch.setenv("SALARYMODEL_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    return tmp_path
