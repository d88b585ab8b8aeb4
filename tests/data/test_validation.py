"""Schema check: bad rows quarantined with reasons; rows in = kept + quarantined."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from salarymodel.config.settings import ConfigError, load_settings
from salarymodel.data.sources import adapt
from salarymodel.data.validation import quarantine_table, validate_records, write_quarantine

ROOT = Path(__file__).resolve().parents[2]


def _records(raw, sources, settings, name="aijobs"):
    return adapt(raw, name, sources.sources[name], settings)


def test_real_samples_pass(aijobs_raw, postings_raw, sources, settings) -> None:
    for name, raw in (("aijobs", aijobs_raw), ("postings", postings_raw)):
        result = validate_records(
            _records(raw.sample(2000, random_state=1), sources, settings, name).records, settings
        )
        assert len(result.quarantined) == 0, result.quarantined["reason"].head().tolist()
        assert len(result.kept) == 2000


def test_bad_rows_are_set_aside_with_the_column_named(aijobs_raw, sources, settings, tmp_path):
    raw = aijobs_raw.head(10).copy()
    raw.loc[1, "salary_in_usd"] = "lots"
    raw.loc[2, "salary_in_usd"] = "-5"
    raw.loc[3, "salary_in_usd"] = "90000000"
    raw.loc[4, "experience_level"] = "GURU"
    raw.loc[5, "remote_ratio"] = "75"
    raw.loc[6, "job_title"] = None
    raw.loc[7, "employee_residence"] = "Atlantis"
    header = pd.DataFrame([dict(zip(raw.columns, raw.columns, strict=True))])
    raw = pd.concat([raw, header], ignore_index=True)
    adapted = _records(raw, sources, settings)
    result = validate_records(
        adapted.records, settings, labels=adapted.labels, file_problems=adapted.file_problems
    )
    assert result.rows_in == len(raw) == 11
    assert len(result.kept) == 3  # rows 0, 8, 9
    assert result.kept["row_number"].tolist() == [2, 10, 11]
    reasons = dict(zip(result.quarantined["row_number"], result.quarantined["reason"], strict=True))
    # Each reason names the file's own column (salary_in_usd, not the canonical salary_usd).
    assert reasons[3] == "salary_in_usd = 'lots': not a number"
    assert reasons[4] == (
        "salary_in_usd = -5: below the configured minimum of 5,000 USD a year "
        "(validation.salary_usd_min)"
    )
    assert reasons[5].startswith(
        "salary_in_usd = 90000000: above the configured maximum of 5,000,000"
    )
    assert reasons[6] == "experience_level = 'GURU': not one of EN, MI, SE, EX"
    assert reasons[7] == "remote_ratio = 75: not one of 0, 50, 100"
    assert reasons[8] == "job_title: missing"
    assert reasons[9] == "employee_residence: unknown country 'Atlantis'"
    assert reasons[12] == "line: repeated header line"  # its other cells are not judged
    assert sum(result.reason_counts.values()) == 8
    table = quarantine_table(result.quarantined, raw)
    path = write_quarantine(table, tmp_path / "q.csv")
    written = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert written.columns.tolist() == ["line", "reason", *raw.columns]
    assert written["line"].tolist() == ["3", "4", "5", "6", "7", "8", "9", "12"]
    assert written.loc[0, "salary_in_usd"] == "lots"  # the row as delivered


def test_a_year_or_month_with_a_fraction_is_set_aside(aijobs_raw, postings_raw, sources, settings):
    # 2024.5 was scored as a year between two (HTTP refuses it: 422).
    raw = aijobs_raw.head(4).copy()
    raw.loc[1, "work_year"] = "2024.5"
    raw.loc[2, "work_year"] = "2023.0"  # a whole number written as a float is one
    adapted = _records(raw, sources, settings)
    result = validate_records(adapted.records, settings, labels=adapted.labels)
    reasons = dict(zip(result.quarantined["row_number"], result.quarantined["reason"], strict=True))
    assert reasons == {3: "work_year = 2024.5: not a whole number"}
    records = _records(postings_raw.head(3), sources, settings, "postings").records
    records.loc[0, "month"] = 6.5
    quarantined = validate_records(records, settings).quarantined
    assert quarantined["reason"].tolist() == ["month = 6.5: not a whole number"]


def test_salary_is_optional_when_predicting(aijobs_raw, sources, settings) -> None:
    records = _records(aijobs_raw.head(5), sources, settings).records
    records["salary_usd"] = None
    assert len(validate_records(records, settings, require_salary=False).kept) == 5
    assert len(validate_records(records, settings, require_salary=True).kept) == 0


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ("salary_usd_min: 5000", "salary_usd_min: -1"),
        ("salary_usd_max: 5000000", "salary_usd_max: 4000"),
    ],
)
def test_salary_bounds_in_the_configuration_are_checked(tmp_path, change, named) -> None:
    text = (ROOT / "configs" / "salarymodel.yaml").read_text()
    assert change in text
    (tmp_path / "salarymodel.yaml").write_text(text.replace(change, named))
    with pytest.raises(ConfigError, match="salary_usd_m"):
        load_settings(tmp_path / "salarymodel.yaml")


def test_environment_variables_override_their_settings(monkeypatch) -> None:
    from salarymodel.config.settings import ConfigError, load_settings
    from salarymodel.registry.store import tracking_uri

    monkeypatch.setenv("SALARYMODEL_MODEL_SOURCE", " BentoML ")
    monkeypatch.setenv("SALARYMODEL_WORKERS", "3")
    monkeypatch.setenv("SALARYMODEL_TRACKING_URI", "sqlite:////tmp/elsewhere.db")
    settings = load_settings()
    assert settings.serving.model_source == "bentoml" and settings.serving.workers == 3
    assert tracking_uri(settings) == "sqlite:////tmp/elsewhere.db"
    monkeypatch.delenv("SALARYMODEL_WORKERS")
    assert load_settings().serving.workers == 2  # read again, not cached from before
    monkeypatch.setenv("SALARYMODEL_MODEL_SOURCE", "ftp")
    with pytest.raises(ConfigError, match="SALARYMODEL_MODEL_SOURCE from the environment"):
        load_settings()
