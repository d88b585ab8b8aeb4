"""The registry is never silently recreated.

MLflow's SQL store creates a missing sqlite file on first contact, so a moved
``mlflow.db`` used to come back empty: ``versions --json`` printed ``[]`` and a
later ``train`` started again at v1 as champion. Read-only commands now refuse
(exit 2, one ``error:`` line) and create nothing; ``train`` creates a store only
on first use, or with ``--new-store`` when models/ shows earlier versions.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from salarymodel.cli.app import app
from salarymodel.registry.store import NEW_STORE_FLAG

runner = CliRunner()
MISSING = "does not exist; it is never created by this command"


def _refused(args: list[str]) -> str:
    """Run a command that must refuse with exit 2 and exactly one ``error:`` line."""
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (args, result.output)
    errors = [line for line in result.output.splitlines() if "error:" in line]
    assert len(errors) == 1, result.output
    return " ".join(result.output.split())


@pytest.mark.slow  # ten commands, each importing what it needs (about a minute)
def test_read_only_commands_refuse_a_missing_store_and_create_none(
    project: Path, aijobs_raw
) -> None:
    jobs = project / "jobs.csv"
    aijobs_raw.head(5).to_csv(jobs, index=False)
    commands = [
        ["versions", "--json"],
        ["versions"],
        ["evaluate", "--json"],
        ["promote", "1"],
        ["rollback"],
        ["report"],
        ["explain"],
        ["predict", "--input", str(jobs), "--output", str(project / "out.csv")],
        ["drift", "--data", str(jobs)],
    ]
    for args in commands:
        said = _refused(args)
        assert MISSING in said, (args, said)
        assert f"sqlite:///{project}/mlflow.db" in said
    # serve falls back to the BentoML store's copy when the registry cannot answer
    # (serving.loading); with neither it refuses, and still creates no store.
    assert "not serving:" in _refused(["serve", "--export-only"])
    assert not (project / "mlflow.db").exists()
    assert not (project / "out.csv").exists()


def test_train_refuses_to_recreate_a_store_when_models_shows_history(project: Path) -> None:
    # A version was loaded once (the registry cache keeps a copy per version).
    (project / "models" / "registry-cache" / "v3").mkdir(parents=True)
    said = _refused(["train", "--sample", "300", "--no-baselines"])
    assert "does not exist, but the project shows earlier versions" in said
    assert "models/registry-cache/v3" in said and NEW_STORE_FLAG in said
    # --if-no-champion does not read "no store" as "no champion, train one" either.
    said = _refused(["train", "--if-no-champion", "--sample", "300", "--no-baselines"])
    assert NEW_STORE_FLAG in said
    assert not (project / "mlflow.db").exists()


@pytest.mark.slow
def test_train_with_new_store_starts_a_registry_at_v1(project: Path) -> None:
    # Runs were logged here before (MLflow's artifact root), the store is gone.
    (project / "mlruns" / "1" / "0123abcd").mkdir(parents=True)
    assert "mlruns/1/0123abcd" in _refused(["train", "--sample", "300", "--no-baselines"])
    result = runner.invoke(app, ["train", "--sample", "300", "--no-baselines", NEW_STORE_FLAG])
    assert result.exit_code == 0, result.output
    assert "registered version 1" in " ".join(result.output.split())
    assert (project / "mlflow.db").stat().st_size > 0
