"""Benchmark: time to explain one estimate and the whole training set (LightGBM's TreeSHAP).

Run from the project root after `make run` (it explains the champion):

    .venv/bin/python benchmarks/explain.py [--rows N]

Prints the machine it ran on with the figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

from salarymodel.config.settings import load_settings, load_sources
from salarymodel.core.explanations import Explainer
from salarymodel.data.dataset import load_training_data
from salarymodel.registry.bundles import load_champion


def machine() -> str:
    """CPU model, core count and Python version."""
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if "model name" in line)
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=None, help="explain only this many records")
    args = parser.parse_args()
    settings, sources = load_settings(), load_sources()
    model, version = load_champion(settings)
    records = load_training_data(settings, sources).records
    if args.rows:
        records = records.head(args.rows)

    start = time.perf_counter()
    explainer = Explainer.from_model(model)
    build = time.perf_counter() - start

    jobs = records.sample(200, random_state=0).to_dict("records")
    explainer.explain_job(jobs[0])  # warm-up
    single = []
    for job in jobs:
        start = time.perf_counter()
        explainer.explain_job(job)
        single.append((time.perf_counter() - start) * 1000)

    matrix = model.builder.transform(records)
    start = time.perf_counter()
    explainer.grouped(matrix)
    whole = time.perf_counter() - start

    print(f"machine: {machine()}")
    print(f"champion v{version.version}: {model.booster.num_trees()} trees")
    print(f"build the explainer from the booster: {build * 1000:.0f} ms")
    print(
        f"explain one estimate (200 jobs): p50 {statistics.median(single):.2f} ms, "
        f"p99 {sorted(single)[int(0.99 * len(single)) - 1]:.2f} ms"
    )
    print(
        f"explain {len(records):,} training records: {whole:.1f} s "
        f"({whole / len(records) * 1000:.2f} ms per record)"
    )


if __name__ == "__main__":
    main()
