"""Batch memory benchmark: the real service under 16 concurrent maximum batches.

Starts ``salarymodel serve`` (the arbiter and its workers, as a pod runs
them), then sends ``--clients`` concurrent ``POST /predict_batch`` requests
of the largest batch the service accepts, in two shapes:

- **widest jobs**: every field at its longest (a 200-character title, 100
  skills of 60 characters) and as many such jobs as fit the byte cap;
- **most jobs**: the row cap's number of jobs, each as wide as the byte cap
  then allows.

A sampler reads the resident memory (RSS) of the whole process tree
(psutil) every 10 ms; the peak is the largest simultaneous sum. Figures
are MiB (bytes / 2**20); ``*_mb`` keys in the JSON are MiB too. "After" is
the tree's RSS once every answer is in and the service has been idle for
``--settle`` seconds. Every batch must be answered 200 (they are valid).

    SALARYMODEL_ROOT=/tmp/x .venv/bin/python benchmarks/batch_memory.py
    .venv/bin/python benchmarks/batch_memory.py --write benchmarks/batch_memory.json

``--write`` stores the figures with the limits they were measured under;
``tests/service/test_deploy.py`` checks the deployment's memory limit
against that file. Requests go to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from serving import free_port, stop  # benchmarks/serving.py, as startup.py uses them

HOST = "127.0.0.1"
MB = 1024**2


def batch_limits() -> tuple[int, int]:
    """The service's caps on one batch: jobs and body bytes (what the service reads)."""
    from salarymodel.serving.schemas import MAX_BATCH, MAX_BODY_BYTES

    return MAX_BATCH, MAX_BODY_BYTES["/predict_batch"]


def _job(skills: int, skill_length: int, title_length: int) -> dict[str, Any]:
    title = ("Senior Machine Learning Engineer " * 10)[:title_length].strip()
    return {
        "job_title": title,
        "experience_level": "SE",
        "company_size": "L",
        "country": "Germany",
        "company_country": "United States",
        "remote_ratio": 50,
        "employment_type": "FT",
        "skills": [f"skill {i:03d} " + "x" * (skill_length - 10) for i in range(skills)],
        "year": 2024,
        "view": "postings",
    }


def _body(job: dict[str, Any], n: int) -> bytes:
    one = json.dumps(job, separators=(",", ":"))
    return ('{"jobs":[' + ",".join([one] * n) + "]}").encode()


