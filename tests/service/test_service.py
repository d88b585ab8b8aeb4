"""The BentoML service: every endpoint through the test client, the 422s and limits,
a real `salarymodel serve` process over HTTP, the BentoML model store and `bentoml build`.

A small real champion is trained once per session (1,500 rows per source) in
a throw-away project root; test_web.py shares it and the served process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from helpers.served import (
    JOB,
    champion_root,
    free_port,
    project_env,
    served_url,
    stop_process,
    wait_for_model,
)

from salarymodel import vocabulary as vocabulary_module
from salarymodel.core.row_spec import AT

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


# ----- fixtures ------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return champion_root(tmp_path_factory)


@pytest.fixture(scope="module")
def service_env(root: Path) -> Iterator[Path]:
    """This process pointed at the champion's project root (the service reads it on load)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in project_env(root).items():
            patch.setenv(name, value)
        yield root


@pytest.fixture(scope="module")
def client(service_env: Path):
    """BentoML's ASGI app of the service in this process (loads the champion on start)."""
    from starlette.testclient import TestClient

    from salarymodel.serving.service import SalaryService

    with TestClient(SalaryService.to_asgi()) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def champion(service_env: Path):
    """The same champion loaded straight from the registry, to compare answers with."""
    from salarymodel.config.settings import load_settings
    from salarymodel.registry.bundles import load_champion

    return load_champion(load_settings())


@pytest.fixture(scope="session")
def url(root: Path, request: pytest.FixtureRequest) -> str:
    return served_url(root, request)


def _varied_jobs(n: int) -> list[dict[str, Any]]:
    titles = ["Data Engineer", "Machine Learning Engineer", "Data Analyst", "Zookeeper",
              "Head of Data", "Research Scientist", "BI Developer"]  # fmt: skip
    countries = ["US", "de", "United Kingdom", "Atlantis", "IN", "Spain", "CA"]
    skills = [["python"], ["sklearn", "sql"], [], ["cobol-on-mars", "aws"], ["tableau"], None]
    jobs = []
    for i in range(n):
        job = {
            "job_title": titles[i % len(titles)],
            "country": countries[i % len(countries)],
            "experience_level": ["EN", "MI", "SE", "EX"][i % 4],
            "remote_ratio": [0, 50, 100][i % 3],
            "view": ["aijobs", "postings"][i % 2],
        }
        if skills[i % len(skills)] is not None:
            job["skills"] = skills[i % len(skills)]
        jobs.append(job)
    return jobs


# ----- /predict ------------------------------------------------------------------------------
def test_predict_gives_estimate_range_support_and_version(client, champion) -> None:
    model, version = champion
    answer = client.post("/predict", json=JOB)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["low_usd"] < body["estimate_usd"] < body["high_usd"]
    assert body["coverage"] == pytest.approx(0.8)
    assert body["support"] >= 0 and isinstance(body["thin_support"], bool)
    assert body["view"] == "aijobs"  # the configured default view
    assert body["model_version"] == str(version.version)
    from salarymodel.serving.service import JobRequest

    year = JobRequest(job_title="x").year
    direct = model.estimate_job({**JOB, "country": "DE", "company_country": "DE", "year": year})
    assert body["estimate_usd"] == pytest.approx(direct.estimate_usd, abs=0.5)
    assert body["high_usd"] == pytest.approx(direct.high_usd, abs=0.5)
    # The answer names the calibration group its range rests on, and its records.
    assert body["range_basis"] == {
        "group": direct.range_basis.group,
        "records": direct.range_basis.records,
    }
    assert body["range_basis"]["records"] > 0


def test_the_answer_says_how_its_groups_estimates_fared_on_a_later_year(client, champion):
    model, _ = champion
    track, percentiles = model.track_record, model.percentiles
    assert track is not None and percentiles is not None  # train's backtest wrote it
    card = client.get("/model").json()["track_record"]
    assert {row["group"]: row["text"] for row in card} == {
        group: record.text() for group, record in track.groups.items()
    }
    groups = set()
    for country, code in (("US", "US"), ("Germany", "DE"), ("IN", "IN"), ("Atlantis", None)):
        body = client.post("/predict", json={**JOB, "country": country}).json()
        record = track.of(percentiles.group_of(body["view"], code))
        assert record is not None
        groups.add(record.group)
        answer = body["track_record"]
        assert answer["group"] == record.group and answer["records"] == record.records
        assert answer["median_ratio"] == pytest.approx(record.median_ratio, abs=1e-4)
        assert answer["text"] == record.text() and answer["warned"] == record.warn
        # A group whose estimates missed on a later year says so among the warnings.
        assert (record.warning() in body["warnings"]) == record.warn
    assert {"US", "all"} < groups  # an unranked country reads the overall record


