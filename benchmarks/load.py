"""Load test: Locust, headless, against the served champion on 127.0.0.1.

Starts ``salarymodel serve`` (2 workers) on a free port, runs the users of
``benchmarks/locustfile.py`` (16 clients, no think time: mostly /predict,
some /explain, /model and 100-job batches) for ``--duration`` seconds, and
prints the machine, requests served, failures, throughput and latency
percentiles per endpoint. Exits 1 when any request failed.

    .venv/bin/python benchmarks/load.py                       # 60 s, 16 clients
    .venv/bin/python benchmarks/load.py --retrain             # ... while a retrain promotes

With ``--retrain`` the run happens in a throw-away project (as in
``benchmarks/retrain.py``: the base champion trained without the latest
survey year); while the users run, ``salarymodel retrain --data
<latest year> --reload`` trains a challenger, promotes it and makes the
service swap it in. The load runs until ``--duration`` seconds have passed
and the retrain has finished.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from explain import machine
from serving import free_port, stop, tree_rss_mb, wait_ready

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def project_env(root: Path) -> dict[str, str]:
    """The CLI and BentoML pointed at the project at ``root``."""
    return {**os.environ, "SALARYMODEL_ROOT": str(root), "BENTOML_HOME": str(root / "bentoml_home")}


def start_service(root: Path, port: int, workers: int, log: Path) -> subprocess.Popen:
    """`salarymodel serve` for the project at ``root``."""
    env = project_env(root)
    command = [str(BIN / "salarymodel"), "serve", "--port", str(port), "--workers", str(workers)]
    return subprocess.Popen(
        command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )


def start_locust(url: str, clients: int, seconds: int, prefix: Path, log: Path) -> subprocess.Popen:
    """Locust headless with the project's users, CSV statistics under ``prefix``."""
    command = [
        str(BIN / "locust"), "-f", str(HERE / "locustfile.py"), "--headless",
        "-u", str(clients), "-r", str(clients), "-t", f"{seconds}s", "-H", url,
        "--csv", str(prefix), "--only-summary", "--stop-timeout", "10",
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT)


def read_stats(prefix: Path) -> list[dict[str, str]]:
    """Locust's per-endpoint statistics (the last row is the aggregate)."""
    with Path(f"{prefix}_stats.csv").open() as handle:
        return list(csv.DictReader(handle))


def served_version(url: str) -> str:
    with urllib.request.urlopen(f"{url}/model", timeout=30) as answer:
        return str(json.load(answer)["model_version"])


def retrain_project(workdir: Path) -> tuple[Path, Path]:
    """A throw-away project with a base champion; the project root and the new file."""
    from retrain import make_project

    new, _ = make_project(workdir)
    env = project_env(workdir)
    subprocess.run(
        [str(BIN / "salarymodel"), "train", "--no-baselines"], cwd=workdir, env=env, check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return workdir, new


def run_retrain(root: Path, new: Path, log: Path) -> subprocess.Popen:
    command = [str(BIN / "salarymodel"), "retrain", "--data", str(new), "--reload"]
    return subprocess.Popen(
        command, cwd=root, env=project_env(root), stdout=log.open("w"), stderr=subprocess.STDOUT
    )


def report(rows: list[dict[str, str]], seconds: float) -> str:
    lines = ["| endpoint | requests | failures | req/s | p50 (ms) | p99 (ms) | max (ms) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for row in rows:
        name = f"{row['Type']} {row['Name']}".strip()
        count = int(row["Request Count"])
        lines.append(
            f"| {name} | {count:,} | {int(row['Failure Count']):,} | {count / seconds:,.0f} "
            f"| {row['50%']} | {row['99%']} | {float(row['Max Response Time']):,.0f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=60, help="seconds of load (at least)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--retrain", action="store_true", help="retrain and promote under load")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="salarymodel-load-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}")
    root = Path(os.environ.get("SALARYMODEL_ROOT", HERE.parent))
    new = None
    if args.retrain:
        root, new = retrain_project(work / "project")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    if new is not None:  # `retrain --reload` calls the configured port
        config = root / "configs" / "salarymodel.yaml"
        config.write_text(config.read_text().replace("port: 3000", f"port: {port}"))
    service = start_service(root, port, args.workers, work / "serve.log")
    try:
        wait_ready(port, service)
        before = served_version(url)
        limit = args.duration if new is None else 3600
        locust = start_locust(url, args.clients, limit, work / "locust", work / "locust.log")
        started = time.perf_counter()
        retrain_code = None
        if new is not None:
            time.sleep(5)
            retrain = run_retrain(root, new, work / "retrain.log")
            retrain_code = retrain.wait()
            took = time.perf_counter() - started - 5
            print(f"retrain + promotion + reload: exit {retrain_code} after {took:.0f} s")
            time.sleep(max(10, args.duration - (time.perf_counter() - started)))
            locust.send_signal(signal.SIGTERM)
        locust.wait(timeout=args.duration + 120 if new is None else 600)
        seconds = time.perf_counter() - started
        after = served_version(url)
        rss, _ = tree_rss_mb(service.pid)
    finally:
        stop(service)
    rows = read_stats(work / "locust")
    total = rows[-1]
    print(f"{args.clients} clients for {seconds:.0f} s; model v{before} -> v{after}; "
          f"service RSS {rss:,.0f} MB; logs in {work}")  # fmt: skip
    print(report(rows, seconds))
    failures = int(total["Failure Count"])
    print(f"requests {int(total['Request Count']):,}, failures {failures}, "
          f"p99 {total['99%']} ms")  # fmt: skip
    return 1 if failures or (retrain_code not in (None, 0)) else 0


if __name__ == "__main__":
    sys.exit(main())
