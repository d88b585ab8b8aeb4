"""Drift report on real survey rows: an older year as reference, a later one as new."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from salarymodel.core.features import FeatureBuilder
from salarymodel.data.dataset import prepare_source
from salarymodel.data.sources import adapt
from salarymodel.evaluation.drift import PSI_MAJOR, drift_report, psi, salary_shift
from salarymodel.evaluation.drift_output import write_drift_report


def _records(raw: pd.DataFrame, settings, sources) -> pd.DataFrame:
    adapted = adapt(raw.reset_index(drop=True), "aijobs", sources.sources["aijobs"], settings)
    return prepare_source(adapted, sources, settings, None).records


@pytest.fixture(scope="module")
def years(aijobs_raw, settings, sources):
    year = aijobs_raw["work_year"].astype(int)
    reference = _records(aijobs_raw[year == 2023].sample(2500, random_state=4), settings, sources)
    new = _records(aijobs_raw[year == 2024].sample(2500, random_state=4), settings, sources)
    return reference, new, FeatureBuilder.fit(reference, settings.features)


def test_psi_is_zero_for_the_same_mix_and_large_for_a_new_one() -> None:
    assert psi(np.array([10, 20, 70]), np.array([1, 2, 7])) == pytest.approx(0.0)
    assert psi(np.array([50, 50, 0]), np.array([0, 50, 50])) > PSI_MAJOR
    assert psi(np.array([50, 50]), np.array([55, 45])) < 0.1


def test_later_year_drift_names_features_unseen_values_and_salary_shift(years) -> None:
    reference, new, builder = years
    report = drift_report(reference, new, builder)
    features = {f.feature: f for f in report.features}
    assert features["year"].level == "major"  # 2024 never occurs in the reference
    moved = {b["bin"]: (b["reference"], b["new"]) for b in features["year"].bins[:2]}
    assert moved == {"2023": (1.0, 0.0), "2024": (0.0, 1.0)}
    values = [f.psi for f in report.features]
    assert values == sorted(values, reverse=True)
    # Unseen titles are exactly the new titles no reference record has.
    known = set(reference["job_title"].str.strip().str.lower())
    unseen = set(new["job_title"].str.strip().str.lower()) - known
    assert report.unseen["titles"]["never_in_reference"] == len(unseen)
    countries = set(new["country"].dropna()) - set(reference["country"].dropna())
    assert report.unseen["countries"]["never_in_reference"] == len(countries)
    assert report.unseen["skills"]["never_in_reference"] == 0  # the survey lists no skills
    salary = report.salary["aijobs"]
    median_new = float(np.median(new["salary_usd"]))
    median_ref = float(np.median(reference["salary_usd"]))
    assert salary["new"]["median"] == pytest.approx(median_new)
    assert salary["median_shift_pct"] == pytest.approx(100 * (median_new / median_ref - 1))
    assert 0 < salary["ks_statistic"] < 1
    head = report.headline()
    assert head["top_psi"][0]["feature"] == report.features[0].feature


def test_reference_is_restricted_to_the_new_files_sources(years, postings_raw, settings, sources):
    reference, new, builder = years
    adapted = adapt(postings_raw.head(500), "postings", sources.sources["postings"], settings)
    postings = prepare_source(adapted, sources, settings, None).records
    report = drift_report(pd.concat([reference, postings], ignore_index=True), new, builder)
    assert report.sources == ["aijobs"] and report.reference_rows == len(reference)
    assert any("restricted" in note for note in report.notes)


def test_report_files_are_valid_json_and_a_self_contained_page(years, tmp_path) -> None:
    reference, new, builder = years
    json_path, html_path = write_drift_report(drift_report(reference, new, builder), tmp_path)
    payload = json.loads(json_path.read_text())  # strict: no NaN
    assert payload["headline"]["unseen_titles"] >= 0 and payload["features"]
    page = html_path.read_text()
    assert "Population stability index" in page and "experience_level" in page
    assert "http://" not in page and "https://" not in page


def test_salary_shift_of_a_unit_error_is_obvious() -> None:
    rng = np.random.default_rng(0)
    yearly = rng.lognormal(11.8, 0.4, 2000)
    shift = salary_shift(yearly, yearly / 12)
    assert shift["median_shift_pct"] == pytest.approx(-100 * 11 / 12)
    assert shift["ks_statistic"] > 0.9 and shift["psi"] > PSI_MAJOR


def test_a_title_with_markup_is_shown_as_text_on_the_page(years, tmp_path) -> None:
    reference, new, builder = years
    title = "<script>alert('x')</script> engineer"
    tainted = new.copy()
    tainted.loc[tainted.index[:200], "job_title"] = title  # the most frequent unseen title
    report = drift_report(reference, tainted, builder)
    assert report.unseen["titles"]["examples"][0]["value"] == title.lower()
    _, html_path = write_drift_report(report, tmp_path)
    page = html_path.read_text()
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; engineer (200)" in page


def test_no_reference_of_the_new_sources_says_so_on_the_page(years, tmp_path) -> None:
    reference, new, builder = years
    postings = new.assign(source="postings")
    report = drift_report(reference, postings, builder)
    assert report.features == [] and report.salary == {}
    _, html_path = write_drift_report(report, tmp_path)
    page = html_path.read_text()
    assert "<li>no reference records of these sources: drift not measured</li>" in page
    assert "Median salary\n- → - USD" in page