def test_only_the_title_is_required_and_defaults_are_as_documented(client) -> None:
    from salarymodel.serving.service import JobRequest

    bare = client.post("/predict", json={"job_title": "Data Engineer"}).json()
    defaults = {
        name: field.get_default(call_default_factory=True)
        for name, field in JobRequest.model_fields.items()
        if name not in ("job_title", "company_country", "view", "skills")
    }
    assert defaults["experience_level"] == "SE" and defaults["country"] == "US"
    spelled_out = client.post("/predict", json={"job_title": "Data Engineer", **defaults}).json()
    assert bare == spelled_out


def test_country_accepts_codes_and_names(client) -> None:
    answers = [
        client.post("/predict", json={**JOB, "country": c}).json()["estimate_usd"]
        for c in ("DE", "de", "Germany", " germany ")
    ]
    assert len(set(answers)) == 1
    assert client.post("/predict", json={**JOB, "country": "US"}).json()["estimate_usd"] not in (
        answers
    )


def test_the_view_is_passed_to_the_model(client, champion) -> None:
    model, _ = champion
    from salarymodel.serving.service import JobRequest

    year = JobRequest(job_title="x").year
    for view in ("aijobs", "postings"):
        body = client.post("/predict", json={**JOB, "skills": None, "view": view}).json()
        assert body["view"] == view
        job = {**JOB, "skills": None, "country": "DE", "company_country": "DE"}
        direct = model.estimate_job({**job, "year": year, "source": view})
        assert body["estimate_usd"] == pytest.approx(direct.estimate_usd, abs=0.5)


def test_unknown_title_country_and_skill_still_estimate_with_named_warnings(client) -> None:
    job = {"job_title": "Zookeeper", "country": "Atlantis", "skills": ["python", "cobol-on-mars"],
           "view": "postings"}  # fmt: skip
    answer = client.post("/predict", json=job)
    assert answer.status_code == 200
    body = answer.json()
    assert body["estimate_usd"] > 0
    text = " | ".join(body["warnings"])
    assert "Zookeeper" in text and "Atlantis" in text and "cobol-on-mars" in text
    assert "'python'" not in text  # a known skill is not reported
    # The survey never states skills: its view reads none of them, and says so once.
    survey = client.post("/predict", json={**job, "view": "aijobs"}).json()
    text = " | ".join(survey["warnings"])
    assert "does not record skills" in text and "cobol-on-mars" not in text


# ----- 422 and limits --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "field", "allowed"),
    [
        ({"experience_level": "XX"}, "experience_level", ["EN", "MI", "SE", "EX"]),
        ({"company_size": "XL"}, "company_size", ["S", "M", "L"]),
        ({"remote_ratio": 30}, "remote_ratio", [0, 50, 100]),
        ({"employment_type": "intern"}, "employment_type", ["FT", "PT", "CT", "FL"]),
        ({"view": "glassdoor"}, "view", ["aijobs", "postings"]),
        ({"job_title": "x" * 201}, "job_title", None),
        ({"job_title": "  "}, "job_title", None),
        ({"job_title": "\u200b"}, "job_title", None),  # zero-width space: no visible letter
        ({"job_title": "\u200b\u200d 42"}, "job_title", None),
        # Codes are exact, as the OpenAPI document lists them (no case folding).
        ({"experience_level": "se"}, "experience_level", ["EN", "MI", "SE", "EX"]),
        ({"view": "AIJOBS"}, "view", ["aijobs", "postings"]),
        ({"period": "Month"}, "period", ["year", "month"]),
        ({"currency": "eur"}, "currency", None),
        ({"currency": "EUR "}, "currency", None),
        ({"skills": [f"skill{i}" for i in range(101)]}, "skills", None),
        ({"skills": "python"}, "skills", None),
        ({"year": 1990}, "year", None),
        ({"contry": "DE"}, "contry", None),
    ],
)
def test_invalid_values_get_422_naming_the_field_and_allowed_values(
    client, change: dict, field: str, allowed: list | None
) -> None:
    for route in ("/predict", "/explain"):
        answer = client.post(route, json={**JOB, **change})
        assert answer.status_code == 422, answer.text
        body = answer.json()
        problem = next(d for d in body["detail"] if d["field"] == field)
        assert field in body["error"]
        if allowed is not None:
            assert problem["allowed"] == allowed
            assert all(str(v) in body["error"] for v in allowed)


