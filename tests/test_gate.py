"""The gate says no: every refusal path on real samples, and a registry that cannot
answer never promotes.

One small project for the module (tests/test_retraining.make_project: survey rows
before 2024 and postings; champion v1 trained on them). Each refusal is checked
the same way: the CLI gives its reason on one line, the champion alias has not
moved, and ``versions --json`` lists what was registered (a refused ``train``
registers its version; a refused ``retrain`` registers nothing) as not champion.
Worse challengers are built honestly: a crippled model configuration, other
data or folds, a new file whose pay disagrees with what the model knew.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from salarymodel import config
from salarymodel.cli import app
from salarymodel.config import GateConfig, load_settings
from salarymodel.registry import (
    TAG_FINGERPRINT,
    TAG_FOLDS,
    RegistryError,
    champion_version,
    compare,
    connect,
    decide,
    gate_metric_name,
)

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
# A model that stops after three boosting rounds: a challenger honestly worse.
CRIPPLED = ("  num_boost_round: 200\n", "  num_boost_round: 3\n")


def _invoke(*args: str, code: int = 0) -> tuple[str, str]:
    """Run the CLI in this process; (stdout, stderr)."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.stdout, result.stderr


def _line(text: str, start: str) -> str:
    """The one line of the CLI's output that starts with ``start``."""
    found = [line for line in text.splitlines() if line.startswith(start)]
    assert len(found) == 1, text[-3000:]
    return found[0]


def _versions() -> list[dict]:
    return json.loads(_invoke("versions", "--json")[0])


def _champion(rows: list[dict]) -> str:
    (champion,) = [row["version"] for row in rows if row["champion"]]
    return champion


def _assert_refused(before: list[dict], registered: int) -> list[dict]:
    """The alias did not move; ``registered`` new versions are listed, none champion."""
    after = _versions()
    assert _champion(after) == _champion(before)
    assert after[: len(before)] == before
    assert len(after) == len(before) + registered
    for row in after[len(before) :]:
        assert not row["champion"] and row["times_champion"] == 0
    print(json.dumps({"before": before, "after": after}, indent=1))  # for the record (-s)
    return after


@contextmanager
def edited_settings(root: Path, *changes: tuple[str, str]) -> Iterator[None]:
    """The project's configs/salarymodel.yaml with text replaced, for one block."""
    path = root / "configs" / "salarymodel.yaml"
    original = path.read_text()
    text = original
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new, 1)
    path.write_text(text)
    config._load_settings.cache_clear()  # settings are cached per file
    try:
        yield
    finally:
        path.write_text(original)
        config._load_settings.cache_clear()


@pytest.fixture(scope="module")
def gate(tmp_path_factory, aijobs_raw, postings_raw) -> Iterator[Path]:
    """A project whose champion v1 was trained on survey years < 2024 and postings."""
    from test_retraining import make_project, trained_champion

    root = tmp_path_factory.mktemp("gate")
    make_project(root, aijobs_raw, postings_raw)
    with trained_champion(root):
        yield root


# ----- compare: which way is better -------------------------------------------------------
def test_compare_follows_the_direction_of_the_metric(settings) -> None:
    r2 = settings.model_copy(update={"gate": GateConfig(metric="r2_log")})
    assert compare(r2, 0.60, 0.62, 0.0) == (False, "worse than")  # lower R² is worse
    assert compare(r2, 0.63, 0.62, 0.0) == (True, "at least as good as")
    assert compare(r2, 0.61, 0.62, 0.05) == (True, "worse than but within the tolerance of")
    assert compare(r2, -0.30, -0.20, 0.2) == (False, "worse than")  # |champion| scales it
    mae = settings.model_copy(update={"gate": GateConfig(metric="mae_usd")})
    assert compare(mae, 41_000, 40_000, 0.0) == (False, "worse than")  # higher error is worse
    assert compare(mae, 39_000, 40_000, 0.0) == (True, "at least as good as")
    assert compare(mae, 41_000, 40_000, 0.05) == (True, "worse than but within the tolerance of")


