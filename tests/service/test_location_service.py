"""Location and the BLS reference over HTTP: the champion test_service.py trains, in-process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from helpers.served import champion_root, service_client

pytestmark = pytest.mark.slow

US_JOB = {"job_title": "Senior Data Scientist", "country": "US", "location": "Austin, TX",
          "skills": ["python", "sql"]}  # fmt: skip


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    with service_client(champion_root(tmp_path_factory)) as test_client:
        yield test_client


def test_a_us_job_carries_the_bls_reference_and_a_german_one_does_not(client) -> None:
    us = client.post("/predict", json=US_JOB)
    assert us.status_code == 200, us.text
    reference = us.json()["reference"]
    assert reference["source"] == "BLS OEWS May 2025"
    assert reference["occupation"] == "Data Scientists" and reference["soc"] == "15-2051"
    assert reference["area"].startswith("Austin-Round Rock-San Marcos, TX")
    assert reference["p10_usd"] < reference["median_usd"] < reference["p90_usd"]
    german = client.post("/predict", json={**US_JOB, "country": "DE", "location": "Berlin"})
    assert german.status_code == 200 and german.json()["reference"] is None


def test_explain_and_batch_read_the_location_too(client) -> None:
    explained = client.post("/explain", json=US_JOB)
    assert explained.status_code == 200 and explained.json()["reference"] is not None
    jobs = [US_JOB, {**US_JOB, "location": "San Francisco Bay Area"}, {**US_JOB, "country": "IN",
            "location": "Bengaluru"}]  # fmt: skip
    batch = client.post("/predict_batch", json={"jobs": jobs})
    assert batch.status_code == 200, batch.text
    answers = batch.json()
    assert "San Francisco" in answers[1]["reference"]["area"] and answers[2]["reference"] is None
    one = client.post("/predict", json=jobs[1]).json()
    assert answers[1]["estimate_usd"] == one["estimate_usd"]
    assert answers[1]["reference"] == one["reference"]


def test_an_unknown_location_warns_naming_it(client) -> None:
    answer = client.post("/predict", json={**US_JOB, "location": "Qwxz Flumpton"})
    assert answer.status_code == 200
    assert any("Qwxz Flumpton" in w for w in answer.json()["warnings"])
    assert answer.json()["reference"]["area"] == "National"  # the country level


def test_an_over_long_location_gets_422_naming_the_field(client) -> None:
    answer = client.post("/predict", json={**US_JOB, "location": "x" * 121})
    assert answer.status_code == 422, answer.text
    assert "location" in answer.text
