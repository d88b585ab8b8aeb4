"""Fuzzing, the longer run: Schemathesis against the served champion's OpenAPI schema.

Starts ``salarymodel serve`` (2 workers, as served to people) for the project
at ``SALARYMODEL_ROOT`` (default: this checkout; it needs a champion, e.g.
from ``make run``), then runs Schemathesis' CLI over every documented
operation with all of its checks and phases (coverage: boundary values,
wrong types, undocumented methods and content types; fuzzing: valid and
invalid data). Prints the machine, the requests sent per operation and
status, the time taken and the failures; exits with Schemathesis' status.

    .venv/bin/python benchmarks/fuzz.py                      # 500 examples per operation
    .venv/bin/python benchmarks/fuzz.py --examples 2000 --seed 7

tests/service/test_fuzz.py runs the same command, bounded (25 examples, one worker).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def schemathesis_command(url: str, examples: int, har: Path, seed: int | None = None) -> list[str]:
    """Schemathesis' CLI over every operation of ``url``'s schema, every check and phase.

    Deterministic unless a ``seed`` is given; every request is written to ``har``.
    """
    command = [
        str(BIN / "schemathesis"), "--config-file", str(HERE / "schemathesis.toml"),
        "run", f"{url}/docs.json", "--url", url,
        # Both generation modes: valid data must be accepted, invalid data refused.
        "--checks", "all", "--mode", "all", "--max-examples", str(examples),
        "--workers", "1", "--request-timeout", "60", "--suppress-health-check", "all",
        "--report", "har", "--report-har-path", str(har), "--no-color",
    ]  # fmt: skip
    return [
        *command,
        *(["--seed", str(seed)] if seed is not None else ["--generation-deterministic"]),
    ]


def requests_sent(har: Path, url: str) -> Counter:
    """Requests in a HAR file, counted by (method, path, answer status)."""
    entries = json.loads(har.read_text())["log"]["entries"]
    return Counter(
        (e["request"]["method"], e["request"]["url"].removeprefix(url).split("?")[0],
         e["response"]["status"])
        for e in entries
    )  # fmt: skip


def main() -> int:
    from explain import machine
    from load import project_env, start_service
    from serving import free_port, stop, wait_ready

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=500, help="examples per operation")
    parser.add_argument("--seed", type=int, default=None, help="random instead of deterministic")
    parser.add_argument("--workers", type=int, default=2, help="service workers")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="salarymodel-fuzz-"))
    root = Path(os.environ.get("SALARYMODEL_ROOT", HERE.parent))
    print(f"machine: {machine()}")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    service = start_service(root, port, args.workers, work / "serve.log")
    try:
        wait_ready(port, service)
        har = work / "requests.har"
        started = time.perf_counter()
        done = subprocess.run(
            schemathesis_command(url, args.examples, har, args.seed),
            cwd=work, env=project_env(root), capture_output=True, text=True,
        )  # fmt: skip
        seconds = time.perf_counter() - started
    finally:
        stop(service)
    sent = requests_sent(har, url) if har.exists() else Counter()
    summary = [line.strip() for line in done.stdout.splitlines() if " generated" in line]
    print(f"Schemathesis: {summary[0] if summary else done.stdout[-3000:]}")
    print(f"{sum(sent.values()):,} requests in {seconds:.0f} s; logs in {work}")
    by_path: dict[str, Counter] = {}
    for (_, path, status), count in sent.items():
        by_path.setdefault(path, Counter())[status] += count
    print("| path | requests | answers by status |\n| --- | --- | --- |")
    for path, statuses in sorted(by_path.items()):
        answers = ", ".join(f"{status}: {n:,}" for status, n in sorted(statuses.items()))
        print(f"| {path} | {statuses.total():,} | {answers} |")
    server_errors = sum(n for (_, _, status), n in sent.items() if status >= 500)
    print(f"5xx answers: {server_errors}; Schemathesis exit status {done.returncode}")
    if done.returncode:
        print(done.stdout[-20_000:])
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