def test_missing_title_and_broken_json_get_422(client) -> None:
    missing = client.post("/predict", json={"country": "US"})
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["field"] == "job_title"
    broken = client.post(
        "/predict", content=b'{"job_title": ', headers={"content-type": "application/json"}
    )
    assert broken.status_code == 422


def test_oversized_bodies_are_refused_before_parsing(client) -> None:
    padding = {**JOB, "job_title": "Data Engineer", "skills": ["python"] * 90}
    single = json.dumps({**padding, "filler": "x" * 70_000}).encode()
    answer = client.post("/predict", content=single, headers={"content-type": "application/json"})
    assert answer.status_code == 413
    row = b'{"job_title":"Data Engineer"},'
    huge = b'{"jobs":[' + row * (33 * 1024**2 // len(row)) + b'{"job_title":"x"}]}'
    started = time.perf_counter()
    headers = {"content-type": "application/json"}
    answer = client.post("/predict_batch", content=huge, headers=headers)
    assert answer.status_code == 413
    assert "4,194,304 bytes" in answer.json()["error"]  # serving.batch_max_bytes
    assert time.perf_counter() - started < 20


def test_batch_over_10000_jobs_gets_413_naming_the_limit(client) -> None:
    answer = client.post("/predict_batch", json={"jobs": [{"job_title": "x"}] * 10_001})
    assert answer.status_code == 413
    assert "10,000 jobs" in answer.json()["error"]
    invalid = client.post("/predict_batch", json={"jobs": [JOB, {**JOB, "remote_ratio": 7}]})
    assert invalid.status_code == 422
    assert invalid.json()["detail"][0]["field"] == "jobs[1].remote_ratio"


# ----- the person's pay, currency and period --------------------------------------------------
@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"current_salary": -5}, "current_salary", "greater than 0"),
        ({"current_salary": 0}, "current_salary", "greater than 0"),
        ({"current_salary": "50000"}, "current_salary", "valid number"),
        ({"current_salary": 1e9}, "current_salary", "not a plausible salary"),
        # 300 a month is 3,600 USD a year: below validation.salary_usd_min once yearly
        ({"current_salary": 300, "period": "month"}, "current_salary", "3,600 USD a year"),
        ({"current_salary": 200, "currency": "EUR"}, "current_salary", "not a plausible"),
        # Nigeria's naira: a country's currency the ECB does not quote.
        ({"currency": "NGN"}, "currency", "allowed: USD, AUD"),
        ({"currency": "XYZ", "current_salary": 50_000}, "currency", "not a supported currency"),
        ({"currency": "euro", "current_salary": 50_000}, "currency", "at most 3 characters"),
        # A pattern in words, not as its regex.
        ({"currency": "eur", "current_salary": 50_000}, "currency", "three capital letters"),
        ({"job_title": "123"}, "job_title", "must contain a letter"),
        ({"location": "  "}, "location", "must not be blank"),
        ({"period": "week"}, "period", "year, month"),
    ],
)
def test_an_implausible_salary_or_unknown_currency_gets_422_naming_the_field(
    client, change: dict, field: str, words: str
) -> None:
    for route in ("/predict", "/explain"):
        answer = client.post(route, json={**JOB, **change})
        assert answer.status_code == 422, answer.text
        body = answer.json()
        assert [d["field"] for d in body["detail"]] == [field]
        assert words in body["error"] and body["error"].startswith(f"invalid request: {field}: ")


