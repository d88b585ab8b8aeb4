"""The champion read without MLflow (``registry.cached_champion``): the same version and
bundle as MLflow's way, and no answer at all whenever the store or the cache cannot
vouch for it, so the caller goes through MLflow."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.trained_once import train_in_process, trained_copy

from salarymodel.config.settings import load_settings
from salarymodel.core.bundle_files import METADATA_FILE, write_manifest
from salarymodel.registry.cached_champion import (
    ChampionRow,
    cached_champion,
    champion_row,
    load_champion_quickly,
)
from salarymodel.registry.store_path import cached_bundle, cached_version

pytestmark = pytest.mark.slow

JOBS = [
    {"job_title": "Senior Data Scientist", "experience_level": "SE", "country": "DE"},
    {"job_title": "Data Analyst", "experience_level": "EN", "country": "US", "skills": ["sql"]},
]


@pytest.fixture()
def fresh(project, tmp_path_factory) -> Path:
    """A project of its own with champion v1, its registry cache emptied."""
    trained_copy(project, tmp_path_factory, train_in_process)
    shutil.rmtree(project / "models" / "registry-cache", ignore_errors=True)
    return project


def _settings(project: Path):
    return load_settings(project / "configs" / "salarymodel.yaml")


def _mlflow_champion(project: Path):
    from salarymodel.registry.bundles import load_champion

    return load_champion(_settings(project))


def test_the_store_read_directly_names_mlflows_champion_and_its_bundle(fresh) -> None:
    settings = _settings(fresh)
    # Nothing cached yet: no answer, and the cache is not filled by asking.
    assert cached_champion(settings) is None
    assert not cached_version("1").exists()
    model, version = _mlflow_champion(fresh)  # MLflow's way fills the cache
    # If MLflow's tables change, this read stops matching: the test says so.
    assert champion_row(settings) == ChampionRow(str(version.version), version.run_id)
    quick, number = cached_champion(settings)
    assert number == str(version.version) == quick.metadata["model_version"]
    assert quick.metadata["run_id"] == version.run_id
    expected = [e.estimate_usd for e in model.estimate_jobs([dict(j) for j in JOBS])]
    got = [e.estimate_usd for e in quick.estimate_jobs([dict(j) for j in JOBS])]
    assert np.allclose(got, expected, rtol=0, atol=1e-6)


def test_predict_scores_from_the_cache_without_importing_mlflow(fresh, aijobs_raw) -> None:
    aijobs_raw.sample(5, random_state=3).to_csv(fresh / "in.csv", index=False)
    script = (
        "import runpy, sys\n"
        "sys.argv = ['salarymodel', 'predict', '--input', 'in.csv', '--output', 'out.csv']\n"
        "try:\n    runpy.run_module('salarymodel.cli.app', run_name='__main__')\n"
        "except SystemExit as done:\n    assert not done.code, done.code\n"
        "print('mlflow' in sys.modules)\n"
    )

    def imported_mlflow() -> bool:
        done = subprocess.run(
            [sys.executable, "-c", script], cwd=fresh, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        assert "scored 5 of 5 rows with model v1" in done.stdout + done.stderr
        return done.stdout.strip().splitlines()[-1] == "True"

    assert imported_mlflow()  # first: nothing cached, MLflow's way (which fills the cache)
    assert not imported_mlflow()  # then: the store's alias row and the cached bundle


def test_no_answer_when_the_cached_copy_is_of_another_run(fresh) -> None:
    settings = _settings(fresh)
    _, version = _mlflow_champion(fresh)
    metadata = cached_bundle("1") / METADATA_FILE
    stale = {**json.loads(metadata.read_text()), "run_id": "0" * 32}
    metadata.write_text(json.dumps(stale))  # v1 of a registry started again, say
    write_manifest(metadata.parent)  # a sound bundle, only not this version's
    assert cached_champion(settings) is None
    # MLflow's way does not take it either: it downloads the version again.
    model, number = load_champion_quickly(settings)
    assert number == "1" and model.metadata["run_id"] == version.run_id
    assert json.loads(metadata.read_text())["run_id"] == version.run_id
    assert cached_champion(settings) is not None


def test_no_answer_without_a_ready_champion_alias(fresh) -> None:
    settings = _settings(fresh)
    _mlflow_champion(fresh)
    with sqlite3.connect(fresh / "mlflow.db") as db:
        db.execute("UPDATE model_versions SET status = 'PENDING_REGISTRATION'")
    assert champion_row(settings) is None
    with sqlite3.connect(fresh / "mlflow.db") as db:
        db.execute("UPDATE model_versions SET status = 'READY'")
        db.execute("DELETE FROM registered_model_aliases")
    assert champion_row(settings) is None and cached_champion(settings) is None


def test_no_answer_when_the_alias_is_held_in_two_mlflow_workspaces(fresh) -> None:
    settings = _settings(fresh)
    _mlflow_champion(fresh)
    assert champion_row(settings) is not None
    with sqlite3.connect(fresh / "mlflow.db") as db:
        db.execute(
            "INSERT INTO registered_model_aliases (alias, version, name, workspace) "
            "VALUES ('champion', 1, 'salarymodel', 'another')"
        )
    assert champion_row(settings) is None  # which one is meant is MLflow's to say


def test_no_answer_from_a_store_that_is_not_mlflows_sqlite(fresh, monkeypatch) -> None:
    _mlflow_champion(fresh)
    other = fresh / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
    monkeypatch.setenv("SALARYMODEL_TRACKING_URI", f"sqlite:///{other}")
    assert champion_row(load_settings(fresh / "configs" / "salarymodel.yaml")) is None
    # A remote store is never contacted by this path, and a missing file never created.
    monkeypatch.setenv("SALARYMODEL_TRACKING_URI", "http://127.0.0.1:9")
    assert champion_row(load_settings(fresh / "configs" / "salarymodel.yaml")) is None
    monkeypatch.setenv("SALARYMODEL_TRACKING_URI", f"sqlite:///{fresh / 'gone.db'}")
    assert champion_row(load_settings(fresh / "configs" / "salarymodel.yaml")) is None
    assert not (fresh / "gone.db").exists()
