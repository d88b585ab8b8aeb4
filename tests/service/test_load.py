"""A bounded load test: Locust users (benchmarks/locustfile.py) against the served process.

The 60-second run is ``benchmarks/load.py``; here 16 clients for a few
seconds must get every request answered with 200.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.served import champion_root, served_url

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


def test_sixteen_clients_get_every_request_answered(tmp_path_factory, request) -> None:
    url = served_url(champion_root(tmp_path_factory), request)
    prefix = tmp_path_factory.mktemp("locust") / "load"
    command = [
        str(BIN / "locust"), "-f", str(ROOT / "benchmarks" / "locustfile.py"), "--headless",
        "-u", "16", "-r", "16", "-t", "8s", "-H", url, "--csv", str(prefix), "--only-summary",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    with Path(f"{prefix}_stats.csv").open() as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    total = rows["Aggregated"]
    assert int(total["Failure Count"]) == 0, done.stderr[-2000:]
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(total["Request Count"]) > 200  # a few hundred at least, even on a busy machine
    for endpoint in ("/predict", "/explain", "/predict_batch", "/model"):
        assert int(rows[endpoint]["Request Count"]) > 0, endpoint
