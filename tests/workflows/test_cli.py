"""The CLI end to end: train on a real sample into a temporary MLflow store, then predict."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from helpers.trained_once import train_in_process, trained_copy
from typer.testing import CliRunner

from salarymodel.cli.app import app
from salarymodel.config import settings as config
from salarymodel.config.settings import load_settings
from salarymodel.registry.champion import champion_version
from salarymodel.registry.store import connect

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _invoke(*args: str):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output + (result.stderr if result.stderr_bytes else "")
    return result


def _make_project(root: Path) -> None:
    shutil.copytree(ROOT / "configs", root / "configs")
    (root / "data").symlink_to(ROOT / "data")


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One trained project for the tests that only read the registry (trained once per
    session, helpers/trained_once.py: this module's projects are all the same)."""
    root = tmp_path_factory.mktemp("cli")
    _make_project(root)
    trained_copy(root, tmp_path_factory, train_in_process)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SALARYMODEL_ROOT", str(root))
        patch.chdir(root)
        yield root, patch


@pytest.fixture()
def trained(shared, monkeypatch):
    root, _ = shared
    monkeypatch.setenv("SALARYMODEL_ROOT", str(root))
    monkeypatch.chdir(root)
    return root


@pytest.fixture()
def fresh(project, tmp_path_factory):
    """A project of its own with champion v1, for tests that change the registry."""
    trained_copy(project, tmp_path_factory, train_in_process)
    return project


def _champion(project):
    settings = load_settings(project / "configs" / "salarymodel.yaml")
    return champion_version(connect(settings), settings)


def test_train_registers_and_promotes_then_evaluate_prints_json(trained) -> None:
    assert (trained / "mlflow.db").exists()
    assert str(_champion(trained).version) == "1"
    # --json is written whole whatever the output is (no width, no markup): parsed
    # strictly (NaN or Infinity would fail).
    payload = _strict_json(_invoke("evaluate", "--json").stdout)
    assert payload["model_version"] == "1" and payload["ranges"]
    sources = {row["source"] for row in payload["table"]}
    assert sources == {"aijobs", "postings", "all"}
    assert {"aijobs", "postings"} == set(payload["fusion"]) or payload["fusion"] == {}
    # Per-group accuracy, ranges and the percentile check, in CV and the backtest.
    groups = payload["groups"]
    for split in ("cv", "backtest"):
        rows = groups[split]["groups"]
        assert {"all", "source", "pay_level", "source_region"} <= {r["dimension"] for r in rows}
        assert {"n", "median_ratio", "mae_usd", "below_low", "above_high", "coverage"} <= set(
            rows[0]
        )
        for column in ("raw_percentile", "percentile"):
            check = groups[split]["percentile_check"][column]
            assert {"p5", "p50", "p95", "worst_gap", "within"} <= set(check[0])
    assert groups["pay_levels"]["aijobs"]["US"] == "US"


