"""Adapters map real rows into canonical records as configured."""

from __future__ import annotations

import pandas as pd
import pytest

from salarymodel.config.sources import SourceConfig
from salarymodel.data.reading import SourceFormatError
from salarymodel.data.sources import adapt, detect_source


def test_survey_rows_map_field_by_field(aijobs_raw, sources, settings) -> None:
    raw = aijobs_raw.head(300)
    records = adapt(raw, "aijobs", sources.sources["aijobs"], settings).records
    assert len(records) == len(raw)
    assert records["job_title"].tolist() == raw["job_title"].tolist()
    assert records["country"].tolist() == raw["employee_residence"].tolist()
    assert records["company_country"].tolist() == raw["company_location"].tolist()
    assert records["salary_usd"].tolist() == raw["salary_in_usd"].tolist()
    assert records["skills"].isna().all()  # the survey has no skills: missing, not empty
    assert (records["source"] == "aijobs").all()
    assert records["row_number"].tolist() == list(range(2, 302))


def test_leaky_columns_never_reach_records(aijobs_raw, sources, settings) -> None:
    adapted = adapt(aijobs_raw.head(50), "aijobs", sources.sources["aijobs"], settings)
    assert "salary" not in adapted.raw.columns
    assert "salary_currency" not in adapted.raw.columns
    assert "salary_currency" not in adapted.records.columns


def test_a_frame_of_only_a_header_adapts_to_no_records(aijobs_raw, sources, settings) -> None:
    # The row ids of no rows once stayed numbers, and "aijobs:" + ids failed.
    adapted = adapt(aijobs_raw.head(0), "aijobs", sources.sources["aijobs"], settings)
    assert len(adapted.records) == 0 and "job_title" in adapted.records.columns


def test_postings_derive_fields_with_rules(postings_raw, sources, settings) -> None:
    raw = postings_raw.head(500)
    records = adapt(raw, "postings", sources.sources["postings"], settings).records
    assert set(records["remote_ratio"].dropna()) <= {0, 100}
    anywhere = (raw["job_location"] == "Anywhere").to_numpy()
    assert (records.loc[anywhere, "remote_ratio"] == 100).all()
    assert records["company_size"].isna().all()
    sudan = (raw["job_country"] == "Sudan").to_numpy()
    assert "SD" not in set(records.loc[sudan, "country"].dropna())
    assert all(isinstance(s, list) for s in records["skills"])


def test_missing_columns_are_named(aijobs_raw, sources, settings) -> None:
    with pytest.raises(SourceFormatError, match="salary_in_usd"):
        adapt(
            aijobs_raw.head(5).drop(columns=["salary_in_usd"]),
            "aijobs",
            sources.sources["aijobs"],
            settings,
        )


def test_a_new_csv_needs_a_config_block_not_code(aijobs_raw, settings) -> None:
    """A file with other column names and value codes is mapped by configuration alone."""
    renamed = aijobs_raw.head(200).rename(
        columns={
            "job_title": "Title",
            "salary_in_usd": "PayUSD",
            "employee_residence": "Where",
            "experience_level": "Level",
        }
    )
    renamed["Level"] = renamed["Level"].map(
        {"EN": "junior", "MI": "mid", "SE": "senior", "EX": "exec"}
    )
    config = SourceConfig.model_validate(
        {
            "pay_kind": "reported",
            "fields": {
                "job_title": {"column": "Title"},
                "experience_level": {
                    "column": "Level",
                    "values": {"junior": "EN", "mid": "MI", "senior": "SE", "exec": "EX"},
                },
                "country": {"column": "Where", "rule": "country_to_iso2"},
                "salary_usd": {"column": "PayUSD"},
            },
        }
    )
    records = adapt(renamed, "partner", config, settings).records
    assert records["experience_level"].tolist() == aijobs_raw.head(200)["experience_level"].tolist()
    assert records["salary_usd"].tolist() == aijobs_raw.head(200)["salary_in_usd"].tolist()


def test_detect_source_prefers_the_specific_adapter(aijobs_raw, postings_raw, sources) -> None:
    assert detect_source(list(aijobs_raw.columns), sources) == "aijobs"
    assert detect_source(list(postings_raw.columns), sources) == "postings"
    assert detect_source(["job_title", "country"], sources) == "canonical"
    with pytest.raises(SourceFormatError, match="no configured source"):
        detect_source(["title", "pay"], sources)


def test_repeats_share_an_id(aijobs_raw, sources, settings) -> None:
    raw = pd.concat([aijobs_raw.head(3), aijobs_raw.head(1)], ignore_index=True)
    records = adapt(raw, "aijobs", sources.sources["aijobs"], settings).records
    assert records["repeat_id"][3] == records["repeat_id"][0]
    assert records["repeat_id"][1] != records["repeat_id"][0]