def test_gate_on_r2_refuses_a_lower_r2_than_the_champions(gate: Path) -> None:
    settings = load_settings()
    r2 = settings.model_copy(update={"gate": GateConfig(metric="r2_log")})
    client = connect(r2)
    current = champion_version(client, r2)
    run = client.get_run(current.run_id)
    name = gate_metric_name(r2)
    champion = run.data.metrics[name]
    tags = {key: run.data.tags[key] for key in (TAG_FINGERPRINT, TAG_FOLDS)}
    worse = decide(client, r2, {name: champion - 0.01}, tags)
    assert not worse.promote and "is worse than champion v1" in worse.reason
    better = decide(client, r2, {name: champion + 0.01}, tags)
    assert better.promote and "at least as good as" in better.reason


# ----- train ----------------------------------------------------------------------------------
def test_train_worse_than_the_champion_is_registered_not_promoted(gate: Path) -> None:
    before = _versions()
    with edited_settings(gate, CRIPPLED):
        _, said = _invoke("train", "--no-baselines")
    line = _line(said, "registered version")
    print(line)
    assert "kept the current champion: fused_lightgbm.all.mae_usd: challenger" in line
    assert f"is worse than champion v{_champion(before)}" in line
    _assert_refused(before, registered=1)


@pytest.mark.parametrize(
    ("args", "changes"),
    [
        (("--sample", "1500"), ()),  # other data: another fingerprint
        ((), (("  n_folds: 5\n", "  n_folds: 3\n"),)),  # other folds
    ],
    ids=["other-data", "other-folds"],
)
def test_train_on_another_evaluation_is_not_comparable(gate: Path, args, changes) -> None:
    before = _versions()
    with edited_settings(gate, *changes):
        _, said = _invoke("train", "--no-baselines", *args)
    line = _line(said, "registered version")
    print(line)
    assert (
        f"kept the current champion: champion v{_champion(before)} was evaluated on other "
        "data or folds; metrics are not comparable"
    ) in line
    _assert_refused(before, registered=1)


# ----- retrain --------------------------------------------------------------------------------
def _accepted(root: Path) -> list[Path]:
    return sorted((root / "models").glob("accepted/*/*"))


def _retrain_refused(root: Path, file: Path, check: str) -> str:
    """Retrain with ``file``: refused (exit 1) by ``check``; nothing registered or kept."""
    before, accepted = _versions(), _accepted(root)
    _, said = _invoke("retrain", "--data", str(file), code=1)
    line = _line(said, "kept champion")
    print(line)
    assert line.startswith(f"kept champion v{_champion(before)} (run ")
    assert f"{check}: " in line
    _assert_refused(before, registered=0)
    assert _accepted(root) == accepted
    return line


def test_retrain_losing_on_the_held_out_new_rows_is_refused(gate: Path) -> None:
    with edited_settings(gate, CRIPPLED):
        line = _retrain_refused(gate, gate / "data" / "new.csv", "held-out new rows")
    assert "held-out new rows: challenger" in line and "is worse than champion v1" in line


def test_retrain_that_forgets_the_existing_records_is_refused(gate: Path, aijobs_raw) -> None:
    # Survey rows of the same years the champion knows, paid 40% more (a wrong
    # conversion, say): the challenger wins on them and loses on what it knew.
    years = aijobs_raw["work_year"].astype(int)
    known = aijobs_raw[years < 2024]
    shipped = known.sample(2000, random_state=1).index  # make_project's survey sample
    rows = known.drop(index=shipped).sample(4000, random_state=4)
    rows = rows.assign(salary_in_usd=(rows["salary_in_usd"].astype(float) * 1.4).round())
    rows.to_csv(gate / "inflated.csv", index=False)
    line = _retrain_refused(gate, gate / "inflated.csv", "existing records")
    assert "existing records (both models trained on them): challenger" in line
    assert "is worse than champion" in line and "(tolerance 5.0%)" in line
    assert "held-out new rows:" not in line  # it won there: only the failed check is named


def test_retrain_with_too_few_held_out_rows_is_refused(gate: Path, aijobs_raw) -> None:
    shipped = pd.read_csv(gate / "data" / "aijobs_old.csv", dtype=str, keep_default_na=False)
    later = aijobs_raw[aijobs_raw["work_year"].astype(int) == 2024].sample(25, random_state=8)
    pd.concat([shipped.head(120), later]).to_csv(gate / "few.csv", index=False)
    line = _retrain_refused(gate, gate / "few.csv", "held-out rows")
    assert "new records held out (at least 30 needed to judge)" in line


