"""Serving benchmark: the BentoML service against the same model behind bare FastAPI.

Both servers run on this machine in the same run, load the same champion and
call the same scoring functions, so the difference is the serving stack.
For each: sequential p50/p99 latency and throughput at 16 concurrent clients
for ``/predict`` and ``/explain``, and the latency of a 10,000-row batch.
Finally the resident memory (RSS) of each server's process tree.

    .venv/bin/python benchmarks/serving.py                # project root's champion
    SALARYMODEL_ROOT=/tmp/x .venv/bin/python benchmarks/serving.py --requests 1000

The load generator is a small asyncio HTTP/1.1 client with keep-alive
(cheaper per request than an HTTP library: it shares the 2 cores with the
servers). Requests go to 127.0.0.1 only, in bounded numbers.
"""

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from salarymodel.serving.readiness import stop_process as stop

HOST = "127.0.0.1"
TITLES = [
    "Data Scientist", "Senior Data Scientist", "Machine Learning Engineer", "Data Engineer",
    "Senior Data Engineer", "Data Analyst", "Business Intelligence Analyst", "ML Ops Engineer",
    "Research Scientist", "Applied Scientist", "Analytics Engineer", "Head of Data",
    "Director of Machine Learning", "AI Engineer", "Junior Data Analyst", "Data Architect",
    "Computer Vision Engineer", "NLP Engineer", "Staff Software Engineer, ML", "Quant Researcher",
]  # fmt: skip
COUNTRIES = ["US", "United States", "GB", "Germany", "CA", "India", "FR", "Spain", "NL", "Brazil"]
SKILLS = ["python", "sql", "aws", "spark", "pytorch", "tensorflow", "tableau", "excel", "r",
          "azure", "docker", "kubernetes", "airflow", "power bi", "scala", "java"]  # fmt: skip


# ----- the bare FastAPI comparison app ---------------------------------------------------
def make_bare_app():
    """The same model and scoring functions behind plain FastAPI (pydantic bodies, no BentoML).

    (No ``from __future__ import annotations`` in this file: FastAPI must see
    the request models themselves, not names local to this function.)
    """
    from fastapi import FastAPI

    from salarymodel.serving import loading, schemas
    from salarymodel.serving import scoring as svc
    from salarymodel.serving.pay_terms import request_terms

    serving = loading.load_serving_model()
    app = FastAPI()

    @app.post("/predict")
    async def predict(job: schemas.EstimateRequest) -> schemas.PredictResponse:
        terms = request_terms(serving, job)
        return svc.predict_one(serving, svc.canonical_job(job, serving.default_view), terms)

    @app.post("/explain")
    async def explain(job: schemas.EstimateRequest) -> schemas.ExplanationResponse:
        terms = request_terms(serving, job)
        return svc.explain_one(serving, svc.canonical_job(job, serving.default_view), terms)

    @app.post("/predict_batch")
    def predict_batch(batch: schemas.BatchRequest) -> list[schemas.EstimateResponse]:
        jobs = [svc.canonical_job(j, serving.default_view) for j in batch.jobs]
        return svc.estimate_many(serving, jobs)

    @app.get("/readyz")
    def ready() -> str:
        return "ok"

    return app