def test_predict_keeps_every_row_in_order(trained, aijobs_raw, tmp_path) -> None:
    rows = aijobs_raw.sample(20, random_state=2).reset_index(drop=True)
    rows.loc[7, "experience_level"] = "WIZARD"
    rows.to_csv(tmp_path / "in.csv", index=False)
    _invoke("predict", "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "out.csv"))
    out = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert len(out) == 20
    assert out["job_title"].tolist() == rows["job_title"].tolist()
    assert "line 9" in out.loc[7, "error"] and "experience_level" in out.loc[7, "error"]
    scored = out.drop(index=7)
    assert (scored["error"] == "").all()
    assert (pd.to_numeric(scored["estimate_usd"]) > 10_000).all()
    assert (scored["view"] == "aijobs").all()


def test_predict_writes_each_rows_track_record_and_its_warning(trained, aijobs_raw, tmp_path):
    from salarymodel.registry.bundles import load_champion

    rows = aijobs_raw[aijobs_raw["work_year"] == "2024"].reset_index(drop=True)
    # One row from each country of the sample: every pay-level group the survey has.
    rows = rows.drop_duplicates("employee_residence").head(40).reset_index(drop=True)
    rows.to_csv(tmp_path / "in.csv", index=False)
    _invoke("predict", "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "out.csv"))
    out = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    model, _ = load_champion(load_settings())
    assert model.track_record is not None and model.percentiles is not None
    groups = set()
    for i, country in enumerate(rows["employee_residence"]):
        record = model.track_record.of(model.percentiles.group_of("aijobs", country))
        assert record is not None
        groups.add(record.group)
        assert out.loc[i, "track_record"] == record.text()
        assert (record.warning() in out.loc[i, "warnings"]) == record.warn, country
    assert len(groups) >= 3


def test_predict_refuses_a_file_of_only_a_header_clearly(trained, aijobs_raw, tmp_path):
    # It once failed inside the row ids ("unexpected UFuncTypeError").
    aijobs_raw.head(0).to_csv(tmp_path / "in.csv", index=False)
    args = ["predict", "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "o.csv")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "no data rows under the header" in result.output
    assert "unexpected" not in result.output and not (tmp_path / "o.csv").exists()


def test_predict_refuses_an_unknown_format_before_the_registry(project, aijobs_raw, tmp_path):
    # It once failed as "unexpected KeyError: 'survey'" after loading the champion;
    # this project has no store, so a later check would name the store instead.
    aijobs_raw.head(3).to_csv(tmp_path / "in.csv", index=False)
    args = ["predict", "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "o.csv")]
    result = runner.invoke(app, [*args, "--source", "survey"])
    assert result.exit_code == 2
    assert "unknown source 'survey'; configured: ['aijobs', 'canonical', 'postings']" in (
        result.output
    )
    assert "unexpected" not in result.output and not (tmp_path / "o.csv").exists()


def test_predict_makes_a_missing_folder_and_names_a_full_disk(trained, aijobs_raw, tmp_path):
    aijobs_raw.sample(5, random_state=6).to_csv(tmp_path / "in.csv", index=False)
    output = tmp_path / "new" / "deeper" / "scored.csv"
    _invoke("predict", "--input", str(tmp_path / "in.csv"), "--output", str(output))
    assert len(pd.read_csv(output)) == 5
    if not Path("/dev/full").exists():
        return  # the full disk below is Linux's device
    # It once failed as "unexpected OSError: [Errno 28] No space left on device".
    args = ["predict", "--input", str(tmp_path / "in.csv"), "--output", "/dev/full"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    assert "--output /dev/full: writing failed: No space left on device" in said
    assert "unexpected" not in said


def test_predict_names_line_and_column_of_rows_it_cannot_read(trained, aijobs_raw, tmp_path):
    rows = aijobs_raw.sample(12, random_state=4).reset_index(drop=True)
    rows.loc[2, "job_title"] = "Data Scientist Zürich"
    rows.loc[5] = list(rows.columns)  # a header line pasted in again
    rows.to_csv(tmp_path / "in.csv", index=False, encoding="latin-1")
    _invoke("predict", "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "out.csv"))
    out = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert len(out) == 12
    assert out.loc[2, "error"].startswith("line 4: job_title = 'Data Scientist Z\ufffdrich'")
    assert "not UTF-8 text" in out.loc[2, "error"]
    assert out.loc[5, "error"] == "line 7: line: repeated header line"
    scored = out.drop(index=[2, 5])
    assert (scored["error"] == "").all() and (pd.to_numeric(scored["estimate_usd"]) > 10_000).all()


def test_predict_writes_and_counts_the_maimai_figure_for_china(trained, tmp_path) -> None:
    jobs = pd.DataFrame(
        {"job_title": ["Computer Vision Engineer", "Data Analyst", "NLP Engineer"],
         "country": ["China", "CN", "Germany"]}
    )  # fmt: skip
    jobs.to_csv(tmp_path / "cn.csv", index=False)
    result = _invoke("predict", "--input", str(tmp_path / "cn.csv"), "--output",
                     str(tmp_path / "cn_out.csv"))  # fmt: skip
    assert "Maimai 2023 pay beside 1 China rows: column 'market_reference'" in result.output
    out = pd.read_csv(tmp_path / "cn_out.csv", keep_default_na=False)
    assert "¥1,106,000" in out["market_reference"][0]
    assert out["market_reference"][1] == "" and out["market_reference"][2] == ""
    assert out["estimate_usd"].notna().all()


def test_predict_canonical_and_postings_formats(trained, postings_raw, tmp_path) -> None:
    canonical = pd.DataFrame(
        {
            "job_title": ["Data Scientist", "Senior Data Engineer"],
            "country": ["Germany", "US"],
            "skills": ["python;sql", ""],
        }
    )
    canonical.to_csv(tmp_path / "c.csv", index=False)
    _invoke("predict", "--input", str(tmp_path / "c.csv"), "--output", str(tmp_path / "c_out.csv"))
    out = pd.read_csv(tmp_path / "c_out.csv", keep_default_na=False)
    assert len(out) == 2 and (out["view"] == "aijobs").all()  # the configured default view
    postings_raw.head(10).to_csv(tmp_path / "p.csv", index=False)
    _invoke(
        "predict",
        "--input",
        str(tmp_path / "p.csv"),
        "--output",
        str(tmp_path / "p_out.csv"),
        "--source",
        "postings",
    )
    out = pd.read_csv(tmp_path / "p_out.csv", keep_default_na=False)
    assert len(out) == 10 and (out["view"] == "postings").all()


def test_predict_refuses_an_unknown_format_clearly(trained, tmp_path) -> None:
    pd.DataFrame({"title": ["x"], "pay": [1]}).to_csv(tmp_path / "bad.csv", index=False)
    result = runner.invoke(
        app, ["predict", "--input", str(tmp_path / "bad.csv"), "--output", str(tmp_path / "o.csv")]
    )
    assert result.exit_code == 2
    assert "no configured source matches" in result.output


def test_second_run_on_same_data_passes_the_gate(fresh) -> None:
    _invoke("train", "--sample", "1500", "--no-baselines")
    assert str(_champion(fresh).version) == "2"


def test_failed_training_never_replaces_the_champion(fresh, monkeypatch) -> None:
    import salarymodel.registry.bundles as registry

    def boom(model):
        raise RuntimeError("disk full while logging the model")

    # training imports it when it logs (registry pulls in MLflow). A smaller sample than
    # the champion's: this training fails at its last step whatever it was trained on.
    monkeypatch.setattr(registry, "log_model_bundle", boom)
    result = runner.invoke(app, ["train", "--sample", "500", "--no-baselines"])
    assert result.exit_code != 0
    assert "disk full while logging the model" in str(result.exception), result.output
    assert str(_champion(fresh).version) == "1"
    settings = load_settings(fresh / "configs" / "salarymodel.yaml")
    versions = connect(settings).search_model_versions(
        f"name='{settings.tracking.registered_model}'"
    )
    assert [str(v.version) for v in versions] == ["1"]


def test_promoting_the_champion_changes_nothing(fresh) -> None:
    # It was pushed onto the champion history again (v2: 1 -> 2 -> 3 times champion), and
    # the rollback that pops every copy then forgot v2 had ever been champion.
    from salarymodel.registry.champion import TAG_CHAMPION_SINCE, TAG_HISTORY

    settings = load_settings(fresh / "configs" / "salarymodel.yaml")
    client, name = connect(settings), settings.tracking.registered_model

    def registry() -> tuple[dict, dict, str]:
        listed = runner.invoke(app, ["versions", "--json"]).stdout
        return (
            client.get_registered_model(name).tags,
            client.get_model_version(name, "1").tags,
            listed,
        )

    before = registry()
    assert json.loads(before[0][TAG_HISTORY]) == ["1"] and TAG_CHAMPION_SINCE in before[1]
    for _ in range(2):
        said = _invoke("promote", "1").output
        assert registry() == before  # history, when it became champion, times_champion
        assert " ".join(said.split()) == "v1 is already the champion; nothing changed"
    refused = runner.invoke(app, ["rollback"])
    assert refused.exit_code == 2
    assert "v1 is the only champion there has been" in " ".join(refused.output.split())
    assert registry() == before


def test_without_a_champion_evaluate_says_to_train_and_the_report_states_no_accuracy(
    project,
) -> None:
    from salarymodel.registry.views import champion_accuracy

    result = runner.invoke(app, ["evaluate"])
    assert result.exit_code == 2
    # No store yet: evaluate refuses (and creates none) rather than read "no champion".
    assert "does not exist; it is never created by this command" in result.output
    assert "run `salarymodel train`" in result.output
    assert not (project / "mlflow.db").exists()
    assert champion_accuracy(load_settings(project / "configs" / "salarymodel.yaml")) is None


def test_train_if_no_champion_skips_when_one_exists(trained) -> None:
    result = _invoke("train", "--if-no-champion")
    assert "not training" in result.output
    assert str(_champion(trained).version) == "1"


def test_explain_then_report_write_their_files(trained, tmp_path, monkeypatch) -> None:
    # SHAP on 300 of the training records, not 5,000: this checks what the commands
    # write, not the premiums (the shared project's configs are put back afterwards).
    yaml = trained / "configs" / "salarymodel.yaml"
    kept = yaml.read_text()
    assert "  sample_size: 5000\n" in kept
    yaml.write_text(kept.replace("  sample_size: 5000\n", "  sample_size: 300\n"))
    config._load_settings.cache_clear()
    # Run from another folder: by default both write into the project (SALARYMODEL_ROOT),
    # not into the working directory (they once wrote ./models/...).
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    try:
        _explain_then_report(trained / "models")
        assert list(elsewhere.iterdir()) == []
    finally:
        yaml.write_text(kept)
        config._load_settings.cache_clear()
        for folder in ("explanations", "report"):
            shutil.rmtree(trained / "models" / folder, ignore_errors=True)


def _explain_then_report(models: Path) -> None:
    result = _invoke("explain")
    assert "top skill premiums" in result.stdout
    written = {p.name for p in (models / "explanations").iterdir()}
    assert {"premiums.csv", "premiums.json", "shap_beeswarm.png", "premium_skills.png"} <= written
    _invoke("report")
    html = (models / "report" / "report.html").read_text()
    assert "data:image/png;base64" in html
    assert "premium" in html.lower()
    # the champion's held-out accuracy is stated in plain words
    assert "median error" in html


def _figures(money: str) -> int:
    return int(re.sub(r"\D", "", money))


def test_the_served_ranges_carry_the_backtests_drift_stretch(trained) -> None:
    """What the backtest measured (logged as backtest.drift.*) is in the champion's bundle."""
    from salarymodel.registry.bundles import load_champion

    settings = load_settings()
    model, version = load_champion(settings)
    metrics = connect(settings).get_run(version.run_id).data.metrics
    logged = {
        tuple(key.split(".")[2:]): value
        for key, value in metrics.items()
        if key.startswith("backtest.drift.")
    }
    assert model.ranges is not None
    served = {(s, tail): f for s, tails in model.ranges.drift.items() for tail, f in tails.items()}
    # On this 1,500-record sample only postings has folds enough for a backtest.
    assert {("postings", "low"), ("postings", "high")} <= set(served)
    assert served == pytest.approx(logged)
    assert any(abs(f - 1.0) > 0.01 for f in served.values())  # a stretch, not all 1.0


# ----- where a salary falls, in its currency ------------------------------------------------
def test_predict_adds_a_percentile_for_a_salary_column(trained, aijobs_raw, tmp_path) -> None:
    from salarymodel.core.currency import pay_in_usd
    from salarymodel.core.ranges import salary_percentile
    from salarymodel.data.geography import to_iso2
    from salarymodel.registry.bundles import load_champion

    picks = [aijobs_raw[aijobs_raw["salary_currency"] == c].sample(2, random_state=5)
             for c in ("EUR", "GBP", "USD")]  # fmt: skip
    rows = pd.concat(picks, ignore_index=True)
    rows["current_salary"], rows["currency"] = rows["salary"], rows["salary_currency"]
    rows["period"] = ""
    same_job = pd.concat([rows.iloc[[4]]] * 4, ignore_index=True)
    same_job["current_salary"] = ["30000", "60000", "120000", "240000"]
    same_job["currency"] = "USD"
    bad = pd.concat([rows.iloc[[0]]] * 6, ignore_index=True)
    bad["current_salary"] = ["-5", "lots", "50000", "50000", "9000000000", ""]
    bad["currency"] = ["EUR", "EUR", "NGN", "EUR", "USD", "EUR"]  # NGN: no ECB rate
    bad["period"] = ["", "", "", "week", "", ""]
    pd.concat([rows, same_job, bad], ignore_index=True).to_csv(tmp_path / "in.csv", index=False)
    result = _invoke(
        "predict", "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "out.csv")
    )
    assert "10 rows have a percentile" in result.output
    out = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert (pd.to_numeric(out["estimate_usd"]) > 10_000).all()  # a bad pay blocks no estimate
    good = out.iloc[:10]
    assert (good["error"] == "").all()
    percentile = pd.to_numeric(good["percentile"])
    assert percentile.between(0, 100).all()
    assert percentile.iloc[6:10].is_monotonic_increasing and percentile.iloc[6] < percentile.iloc[9]
    usd = 240_000.0  # the last same-job row, in USD a year
    last = good.iloc[9]
    raw = salary_percentile(usd, last["estimate_usd"], last["low_usd"], last["high_usd"],
                            last["coverage"])  # fmt: skip
    # Read through the map of the row's pay-level group (percentile_calibration).
    model, _ = load_champion(load_settings())
    country = to_iso2(rows.iloc[4]["employee_residence"])
    expected = model.percentiles.calibrate(raw, last["view"], country)
    assert percentile.iloc[9] == pytest.approx(expected, abs=0.1)
    # The estimate in the country's own money, written its way (Babel), at the ECB
    # rate of the job's year (compared to a unit: the CSV's estimate_usd is in cents).
    from salarymodel.core.money_format import in_local_money

    for i in range(6):
        shown = out.loc[i, "estimate_local"]
        country = to_iso2(rows.iloc[i]["employee_residence"])
        expected = in_local_money(
            out.loc[i, "estimate_usd"], country, int(rows.iloc[i]["work_year"])
        )
        assert _figures(shown) == pytest.approx(_figures(expected), abs=1), (shown, expected)
        assert re.sub(r"\d", "", shown) == re.sub(r"\d", "", expected)  # symbol and separators
    # The EUR and GBP rows: the percentile of the pay converted to yearly USD at the
    # model's rate for the row's year, not of the amount as given.
    discriminates = False
    for i in range(4):
        row, scored = rows.iloc[i], good.iloc[i]
        assert row["currency"] in ("EUR", "GBP")
        amount, year = float(row["current_salary"]), int(row["work_year"])
        converted, _ = pay_in_usd(
            amount, row["currency"], "year", year, model.currency, load_settings().validation
        )
        assert converted != pytest.approx(amount, rel=0.02)  # EUR ~0.90, GBP ~0.80 per USD
        at = (scored["estimate_usd"], scored["low_usd"], scored["high_usd"], scored["coverage"])
        where = (scored["view"], to_iso2(row["employee_residence"]))
        expected = model.percentiles.calibrate(salary_percentile(converted, *at), *where)
        unconverted = model.percentiles.calibrate(salary_percentile(amount, *at), *where)
        assert percentile.iloc[i] == pytest.approx(expected, abs=0.1), (i, expected, unconverted)
        discriminates |= abs(expected - unconverted) > 0.5
    assert discriminates  # at least one row where the unconverted amount lands elsewhere
    errors = out["error"].iloc[10:].tolist()
    assert errors[0].startswith("line 12: current_salary = '-5'") and "positive" in errors[0]
    assert errors[1] == "line 13: current_salary = 'lots': not a number"
    assert errors[2].startswith("line 14: currency = 'NGN'") and "allowed: USD" in errors[2]
    assert errors[3].startswith("line 15: period = 'week'") and "year, month" in errors[3]
    assert errors[4].startswith("line 16: current_salary = '9000000000'")
    assert "not a plausible salary" in errors[4]
    assert errors[5] == "" and out["percentile"].iloc[15] == ""  # no pay given: nothing to say


# ----- what the CLI prints, in a pipe --------------------------------------------------------
def _piped(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env["SALARYMODEL_ROOT"] = str(root)
    command = [str(Path(sys.executable).parent / "salarymodel"), *args]
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _strict_json(text: str):
    def refuse(name: str) -> None:
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def test_listing_commands_fit_80_columns_and_print_strict_json(trained) -> None:
    # The tables in a real pipe (no terminal, no COLUMNS): Rich's own width there.
    table = _piped(trained, "versions").stdout
    lines = table.splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in table
    for word in ("version", "created", "origin", "MAE", "held-out", "parent", "data"):
        assert word in table
    evaluated = _piped(trained, "evaluate").stdout
    assert max(len(line) for line in evaluated.splitlines()) <= 80 and "…" not in evaluated
    for word in ("fused_lightgbm", "postings", "calibrated", "constant_usd", "constant_log"):
        assert word in evaluated.split()
    # --json is written whole whatever the output is (no width, no markup): parsed
    # strictly (NaN or Infinity would fail); evaluate's is the first test's.
    assert _strict_json(_invoke("versions", "--json").stdout)[0]["version"] == "1"


def test_drift_writes_into_the_project_by_default(trained, aijobs_raw, tmp_path, monkeypatch):
    # It once wrote ./models/drift wherever it was run from.
    aijobs_raw.sample(200, random_state=10).to_csv(tmp_path / "new.csv", index=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    try:
        _invoke("drift", "--data", str(tmp_path / "new.csv"))
        assert list(elsewhere.iterdir()) == []
        assert {"drift.html", "drift.json"} <= {
            p.name for p in (trained / "models" / "drift").iterdir()
        }
    finally:
        shutil.rmtree(trained / "models" / "drift", ignore_errors=True)


def test_drift_prints_json_and_plain_progress_lines_in_a_pipe(trained, aijobs_raw, tmp_path):
    aijobs_raw.sample(300, random_state=9).to_csv(tmp_path / "new.csv", index=False)
    done = _piped(trained, "drift", "--data", str(tmp_path / "new.csv"),
                  "--output", str(tmp_path / "drift"), "--json")  # fmt: skip
    report = _strict_json(done.stdout)
    assert 250 < report["new_rows"] <= 300 and report["features"]  # 300 rows less repeats
    steps = [line for line in done.stderr.splitlines() if line.startswith("[")]
    said = [re.fullmatch(r"\[ *(\d+\.\d) s\] (.+)", line) for line in steps]
    assert all(said), steps
    assert [m.group(2) for m in said] == [
        "reading new.csv",
        "loading the champion",
        "loading the training data",
        "measuring drift",
        "done",
    ]
    seconds = [float(m.group(1)) for m in said]
    assert seconds == sorted(seconds) and seconds[-1] > 0
    assert "⠋" not in done.stderr  # no spinner frames in a log