def test_amounts_come_in_the_requests_currency_and_period(client) -> None:
    card = client.get("/model").json()["currencies"]
    eur = card["rates"]["EUR"]
    # The ECB's latest year (the package's rates run to 2026-10-30): its mean daily rate.
    assert eur["year"] >= 2026 and 0.80 < eur["per_usd"] < 0.96
    usd = client.post("/predict", json=JOB).json()
    assert usd["amounts"]["currency"] == "USD" and usd["amounts"]["estimate"] == usd["estimate_usd"]
    assert usd["current_salary"] is None
    body = client.post("/predict", json={**JOB, "currency": "EUR", "period": "month"}).json()
    amounts = body["amounts"]
    assert (amounts["currency"], amounts["period"]) == ("EUR", "month")
    rate = amounts["exchange_rate"]
    assert {k: rate[k] for k in ("currency", *eur)} == {"currency": "EUR", **eur}
    assert rate["note"].endswith("daily ECB reference rates") and "no ECB rate" not in rate["note"]
    for name in ("estimate", "low", "high"):
        assert amounts[name] == pytest.approx(body[f"{name}_usd"] * eur["per_usd"] / 12, abs=1)
    # An older year converts at that year's rate, and says so.
    older = client.post("/predict", json={**JOB, "currency": "EUR", "year": 2021}).json()
    assert older["amounts"]["exchange_rate"]["year"] == 2021
    assert older["amounts"]["exchange_rate"]["per_usd"] != eur["per_usd"]
    # A year past the table's last converts at the nearest year's, and says so.
    later = client.post("/predict", json={**JOB, "currency": "CNY", "year": 2030}).json()
    assert later["amounts"]["exchange_rate"]["year"] == eur["year"]
    assert later["amounts"]["exchange_rate"]["note"].startswith("no ECB rate for 2030")
    explained = client.post("/explain", json={**JOB, "currency": "GBP"}).json()
    shares = sum(c["amount"] for c in explained["contributions"])
    local = explained["amounts"]
    assert shares == pytest.approx(
        local["estimate"] - local["base"], abs=len(explained["contributions"])
    )


def test_a_salary_at_the_estimate_reads_through_its_groups_map_and_more_pay_ranks_higher(
    client, champion
):
    from salarymodel.serving.pay_terms import percentile_reading

    model, _ = champion
    # The raw percentile of the estimate is 50; the served one is the calibrated 50th of
    # the job's pay-level group (Germany's, in the survey view), which the answer names.
    curve = model.percentiles.curve_for("aijobs", "DE")
    estimate = client.post("/predict", json=JOB).json()["estimate_usd"]
    at = client.post("/predict", json={**JOB, "current_salary": estimate}).json()["current_salary"]
    assert at["percentile"] == round(curve.apply(50.0), 1)
    assert (at["calibrated_on"], at["calibration_records"]) == (curve.group, curve.records)
    # ...and, where the group's readings were off on a later year, by how much.
    caveat = model.track_record.of(model.percentiles.group_of("aijobs", "DE")).percentile_caveat()
    expected = percentile_reading(curve.apply(50.0), curve.basis())
    assert at["reading"] == (f"{expected}; {caveat}" if caveat else expected)
    assert f"(calibrated on {curve.records:,} records of " in at["reading"]
    seen = []
    for salary in (20_000, 60_000, estimate * 0.9, estimate * 1.1, 250_000, 900_000):
        body = client.post("/explain", json={**JOB, "current_salary": salary}).json()
        seen.append(body["current_salary"]["percentile"])
    assert seen == sorted(seen) and seen[0] < 50 < seen[-1]
    # The same pay given per month in euros falls where its yearly dollars do.
    rate = client.get("/model").json()["currencies"]["rates"]["EUR"]["per_usd"]
    monthly = {**JOB, "current_salary": estimate * rate / 12, "currency": "EUR", "period": "month"}
    position = client.post("/predict", json=monthly).json()["current_salary"]
    assert position["percentile"] == pytest.approx(curve.apply(50.0), abs=0.1)
    assert position["usd_per_year"] == pytest.approx(estimate, abs=1)


