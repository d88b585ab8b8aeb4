"""Schema check: bad rows quarantined with reasons; rows in = kept + quarantined."""

from __future__ import annotations

import pandas as pd

from salarymodel.sources import adapt
from salarymodel.validation import validate_records, write_quarantine


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
    result = validate_records(adapted.records, settings, raw_columns=list(raw.columns))
    assert result.rows_in == len(raw) == 11
    assert len(result.kept) == 3  # rows 0, 8, 9
    reasons = dict(zip(result.quarantined["row_number"], result.quarantined["reason"], strict=True))
    assert "salary_usd: not a number" in reasons[3]
    assert "salary_usd" in reasons[4] and "in_range" in reasons[4]
    assert "salary_usd" in reasons[5]
    assert "experience_level" in reasons[6]
    assert "remote_ratio" in reasons[7]
    assert "job_title" in reasons[8]
    assert "country" in reasons[9]
    assert "repeated header line" in reasons[12]
    path = write_quarantine(result.quarantined, tmp_path / "q.csv")
    written = pd.read_csv(path)
    assert len(written) == 8 and "reason" in written.columns


def test_salary_is_optional_when_predicting(aijobs_raw, sources, settings) -> None:
    records = _records(aijobs_raw.head(5), sources, settings).records
    records["salary_usd"] = None
    assert len(validate_records(records, settings, require_salary=False).kept) == 5
    assert len(validate_records(records, settings, require_salary=True).kept) == 0