# ----- a registry that cannot answer -----------------------------------------------------------
@contextmanager
def broken_aliases(root: Path) -> Iterator[None]:
    """The store's alias table out of reach: every read of the registered model fails."""
    with sqlite3.connect(root / "mlflow.db", isolation_level=None) as db:
        db.execute("ALTER TABLE registered_model_aliases RENAME TO aliases_away")
        try:
            yield
        finally:
            db.execute("ALTER TABLE aliases_away RENAME TO registered_model_aliases")


def test_registry_error_is_not_no_champion(gate: Path) -> None:
    settings = load_settings()
    client = connect(settings)
    with broken_aliases(gate), pytest.raises(RegistryError, match="no such table"):
        champion_version(client, settings)
    assert str(champion_version(client, settings).version) == _champion(_versions())


def test_train_stops_when_the_registry_cannot_answer(gate: Path) -> None:
    before = _versions()
    with broken_aliases(gate):
        _, said = _invoke("train", "--no-baselines", code=2)
        _, again = _invoke("retrain", "--data", str(gate / "data" / "new.csv"), code=2)
    for output in (said, again):
        line = _line(output, "error: ")
        print(line)
        assert line.startswith(
            f"error: cannot read model 'salarymodel' from sqlite:///{gate}/mlflow.db: "
            "(sqlite3.OperationalError) no such table: registered_model_aliases"
        )
        assert "Traceback" not in output and "[SQL:" not in output
    assert _versions() == before


def _cli(root: Path, *args: str) -> subprocess.Popen:
    from test_retraining import _env

    return subprocess.Popen(
        [sys.executable, "-m", "salarymodel.cli", *args],
        cwd=root,
        env=_env(root),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_a_locked_store_stops_every_command_that_moves_the_alias(gate: Path) -> None:
    # MLflow waits 20 s (its SQLite busy_timeout) before a locked store fails.
    if len(_versions()) < 2:  # run on its own: a second version to move to
        _invoke("train", "--no-baselines")
    rows = _versions()
    champion = _champion(rows)
    other = next(r["version"] for r in reversed(rows) if r["version"] != champion)
    _invoke("promote", other)
    _invoke("promote", champion)  # a champion before this one: rollback has a target
    before = _versions()
    with sqlite3.connect(gate / "mlflow.db", isolation_level=None) as writer:
        # Another process writing: reads go on, every other write waits, then fails.
        writer.execute("BEGIN IMMEDIATE")
        start = time.monotonic()
        commands = {
            "promote": _cli(gate, "promote", other),
            "rollback": _cli(gate, "rollback"),
        }
        try:
            answers = {name: p.communicate(timeout=120) for name, p in commands.items()}
        finally:
            writer.execute("ROLLBACK")
            for process in commands.values():
                if process.poll() is None:
                    process.kill()
    print(f"refused after {time.monotonic() - start:.0f} s")
    for name, process in commands.items():
        said = answers[name][1]
        assert process.returncode == 2, said
        line = _line(said, "error: ")
        print(name, line)
        assert line.startswith("error: cannot move the 'champion' alias of 'salarymodel' to v")
        assert line.endswith("(sqlite3.OperationalError) database is locked")
        assert "Traceback" not in said
    assert _versions() == before
    # The same lock taken by a writer that holds it for reads too: no answer is not "none".
    settings = load_settings()
    client = connect(settings)
    with sqlite3.connect(gate / "mlflow.db", isolation_level=None) as writer:
        writer.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(RegistryError, match="database is locked"):
                champion_version(client, settings)
        finally:
            writer.execute("ROLLBACK")


def test_a_version_registered_outside_a_run_is_a_registry_error_not_a_crash() -> None:
    # MLflow's client raises a TypeError for a run id of None; the CLI catches RegistryError.
    from mlflow.entities.model_registry import ModelVersion

    from salarymodel.registry import RegistryError, run_evaluation, version_run

    orphan = ModelVersion(name="salarymodel", version="7", creation_timestamp=0, run_id=None)
    with pytest.raises(RegistryError, match="v7 was not registered from a run"):
        run_evaluation(None, orphan)  # type: ignore[arg-type]  # refused before any call
    assert version_run(None, orphan) is None  # type: ignore[arg-type]
