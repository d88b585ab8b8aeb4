"""Training past the shipped data: ~2.7 million records, on one process and on Dask.

The enlarged set is made on the fly, never written: the shipped records
(54,591 after validation and repeats) repeated ``--copies`` times (50: about
2.73 million), each copy with its own jitter:

- salary x lognormal noise (sigma 0.1), held within the validation bounds;
- year moved by -1, 0 or +1 and month (where known) by -1, 0 or +1, held
  within the years and months that source has;
- every copy's group ids (and repeat ids) distinct, so grouped folds and
  calibration groups see them as different jobs.

What is trained is the served model: the point booster and its calibrated
ranges (two quantile boosters, a proper-set point booster, the conformal
calibration), as ``training.fit_final_model`` fits it on one process and
``distributed.fit_on_cluster`` on a ``LocalCluster`` (2 worker processes x 1
thread, 127.0.0.1). Each measurement runs in a fresh process; the report
gives wall and CPU seconds (user + sys, all processes of the run) and peak
resident memory (``ru_maxrss``) per process, with the load average before
and after (other work on the machine slows the figures).

    .venv/bin/python benchmarks/volume.py                      # the curve + 2.7M on both
    .venv/bin/python benchmarks/volume.py --sizes 2 6 --dask-copies 6   # a quick look
    .venv/bin/python benchmarks/volume.py --one single --copies 18       # one measurement

``--json FILE`` keeps the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def enlarged_records(copies: int, seed: int = 17):
    """The shipped records repeated ``copies`` times with jitter (a pandas frame)."""
    import pandas as pd

    from salarymodel.config.settings import load_settings, load_sources
    from salarymodel.data.dataset import load_training_data

    settings = load_settings()
    base = load_training_data(settings, load_sources(), accepted=False).records
    base = base[[c for c in base.columns if not c.startswith("raw.")]].reset_index(drop=True)
    rng = np.random.default_rng(seed)
    low, high = settings.validation.salary_usd_min, settings.validation.salary_usd_max
    years = base.groupby("source")["year"].agg(["min", "max"])
    year_min = base["source"].map(years["min"]).to_numpy(float)
    year_max = base["source"].map(years["max"]).to_numpy(float)
    frames = []
    for copy in range(copies):
        frame = base.copy()
        n = len(frame)
        salary = frame["salary_usd"].to_numpy(float) * rng.lognormal(0.0, 0.1, n)
        frame["salary_usd"] = np.clip(salary, low, high)
        year = frame["year"].to_numpy(float) + rng.integers(-1, 2, n)
        frame["year"] = np.clip(year, year_min, year_max)
        month = frame["month"].to_numpy(float) + rng.integers(-1, 2, n)
        frame["month"] = np.where(np.isnan(month), np.nan, np.clip(month, 1, 12))
        frame["group_id"] = frame["group_id"].astype(str) + f"~{copy}"
        frame["repeat_id"] = frame["repeat_id"].astype(str) + f"~{copy}"
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def rss_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def current_rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def measure_single(copies: int) -> dict[str, object]:
    """Fit the served model in this process (LightGBM on model.params.num_threads)."""
    from salarymodel.config.settings import load_settings
    from salarymodel.core.features import FeatureBuilder
    from salarymodel.core.model import SalaryModel

    settings = load_settings()
    start = time.perf_counter()
    records = enlarged_records(copies)
    built = time.perf_counter()
    rss_records = current_rss_mb()
    cpu_start = cpu_seconds()
    builder = FeatureBuilder.fit(records, settings.features)
    matrix = builder.transform(records)
    featured = time.perf_counter()
    model = SalaryModel.fit(
        records, builder, settings.model, matrix, country_levels=settings.country_levels
    )
    model.fit_ranges(records, matrix, settings)
    done = time.perf_counter()
    return {
        "mode": "single process",
        "copies": copies,
        "rows": len(records),
        "columns": len(builder.columns),
        "build_seconds": built - start,
        "features_seconds": featured - built,
        "fit_seconds": done - featured,
        "train_wall_seconds": done - built,
        "train_cpu_seconds": cpu_seconds() - cpu_start,
        "rss_after_records_mb": rss_records,
        "peak_rss_mb": {"process": rss_peak_mb()},
        "threads": settings.model.params.get("num_threads"),
    }


def _worker_usage() -> dict[str, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"peak_rss_mb": usage.ru_maxrss / 1024, "cpu": usage.ru_utime + usage.ru_stime}


def measure_dask(copies: int, workers: int) -> dict[str, object]:
    """Fit the served model on a LocalCluster of ``workers`` processes x 1 thread."""
    from distributed import Client, LocalCluster

    from salarymodel.config.settings import load_settings
    from salarymodel.training.dask_cluster import scatter_records
    from salarymodel.training.dask_fits import fit_on_cluster

    settings = load_settings()
    start = time.perf_counter()
    records = enlarged_records(copies)
    built = time.perf_counter()
    rss_records = current_rss_mb()
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        before = client.run(_worker_usage)
        cpu_start = cpu_seconds()
        begin = time.perf_counter()
        on_cluster = scatter_records(client, records, settings)
        scattered = time.perf_counter()
        fit_on_cluster(on_cluster, np.ones(len(records), bool), settings, ranges=True)
        done = time.perf_counter()
        after = client.run(_worker_usage)
        limit = cluster.workers[next(iter(cluster.workers))].memory_manager.memory_limit
    peaks = {"client": rss_peak_mb()}
    peaks |= {f"worker {i + 1}": after[w]["peak_rss_mb"] for i, w in enumerate(sorted(after))}
    worker_cpu = sum(after[w]["cpu"] - before[w]["cpu"] for w in after)
    return {
        "mode": f"LocalCluster {workers} x 1 thread",
        "copies": copies,
        "rows": len(records),
        "build_seconds": built - start,
        "scatter_seconds": scattered - begin,
        "fit_seconds": done - scattered,
        "train_wall_seconds": done - begin,
        "train_cpu_seconds": cpu_seconds() - cpu_start + worker_cpu,
        "rss_after_records_mb": rss_records,
        "peak_rss_mb": peaks,
        "worker_memory_limit_mb": (limit or 0) / 2**20,
    }


def run_one(mode: str, copies: int, workers: int) -> dict[str, object]:
    """One measurement in a fresh process (peak memory is per process)."""
    load_before = os.getloadavg()
    command = [sys.executable, __file__, "--one", mode, "--copies", str(copies)]
    command += ["--workers", str(workers)]
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{mode} x{copies} failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["load_before"], result["load_after"] = load_before, os.getloadavg()
    return result


def machine() -> dict[str, object]:
    import psutil

    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
    }


def table(results: list[dict[str, object]]) -> str:
    lines = [
        "| run | rows | train wall s | train CPU s | peak RSS MB per process "
        "| load avg before / after |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        peaks = ", ".join(f"{k} {v:,.0f}" for k, v in r["peak_rss_mb"].items())
        load = f"{r['load_before'][0]:.2f} / {r['load_after'][0]:.2f}"
        lines.append(
            f"| {r['mode']} | {r['rows']:,} | {r['train_wall_seconds']:.0f} | "
            f"{r['train_cpu_seconds']:.0f} | {peaks} | {load} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="*",
        default=[2, 6, 18, 50],
        help="copies for the single-process curve (2: ~0.11M rows)",
    )
    parser.add_argument("--dask-copies", type=int, nargs="*", default=[50])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--one", choices=["single", "dask"], help="one measurement, JSON out")
    parser.add_argument("--copies", type=int, default=50)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.one:
        if args.one == "single":
            result = measure_single(args.copies)
        else:
            result = measure_dask(args.copies, args.workers)
        print(json.dumps(result))
        return
    results = []
    for copies in args.sizes:
        results.append(run_one("single", copies, args.workers))
        print(json.dumps(results[-1]), flush=True)
    for copies in args.dask_copies:
        results.append(run_one("dask", copies, args.workers))
        print(json.dumps(results[-1]), flush=True)
    print(json.dumps(machine()))
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "results": results}, indent=1))


if __name__ == "__main__":
    main()
