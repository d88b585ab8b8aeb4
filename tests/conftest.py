"""Shared fixtures: configuration and small real samples of the shipped data."""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from salarymodel.config import Settings, SourcesConfig, load_settings, load_sources
from salarymodel.sources import read_csv

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("slow_timeout", "pytest-timeout seconds for tests marked slow", default="900")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked slow get the longer ``slow_timeout`` unless they set their own; under
    pytest-xdist each module runs on one worker (see ``xdist_group_of``)."""
    seconds = float(config.getini("slow_timeout"))
    grouped = config.pluginmanager.hasplugin("xdist")
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(seconds))
        if grouped and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(xdist_group_of(item.path)))


def xdist_group_of(path: Path) -> str:
    """The pytest-xdist group (``--dist loadgroup``) of a test module's tests.

    A module's tests stay together: its module-scoped project is trained once and
    its tests run in file order, as they assume. The modules that use the
    session's served champion (helpers/served.py) share one group: they read, and
    some briefly damage and restore, that one project, so they run one at a time.
    """
    if "champion_root" in _source(path):
        return "served-champion"
    return path.relative_to(ROOT).as_posix()


@functools.cache
def _source(path: Path) -> str:
    return path.read_text()


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