def test_the_service_and_the_csv_path_apply_the_same_percentile_map(
    client, champion, aijobs_raw
) -> None:
    from salarymodel.config.settings import load_settings, load_sources
    from salarymodel.core.prediction import predict_frame
    from salarymodel.core.ranges import salary_percentile

    model, _ = champion
    rows = aijobs_raw.sample(40, random_state=11).reset_index(drop=True)
    rows["current_salary"] = rows["salary_in_usd"]
    scored = predict_frame(rows, model, load_settings(), load_sources())
    moved = 0
    for row, out in zip(rows.to_dict("records"), scored.to_dict("records"), strict=True):
        job = {
            "job_title": row["job_title"], "experience_level": row["experience_level"],
            "company_size": row["company_size"], "country": row["employee_residence"],
            "company_country": row["company_location"], "remote_ratio": int(row["remote_ratio"]),
            "employment_type": row["employment_type"], "year": int(row["work_year"]),
            "view": "aijobs", "current_salary": float(row["salary_in_usd"]),
        }  # fmt: skip
        body = client.post("/predict", json=job).json()
        served = body["current_salary"]
        curve = model.percentiles.curve_for("aijobs", row["employee_residence"])
        assert served["calibrated_on"] == curve.group
        pay = job["current_salary"]
        http_raw = salary_percentile(
            pay, body["estimate_usd"], body["low_usd"], body["high_usd"], body["coverage"]
        )
        csv_raw = salary_percentile(
            pay, out["estimate_usd"], out["low_usd"], out["high_usd"], out["coverage"]
        )
        assert served["percentile"] == pytest.approx(curve.apply(http_raw), abs=0.051)
        assert out["percentile"] == pytest.approx(curve.apply(csv_raw), abs=0.051)
        if abs(body["estimate_usd"] - out["estimate_usd"]) < 1:  # the same numbers in
            assert served["percentile"] == pytest.approx(out["percentile"], abs=0.2)
        moved += abs(curve.apply(csv_raw) - csv_raw) > 0.5
    assert moved > 0  # the map changed percentiles: it is applied, not the identity


@pytest.mark.parametrize(
    ("percentile", "reading"),
    [
        (30.2, "about the 30th percentile: 70% of similar jobs pay more"),
        (1.4, "about the 1st percentile: 99% of similar jobs pay more"),
        (22.0, "about the 22nd percentile: 78% of similar jobs pay more"),
        (13.0, "about the 13th percentile: 87% of similar jobs pay more"),
        (0.2, "below the 1st percentile: more than 99% of similar jobs pay more"),
        (99.7, "above the 99th percentile: fewer than 1% of similar jobs pay more"),
    ],
)
def test_the_reading_says_the_percentile_in_words(percentile: float, reading: str) -> None:
    from salarymodel.serving.pay_terms import percentile_reading

    assert percentile_reading(percentile) == reading
    based = percentile_reading(percentile, "1,234 records of US jobs")
    assert based == f"{reading} (calibrated on 1,234 records of US jobs)"


def test_the_batch_stays_in_usd_and_says_so(client) -> None:
    answer = client.post("/predict_batch", json={"jobs": [JOB, {**JOB, "currency": "EUR"}]})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["field"] == "jobs[1].currency"


# ----- /predict_batch ----------------------------------------------------------------------------
@pytest.mark.parametrize("n", [5, 90])  # row by row below 64 jobs, vectorised from 64
def test_batch_answers_as_single_requests_do_in_order(client, n: int) -> None:
    jobs = _varied_jobs(n)
    answer = client.post("/predict_batch", json={"jobs": jobs})
    assert answer.status_code == 200, answer.text
    results = answer.json()
    assert len(results) == n
    for job, result in zip(jobs, results, strict=True):
        single = client.post("/predict", json=job).json()
        for key in ("estimate_usd", "low_usd", "high_usd"):
            assert result[key] == pytest.approx(single[key], abs=1.0), (job, key)
        for key in ("support", "thin_support", "view", "warnings", "model_version"):
            assert result[key] == single[key], (job, key)


def test_a_10000_row_batch_is_one_request(client) -> None:
    jobs = _varied_jobs(10_000)
    answer = client.post("/predict_batch", json={"jobs": jobs})
    assert answer.status_code == 200
    results = answer.json()
    assert len(results) == 10_000
    period = 84  # _varied_jobs repeats itself every lcm(7, 7, 4, 3, 2, 6) jobs
    assert results[7] == results[7 + period]


# ----- /explain ---------------------------------------------------------------------------
def test_whole_shares_add_up_and_stay_within_a_unit() -> None:
    from salarymodel.serving.scoring import whole_shares

    shares = [-7684.6, 3120.4, 250.5, -12.7, 0.4, 1999.9]
    whole = whole_shares(shares, round(sum(shares)))
    assert sum(whole) == round(sum(shares)) and all(
        abs(w - s) < 1 for w, s in zip(whole, shares, strict=True)
    )
    # Shares that are not a split of the total are rounded one by one, not bent to it.
    assert whole_shares([10.4, 20.4], 100) == [10, 20]


