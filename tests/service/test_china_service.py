"""China over HTTP: the Maimai 2023 figure beside a Chinese estimate (the champion test_service.py
trains, in-process)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from helpers.served import champion_root, service_client

pytestmark = pytest.mark.slow

CV_JOB = {"job_title": "Senior Computer Vision Engineer", "country": "CN",
          "experience_level": "SE"}  # fmt: skip


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    with service_client(champion_root(tmp_path_factory)) as test_client:
        yield test_client


def test_a_chinese_cv_job_shows_the_reports_figure_beside_ours(client) -> None:
    answer = client.post("/predict", json=CV_JOB)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    market = body["market_reference"]
    assert market["source"] == "Maimai 2023 AIGC talent report"
    assert market["period"] == "Feb 2022 - Feb 2023" and market["area"] == "China"
    assert market["pay_cny"] == 1_106_000 and market["role_zh"] == "图像识别"
    assert market["pay_usd"] == round(1_106_000 / market["cny_per_usd"])
    assert "no Chinese records of its own" in market["text"]
    assert body["reference"] is None and body["estimate_usd"] > 0  # ours stays beside it


def test_explain_and_batch_carry_it_and_others_do_not(client) -> None:
    explained = client.post("/explain", json=CV_JOB)
    assert explained.status_code == 200
    assert explained.json()["market_reference"]["role"].startswith("computer vision")
    jobs = [CV_JOB, {**CV_JOB, "country": "US"}, {**CV_JOB, "job_title": "Data Analyst"},
            {**CV_JOB, "job_title": "NLP Engineer", "country": "China"}]  # fmt: skip
    batch = client.post("/predict_batch", json={"jobs": jobs})
    assert batch.status_code == 200, batch.text
    answers = batch.json()
    assert (
        answers[0]["market_reference"]
        == client.post("/predict", json=CV_JOB).json()["market_reference"]
    )
    assert answers[1]["market_reference"] is None and answers[2]["market_reference"] is None
    assert answers[3]["market_reference"]["role_zh"] == "自然语言处理"
