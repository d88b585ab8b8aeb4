"""The CLI end to end: train on a real sample into a temporary MLflow store, then predict."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from salarymodel.cli import app
from salarymodel.config import load_settings
from salarymodel.registry import champion_version, connect

pytestmark = pytest.mark.slow
runner = CliRunner()


def _invoke(*args: str):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output + (result.stderr if result.stderr_bytes else "")
    return result


@pytest.fixture()
def trained(project):
    _invoke("train", "--sample", "1500", "--no-baselines")
    return project


def _champion(project):
    settings = load_settings(project / "configs" / "salarymodel.yaml")
    return champion_version(connect(settings), settings)


def test_train_registers_and_promotes_then_evaluate_prints_json(trained) -> None:
    assert (trained / "mlflow.db").exists()
    assert str(_champion(trained).version) == "1"
    result = _invoke("evaluate", "--json")
    payload = json.loads(result.stdout)
    assert payload["model_version"] == "1"
    sources = {row["source"] for row in payload["table"]}
    assert sources == {"aijobs", "postings", "all"}
    assert {"aijobs", "postings"} == set(payload["fusion"]) or payload["fusion"] == {}


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


def test_second_run_on_same_data_passes_the_gate(trained) -> None:
    _invoke("train", "--sample", "1500", "--no-baselines")
    assert str(_champion(trained).version) == "2"


def test_failed_training_never_replaces_the_champion(trained, monkeypatch) -> None:
    import salarymodel.training as training

    def boom(model):
        raise RuntimeError("disk full while logging the model")

    monkeypatch.setattr(training, "log_model_bundle", boom)
    result = runner.invoke(app, ["train", "--sample", "1500", "--no-baselines"])
    assert result.exit_code != 0
    assert str(_champion(trained).version) == "1"
    settings = load_settings(trained / "configs" / "salarymodel.yaml")
    versions = connect(settings).search_model_versions(
        f"name='{settings.tracking.registered_model}'"
    )
    assert [str(v.version) for v in versions] == ["1"]


def test_train_if_no_champion_skips_when_one_exists(trained) -> None:
    result = _invoke("train", "--if-no-champion")
    assert "not training" in result.output
    assert str(_champion(trained).version) == "1"