def test_explain_contributions_add_up_to_the_estimate(client) -> None:
    answer = client.post("/explain", json=JOB)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    predict = client.post("/predict", json=JOB).json()
    assert body["estimate_usd"] == predict["estimate_usd"]
    contributions = body["contributions"]
    # Exactly, in whole units, as the schema says (each share rounded alone once
    # missed by a few dollars), and the same in the request's currency and period.
    assert sum(c["dollars"] for c in contributions) == body["estimate_usd"] - body["base_usd"]
    monthly = client.post("/explain", json={**JOB, "currency": "EUR", "period": "month"}).json()
    amounts = monthly["amounts"]
    assert sum(c["amount"] for c in monthly["contributions"]) == (
        amounts["estimate"] - amounts["base"]
    )
    assert [c["dollars"] for c in monthly["contributions"]] == [c["dollars"] for c in contributions]
    concepts = {c["concept"]: c for c in contributions}
    assert {"job title", "experience level", "country"} <= set(concepts)
    assert concepts["experience level"]["value"] == "SE"
    assert all(c["dollars"] * c["percent"] >= 0 for c in contributions)  # same sign
    dollars = [abs(c["dollars"]) for c in contributions]
    assert dollars == sorted(dollars, reverse=True)
    # JOB is in the survey's view, which never states skills: none is read as listed.
    skills = {c["concept"]: c["value"] for c in contributions if c["concept"].startswith("skill")}
    assert set(skills.values()) <= {"not stated"}
    postings = client.post("/explain", json={**JOB, "view": "postings"}).json()
    skills = {c["concept"]: c["value"] for c in postings["contributions"]
              if c["concept"].startswith("skill")}  # fmt: skip
    assert skills.get("skill: python", "listed") == "listed"
    assert set(skills.values()) <= {"listed", "not listed"}


# ----- /model, health, page ----------------------------------------------------------------------
def test_model_describes_version_data_metrics_and_vocabulary(client, champion) -> None:
    model, version = champion
    card = client.get("/model").json()
    assert card["model_version"] == str(version.version)
    assert card["loaded_from"] == "mlflow-registry"
    assert card["fingerprint"]["hash"] == model.metadata["fingerprint"]["hash"]
    assert card["metrics"]["cv"]["all"]["mae_usd"] > 0
    vocabulary = card["vocabulary"]
    assert set(vocabulary["skills"]) == set(model.builder.skills)
    assert {"code": "US", "name": "United States"} in vocabulary["countries"]
    assert set(vocabulary["role_families"]) == set(model.builder.role_families)
    assert list(card["allowed"]["experience_level"]) == ["EN", "MI", "SE", "EX"]
    assert card["allowed"]["remote_ratio"] == [0, 50, 100]
    # Every code the page may offer has the vocabulary's name: app.js words none itself.
    labels = card["labels"]
    for field in ("experience_level", "company_size", "employment_type", "remote_ratio", "view"):
        assert [str(code) for code in card["allowed"][field]] == list(labels[field]), field
    assert labels["employment_type"]["FT"] == vocabulary_module.EMPLOYMENT_NAMES["FT"]
    assert labels["remote_ratio"]["0"] == vocabulary_module.REMOTE_NAMES[0]
    assert set(labels["period"]) == set(card["allowed"]["period"])
    assert card["limits"]["batch_jobs"] == 10_000
    assert card["defaults"]["country"] == "US"
    assert (card["defaults"]["currency"], card["defaults"]["period"]) == ("USD", "year")
    currencies = card["currencies"]
    assert card["allowed"]["currency"] == currencies["supported"] == model.currency.supported
    assert currencies["by_country"]["DE"] == "EUR" and currencies["by_country"]["GB"] == "GBP"
    assert currencies["by_country"]["ZA"] == "ZAR" and currencies["by_country"]["CN"] == "CNY"
    assert currencies["locales"]["IN"] == "hi-IN" and currencies["locales"]["CN"] == "zh-Hans-CN"
    assert currencies["names"]["CN"] == "China"  # not in the vocabulary (1 survey record)
    assert "CN" not in {c["code"] for c in vocabulary["countries"]}