# ----- a minimal keep-alive HTTP client -------------------------------------------------------
class Connection:
    """One keep-alive HTTP/1.1 connection (Content-Length and chunked responses).

    Reconnects when the server says ``Connection: close`` (the service
    rotates keep-alive connections, as HTTP clients and browsers expect).
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.reconnects = 0

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(HOST, self.port, limit=2**26)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
            self.reconnects += 1
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        assert self.writer is not None and self.reader is not None
        self.writer.write(head.encode() + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        headers = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        answer = await self._body(headers)
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, answer

    async def _body(self, headers: dict[str, str]) -> bytes:
        assert self.reader is not None
        if "content-length" in headers:
            return await self.reader.readexactly(int(headers["content-length"]))
        chunks = []
        while True:
            size = int((await self.reader.readline()).strip(), 16)
            chunk = await self.reader.readexactly(size + 2)
            if size == 0:
                return b"".join(chunks)
            chunks.append(chunk[:-2])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def sequential(port: int, path: str, bodies: list[bytes], n: int) -> dict[str, float]:
    """p50/p99 latency (ms) of n requests one after another on one connection."""
    connection = Connection(port)
    await connection.open()
    for body in bodies[:20]:  # warm-up: first calls pay for lazy initialisation
        await connection.post(path, body)
    latencies = []
    for i in range(n):
        started = time.perf_counter()
        status, _ = await connection.post(path, bodies[i % len(bodies)])
        latencies.append((time.perf_counter() - started) * 1000)
        assert status == 200, f"{path} answered {status}"
    connection.close()
    return {"p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99)}


async def concurrent(
    port: int, path: str, bodies: list[bytes], n: int, clients: int
) -> dict[str, float]:
    """Throughput (requests/s) and latency with ``clients`` connections sending n in total."""
    connections = [Connection(port) for _ in range(clients)]
    await asyncio.gather(*(c.open() for c in connections))
    remaining = n
    latencies: list[float] = []
    errors = 0

    async def client(connection: Connection, offset: int) -> None:
        nonlocal remaining, errors
        i = offset
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            status, _ = await connection.post(path, bodies[i % len(bodies)])
            latencies.append((time.perf_counter() - started) * 1000)
            errors += status != 200
            i += clients

    remaining = clients * 10  # warm-up: every connection, and the batching dispatcher
    await asyncio.gather(*(client(c, k) for k, c in enumerate(connections)))
    remaining = n
    latencies.clear()
    started = time.perf_counter()
    await asyncio.gather(*(client(c, k) for k, c in enumerate(connections)))
    elapsed = time.perf_counter() - started
    for c in connections:
        c.close()
    return {
        "rps": n / elapsed,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "errors": errors,
    }


async def batch(port: int, body: bytes, repeats: int) -> dict[str, float]:
    """Latency (s) of one big batch request, repeated."""
    connection = Connection(port)
    await connection.open()
    await connection.post("/predict_batch", body)  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        status, answer = await connection.post("/predict_batch", body)
        times.append(time.perf_counter() - started)
        assert status == 200, answer[:300]
    connection.close()
    return {"median_s": statistics.median(times), "max_s": max(times)}


# ----- servers ----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_ready(port: int, process: subprocess.Popen, timeout: float = 180) -> None:
    from salarymodel.serving.readiness import wait_until_ready

    wait_until_ready(f"http://{HOST}:{port}", process, seconds=timeout)


def start_bentoml(port: int, workers: int, log: Path) -> subprocess.Popen:
    salarymodel = Path(sys.executable).with_name("salarymodel")
    command = [str(salarymodel), "serve", "--port", str(port), "--workers", str(workers)]
    return subprocess.Popen(
        command, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )


def run_bare_server(port: int, workers: int) -> None:
    """Run the bare FastAPI app under uvicorn with ``workers`` processes (blocks).

    Multi-worker uvicorn answers on sockets without TCP_NODELAY: its header
    and body writes then meet the client's delayed ACK and every request
    takes ~44 ms (measured). Set on the listening socket, the option is
    inherited by each accepted connection.
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        "serving:make_bare_app", factory=True, host=HOST,
        port=port, workers=workers, access_log=False, log_level="warning",
    )  # fmt: skip
    sys.path.insert(0, str(Path(__file__).parent))  # workers import this file as "serving"
    sock = config.bind_socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if workers == 1:
        uvicorn.Server(config).run(sockets=[sock])
    else:
        Multiprocess(config, sockets=[sock]).run()


def start_bare(port: int, workers: int, log: Path) -> subprocess.Popen:
    command = [sys.executable, __file__, "--bare-server", str(port), "--workers", str(workers)]
    return subprocess.Popen(
        command, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )


def tree_rss_mb(pid: int) -> tuple[float, list[float]]:
    """Total and per-process resident memory (MB) of a process and its descendants."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append(int(entry.name))
            except OSError:
                continue
    pending, sizes = [pid], []
    while pending:
        current = pending.pop()
        try:
            status = (Path("/proc") / str(current) / "status").read_text()
        except OSError:
            continue
        kb = next((int(x.split()[1]) for x in status.splitlines() if x.startswith("VmRSS")), 0)
        sizes.append(kb / 1024)
        pending += children.get(current, [])
    return sum(sizes), sorted(sizes, reverse=True)


# ----- the run -------------------------------------------------------------------------------
def request_bodies(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """Varied, realistic jobs (fixed seed)."""
    rng = random.Random(seed)
    return [
        {
            "job_title": rng.choice(TITLES),
            "experience_level": rng.choice(["EN", "MI", "SE", "EX"]),
            "company_size": rng.choice(["S", "M", "L"]),
            "country": rng.choice(COUNTRIES),
            "remote_ratio": rng.choice([0, 50, 100]),
            "employment_type": "FT",
            "skills": rng.sample(SKILLS, rng.randint(0, 5)),
            "view": rng.choice(["aijobs", "postings"]),
        }
        for _ in range(n)
    ]


async def measure(port: int, args: argparse.Namespace) -> dict[str, Any]:
    jobs = request_bodies(500)
    bodies = [json.dumps(j).encode() for j in jobs]
    batch_body = json.dumps({"jobs": request_bodies(args.batch_rows, seed=11)}).encode()
    result: dict[str, Any] = {}
    # /explain costs ~10x /predict: fewer requests keep the run short.
    counts = {
        "/predict": (args.requests, args.concurrent_requests),
        "/explain": (args.requests // 4, args.concurrent_requests // 4),
    }
    for path, (n_sequential, n_concurrent) in counts.items():
        result[path] = {
            "sequential": await sequential(port, path, bodies, n_sequential),
            "concurrent": await concurrent(port, path, bodies, n_concurrent, args.clients),
        }
    result["batch"] = await batch(port, batch_body, args.batch_repeats)
    return result


def run_one(name: str, starter, args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    port = free_port()
    process = starter(port, args.workers, logs / f"{name}.log")
    try:
        started = time.perf_counter()
        wait_ready(port, process)
        startup = time.perf_counter() - started
        result = asyncio.run(measure(port, args))
        total, parts = tree_rss_mb(process.pid)
        result["rss_mb"] = {"total": total, "processes": parts}
        result["startup_s"] = startup
        return result
    finally:
        stop(process)


def machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def table(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    """The results as a Markdown table."""
    rows = [
        f"| server | /predict p50 / p99 (ms) | /predict req/s @{args.clients} | "
        f"/explain p50 / p99 (ms) | /explain req/s @{args.clients} | "
        f"{args.batch_rows:,}-row batch (s) | RSS (MB) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in results.items():
        p, e = r["/predict"], r["/explain"]
        rows.append(
            f"| {name} | {p['sequential']['p50_ms']:.2f} / {p['sequential']['p99_ms']:.2f} "
            f"| {p['concurrent']['rps']:,.0f} "
            f"| {e['sequential']['p50_ms']:.2f} / {e['sequential']['p99_ms']:.2f} "
            f"| {e['concurrent']['rps']:,.0f} "
            f"| {r['batch']['median_s']:.3f} (max {r['batch']['max_s']:.3f}) "
            f"| {r['rss_mb']['total']:,.0f} |"
        )
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--requests", type=int, default=2000, help="sequential requests (/explain: a quarter)"
    )
    parser.add_argument(
        "--concurrent-requests", type=int, default=4000, help="concurrent (/explain: a quarter)"
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--batch-rows", type=int, default=10_000)
    parser.add_argument("--batch-repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (both)")
    parser.add_argument("--only", choices=["bentoml", "fastapi"], help="benchmark one server")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--bare-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare_server:
        run_bare_server(args.bare_server, args.workers)
        return 0
    logs = Path(os.environ.get("TMPDIR", "/tmp")) / "salarymodel-bench"
    logs.mkdir(parents=True, exist_ok=True)
    servers = {"salarymodel (BentoML)": start_bentoml, "bare FastAPI (uvicorn)": start_bare}
    if args.only:
        servers = {k: v for k, v in servers.items() if args.only.lower() in k.lower()}
    results = {name: run_one(name, starter, args, logs) for name, starter in servers.items()}
    print(f"machine: {machine()}; {args.workers} workers per server; logs in {logs}")
    print(table(results, args))
    for name, r in results.items():
        parts = ", ".join(f"{mb:.0f}" for mb in r["rss_mb"]["processes"])
        print(f"{name}: startup {r['startup_s']:.1f} s; RSS per process (MB): {parts}; "
              f"errors under load: {r['/predict']['concurrent']['errors']}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