def max_batches(max_jobs: int, max_bytes: int) -> dict[str, tuple[int, bytes]]:
    """The two largest valid batches: widest jobs, and most jobs (name -> (jobs, body))."""
    from salarymodel.serving.schemas import MAX_SKILL_LENGTH
    from salarymodel.vocabulary import MAX_SKILLS, MAX_TITLE_LENGTH

    widest = _job(MAX_SKILLS, MAX_SKILL_LENGTH, MAX_TITLE_LENGTH)
    per_job = len(json.dumps(widest, separators=(",", ":"))) + 1
    n_wide = min(max_jobs, (max_bytes - 12) // per_job)
    shapes = {"widest jobs": (n_wide, _body(widest, n_wide))}
    skills = MAX_SKILLS
    while skills > 0:  # the most jobs, each as wide as still fits
        job = _job(skills, MAX_SKILL_LENGTH, MAX_TITLE_LENGTH)
        if 12 + max_jobs * (len(json.dumps(job, separators=(",", ":"))) + 1) <= max_bytes:
            break
        skills -= 1
    shapes["most jobs"] = (max_jobs, _body(_job(skills, MAX_SKILL_LENGTH, MAX_TITLE_LENGTH),
                                           max_jobs))  # fmt: skip
    for name, (_, body) in shapes.items():
        assert len(body) <= max_bytes, (name, len(body), max_bytes)
    return shapes


# ----- the service ---------------------------------------------------------------------------
def start_service(port: int, workers: int, log: Path) -> subprocess.Popen:
    salarymodel = Path(sys.executable).with_name("salarymodel")
    command = [str(salarymodel), "serve", "--port", str(port), "--workers", str(workers)]
    env = {**os.environ, "BENTOML_DO_NOT_TRACK": "True", "GIT_PYTHON_REFRESH": "quiet"}
    return subprocess.Popen(
        command, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True, env=env
    )


def tree_rss(pid: int) -> dict[int, int]:
    """Resident bytes of a process and each of its descendants (pid -> bytes)."""
    import psutil

    root = psutil.Process(pid)
    sizes = {}
    for process in [root, *root.children(recursive=True)]:
        try:
            sizes[process.pid] = process.memory_info().rss
        except psutil.Error:
            continue
    return sizes


class Sampler(threading.Thread):
    """Polls a process tree's RSS and keeps the largest simultaneous total."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak, self.peak_parts = 0, {}
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            sizes = tree_rss(self.pid)
            if sum(sizes.values()) > self.peak:
                self.peak, self.peak_parts = sum(sizes.values()), sizes
            time.sleep(self.interval)

    def stop(self) -> None:
        self._done.set()
        self.join()


def fire(url: str, body: bytes, clients: int) -> tuple[list[int], float]:
    """``clients`` concurrent POSTs of ``body``; their status codes and the wall time."""
    import httpx

    def one(_: int) -> int:
        with httpx.Client(timeout=600) as client:
            answer = client.post(
                f"{url}/predict_batch", content=body,
                headers={"content-type": "application/json"},
            )  # fmt: skip
            return answer.status_code

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        statuses = list(pool.map(one, range(clients)))
    return statuses, time.perf_counter() - started


def _mb(sizes: dict[int, int], order: Sequence[int]) -> list[float]:
    return [round(sizes.get(pid, 0) / MB, 1) for pid in order]


def measure(args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    """Start the service, fire each shape's batches, and return the figures."""
    from salarymodel.serving.readiness import wait_until_ready

    max_jobs, max_bytes = batch_limits()
    port = free_port()
    url = f"http://{HOST}:{port}"
    process = start_service(port, args.workers, logs / "serve.log")
    try:
        wait_until_ready(url, process, seconds=240)
        time.sleep(1.0)
        order = sorted(tree_rss(process.pid), key=lambda p: p != process.pid)  # arbiter first
        ready = tree_rss(process.pid)
        results: dict[str, Any] = {"ready_mb": round(sum(ready.values()) / MB, 1),
                                   "ready_parts_mb": _mb(ready, order), "shapes": {}}  # fmt: skip
        for name, (jobs, body) in max_batches(max_jobs, max_bytes).items():
            sampler = Sampler(process.pid)
            sampler.start()
            statuses, seconds = fire(url, body, args.clients)
            sampler.stop()
            time.sleep(args.settle)
            after = tree_rss(process.pid)
            results["shapes"][name] = {
                "jobs": jobs,
                "body_bytes": len(body),
                "clients": args.clients,
                "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
                "seconds": round(seconds, 2),
                "peak_mb": round(sampler.peak / MB, 1),
                "peak_parts_mb": _mb(sampler.peak_parts, order),
                "after_mb": round(sum(after.values()) / MB, 1),
                "after_parts_mb": _mb(after, order),
            }
        return results
    finally:
        stop(process)


def machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return f"{os.cpu_count()} cores, {cpu}, {memory:.0f} GB, Python {platform.python_version()}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=16, help="concurrent batches")
    parser.add_argument("--workers", type=int, default=2, help="service worker processes")
    parser.add_argument("--settle", type=float, default=3.0, help="idle seconds before 'after'")
    parser.add_argument("--write", type=Path, help="store the figures as JSON here")
    args = parser.parse_args(argv)
    logs = Path(os.environ.get("TMPDIR", "/tmp")) / f"batch-memory-{os.getpid()}"
    logs.mkdir(parents=True, exist_ok=True)
    max_jobs, max_bytes = batch_limits()
    load = os.getloadavg()[0]
    results = measure(args, logs)
    print(f"machine: {machine()}; load average {load:.2f} before; {args.workers} workers")
    print(f"limits: {max_jobs:,} jobs, {max_bytes:,} bytes per batch; logs in {logs}")
    print(f"ready: {results['ready_mb']} MiB (arbiter + workers: {results['ready_parts_mb']})")
    print("| batch | jobs | body | answers | wall | peak RSS (arbiter + workers) | after |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, r in results["shapes"].items():
        print(
            f"| {name} | {r['jobs']:,} | {r['body_bytes'] / MB:.1f} MiB x {r['clients']} "
            f"| {r['statuses']} | {r['seconds']} s | {r['peak_mb']:,} MiB {r['peak_parts_mb']} "
            f"| {r['after_mb']:,} MiB {r['after_parts_mb']} |"
        )
    if args.write:
        record = {
            "measured": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(),
            "load_average_before": round(load, 2),
            "workers": args.workers,
            "limits": {"batch_jobs": max_jobs, "batch_bytes": max_bytes},
            **results,
            "peak_mb": max(r["peak_mb"] for r in results["shapes"].values()),
        }
        args.write.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
