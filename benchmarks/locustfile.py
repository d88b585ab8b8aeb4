"""Locust users for the load test (``benchmarks/load.py`` runs them headless).

Each simulated client sends varied, realistic jobs back to back: mostly
``/predict``, some ``/explain``, now and then ``GET /model`` and a 100-job
batch, the mix a web page and a few scripts would make. Any status but 200
counts as a failure.
"""

from __future__ import annotations

import json
import random

from locust import FastHttpUser, constant, task

TITLES = ["Data Scientist", "Senior Data Engineer", "Machine Learning Engineer", "Data Analyst",
          "Head of Data", "Research Scientist", "AI Engineer", "Analytics Engineer",
          "Junior Data Analyst", "Staff Software Engineer, ML", "Zookeeper"]  # fmt: skip
COUNTRIES = ["US", "United States", "GB", "Germany", "CA", "India", "FR", "Spain", "Atlantis"]
SKILLS = ["python", "sql", "aws", "spark", "pytorch", "tableau", "excel", "airflow", "kafka"]


def random_job(rng: random.Random) -> dict:
    """One plausible request body (unknown titles and countries included)."""
    return {
        "job_title": rng.choice(TITLES),
        "experience_level": rng.choice(["EN", "MI", "SE", "EX"]),
        "company_size": rng.choice(["S", "M", "L"]),
        "country": rng.choice(COUNTRIES),
        "remote_ratio": rng.choice([0, 50, 100]),
        "employment_type": rng.choice(["FT", "FT", "FT", "CT"]),
        "skills": rng.sample(SKILLS, rng.randint(0, 4)),
    }


class SalaryClient(FastHttpUser):
    """A client that asks as fast as answers come (no think time): the worst case."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.rng = random.Random(id(self))
        self.headers = {"content-type": "application/json"}

    def _post(self, path: str, body: object) -> None:
        self.client.post(path, data=json.dumps(body), headers=self.headers)

    @task(16)
    def predict(self) -> None:
        self._post("/predict", random_job(self.rng))

    @task(4)
    def explain(self) -> None:
        self._post("/explain", random_job(self.rng))

    @task(1)
    def model(self) -> None:
        self.client.get("/model")

    @task(1)
    def batch(self) -> None:
        self._post("/predict_batch", {"jobs": [random_job(self.rng) for _ in range(100)]})