def test_request_fields_accept_exactly_the_vocabulary_codes() -> None:
    from typing import get_args

    from salarymodel.serving.schemas import JobRequest

    fields = JobRequest.model_fields
    for name, codes in (
        ("experience_level", vocabulary_module.EXPERIENCE_LEVELS),
        ("company_size", vocabulary_module.COMPANY_SIZES),
        ("employment_type", vocabulary_module.EMPLOYMENT_TYPES),
        ("remote_ratio", vocabulary_module.REMOTE_RATIOS),
    ):
        assert get_args(fields[name].annotation) == codes, name
    assert "FT full-time" in (fields["employment_type"].description or "")


def test_health_readiness_and_openapi(client, champion) -> None:
    assert client.get("/readyz").status_code == 200
    assert client.get("/livez").status_code == 200
    spec = client.get("/docs.json").json()
    assert {"/predict", "/predict_batch", "/explain"} <= set(spec["paths"])
    # The served model's currencies, and one salary bound per currency, year span and period.
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    request = spec["components"]["schemas"][body["schema"]["$ref"].rsplit("/", 1)[1]]
    model, _ = champion
    assert request["properties"]["currency"]["enum"] == model.currency.supported
    cases = request["anyOf"]
    usd_year = next(c for c in cases if c["properties"]["currency"]["enum"] == ["USD"]
                    and c["properties"]["period"]["enum"] == ["year"])  # fmt: skip
    salary = usd_year["properties"]["current_salary"]["anyOf"][0]
    assert (salary["minimum"], salary["maximum"]) == (5000, 5_000_000)
    assert "required" not in usd_year  # the defaults: no field needs naming


def test_web_page_and_assets_are_served_locally(client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert client.get("/ui").text == page.text
    for asset, kind in (("app.js", "javascript"), ("style.css", "css")):
        answer = client.get(f"/ui/{asset}")
        assert answer.status_code == 200 and kind in answer.headers["content-type"]
        assert "http://" not in answer.text and "https://" not in answer.text
    assert "https://" not in page.text and "http://" not in page.text
    assert client.get("/ui/..%2Fservice.py").status_code == 404
    assert client.get("/ui/service.py").status_code == 404


# ----- speed path --------------------------------------------------------------------------------
def test_native_boosters_predict_as_lightgbm_does(champion, client, tmp_path: Path) -> None:
    from salarymodel.serving.booster import NativeBooster

    model, _ = champion
    jobs = _varied_jobs(40)
    rows = np.vstack([model.builder.encode({**j, "source": j["view"]})[0] for j in jobs])
    for name, booster in (("point", model.booster), ("low", model.ranges.low)):
        path = tmp_path / f"{name}.txt"
        booster.save_model(str(path))
        native = NativeBooster(path, split_contributions=name == "point")
        expected = booster.predict(rows)
        one_by_one = [native.predict(rows[i : i + 1], num_threads=1)[0] for i in range(len(rows))]
        np.testing.assert_allclose(one_by_one, expected, rtol=1e-12)
        np.testing.assert_allclose(native.predict(rows), expected, rtol=1e-12)
        contributions = booster.predict(rows, pred_contrib=True)
        np.testing.assert_allclose(native.predict(rows, pred_contrib=True), contributions)
        one = [native.predict(rows[i : i + 1], pred_contrib=True)[0] for i in range(len(rows))]
        np.testing.assert_allclose(one, contributions, atol=1e-12)
    with pytest.raises(ValueError, match="columns"):
        native.predict(rows[:, :-1])


def test_served_explanations_are_shap_treeexplainer_values(champion, service_env) -> None:
    """LightGBM's own TreeSHAP, as served (two halves of the trees on two threads for one
    row), equals shap's TreeExplainer to 1e-6 on real rows."""
    import shap

    from salarymodel.core.explanations import Explainer
    from salarymodel.serving.loading import read_serving_bundle

    model, version = champion
    cache = service_env / "models" / "registry-cache" / f"v{version.version}"
    served = read_serving_bundle(cache / "artifacts" / "bundle")
    tree = shap.TreeExplainer(model.booster)
    jobs = _varied_jobs(60)
    rows = np.vstack([model.builder.encode({**j, "source": j["view"]})[0] for j in jobs])
    expected = np.asarray(tree.shap_values(rows, check_additivity=False))
    base = float(np.ravel(tree.expected_value)[0])
    # The country levels the trees start from join the country and pay-view
    # columns and the base value (salarymodel.core.explanations).
    country, source, constant = model.levels.parts(model.builder, rows)
    expected[:, AT["country"]] += country
    expected[:, AT["source"]] += source
    base += constant
    for explainer in (Explainer.from_model(model), Explainer.from_model(served)):
        np.testing.assert_allclose(explainer.shap_values(rows), expected, atol=1e-6)
        assert explainer.base_log == pytest.approx(base, abs=1e-6)
    lean = Explainer.from_model(served)
    one_by_one = np.vstack([lean.shap_values(rows[i : i + 1]) for i in range(len(rows))])
    np.testing.assert_allclose(one_by_one, expected, atol=1e-6)


# ----- a served process, the model store, the bento ------------------------------------------
def test_served_process_answers_over_http(url: str) -> None:
    assert url.startswith("http://127.0.0.1:")
    answer = httpx.post(f"{url}/predict", json=JOB, timeout=30)
    assert answer.status_code == 200
    assert answer.json()["estimate_usd"] > 0
    bad = httpx.post(f"{url}/predict", json={**JOB, "experience_level": "XX"}, timeout=30)
    assert bad.status_code == 422 and "EN, MI, SE, EX" in bad.json()["error"]
    card = httpx.get(f"{url}/model", timeout=30).json()
    # `serve` exports the champion to the BentoML store; the workers load that copy.
    assert card["loaded_from"] == f"bentoml-store:salarymodel:v{card['model_version']}"
    batch = httpx.post(f"{url}/predict_batch", json={"jobs": [JOB] * 3}, timeout=30)
    assert [r["estimate_usd"] for r in batch.json()] == [answer.json()["estimate_usd"]] * 3


def test_exported_model_is_plain_files_and_loads_the_same(url: str, root: Path, champion) -> None:
    model, version = champion
    stored = root / "bentoml_home" / "models" / "salarymodel" / f"v{version.version}"
    files = {p.name for p in stored.rglob("*") if p.is_file()}
    assert {"booster.txt", "features.json", "metadata.json", "serving_info.json",
            "currency.json"} <= files  # fmt: skip
    assert not {f for f in files if f.endswith((".pkl", ".pickle", ".joblib"))}
    from salarymodel.core.model import SalaryModel

    copy = SalaryModel.load(stored / "bundle")
    rows = np.vstack([model.builder.encode(j)[0] for j in _varied_jobs(20)])
    np.testing.assert_allclose(copy.predict_log(rows), model.predict_log(rows))


def test_bentoml_build_packages_the_service_offline(url: str, root: Path) -> None:
    env = project_env(root)
    started = time.perf_counter()
    command = [sys.executable, "-m", "bentoml", "build", "-f", str(ROOT / "bentofile.yaml")]
    done = subprocess.run(
        [*command, str(ROOT), "--output", "tag"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-3000:]
    bentos = root / "bentoml_home" / "bentos" / "salarymodel"
    built = [p for p in bentos.iterdir() if p.is_dir()]
    bento = max(built, key=lambda p: p.stat().st_mtime)
    info = (bento / "bento.yaml").read_text()
    assert "salarymodel:v1" in info and "salarymodel.serving.service:SalaryService" in info
    assert (bento / "src" / "configs" / "salarymodel.yaml").exists()
    assert (bento / "src" / "src" / "salarymodel" / "serving" / "web" / "index.html").exists()
    assert (bento / "src" / "src" / "salarymodel" / "data" / "countries.json").exists()
    package = bento / "src" / "src" / "salarymodel"
    assert (package / "serving" / "booster.py").exists()  # every subpackage, not *.py only
    assert (package / "report" / "templates" / "drift.html").exists()
    # The bento's packages are the project's dependencies (pyproject.toml is the one list).
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    required = (bento / "env" / "python" / "requirements.txt").read_text().split("\n")
    assert set(project["dependencies"]) <= {line.strip() for line in required}
    assert not (bento / "src" / "data").exists()  # the training data stays out
    print(f"bentoml build took {seconds:.1f} s")

    # Served from the bento, the service answers with the model it carries.
    port = free_port()
    serve = [sys.executable, "-m", "bentoml", "serve", f"salarymodel:{bento.name}"]
    process = subprocess.Popen(
        [*serve, "--port", str(port)],
        env={**env, "SALARYMODEL_WORKERS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        card = wait_for_model(f"http://127.0.0.1:{port}", process)
        assert card["loaded_from"] == "bentoml-store:salarymodel:v1"
    finally:
        stop_process(process)
