"""Benchmark: a retrain on the full shipped data, the new file being the latest survey year.

In a throw-away project (``--workdir``, default a temporary folder) the base
champion is trained on the shipped postings and the survey rows of the years
before the latest one (``train --no-baselines``); the new file holds the
survey rows of the latest year, in the survey's raw format. Then

    salarymodel retrain --data aijobs_<latest>.csv

is timed as an operator runs it (a fresh process, imports included). Prints
the machine, the wall times, what the gate compared and decided, and the
drift headline.

    .venv/bin/python benchmarks/retrain.py [--workdir DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from explain import machine

from salarymodel.data.reading import read_csv

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def make_project(root: Path) -> tuple[Path, int]:
    """Configs pointing at the base data; the new file of the latest year (path, year)."""
    shutil.copytree(ROOT / "configs", root / "configs")
    data = root / "data"
    data.mkdir()
    # The reference tables the features read (BLS wages: features.location.bls_table).
    for table in (ROOT / "data").glob("bls_*.csv.gz"):
        shutil.copy(table, data)
    survey = read_csv(ROOT / "data" / "aijobs_salaries_2020_2024.csv.gz")
    years = survey["work_year"].astype(int)
    latest = int(years.max())
    survey[years < latest].to_csv(data / "aijobs_base.csv.gz", index=False)
    new = data / f"aijobs_{latest}.csv"
    survey[years == latest].to_csv(new, index=False)
    (data / "postings.csv.gz").symlink_to(ROOT / "data" / "data_jobs_2023_annual_salary.csv.gz")
    sources = (root / "configs" / "sources.yaml").read_text()
    sources = sources.replace("data/aijobs_salaries_2020_2024.csv.gz", "data/aijobs_base.csv.gz")
    sources = sources.replace("data/data_jobs_2023_annual_salary.csv.gz", "data/postings.csv.gz")
    (root / "configs" / "sources.yaml").write_text(sources)
    return new, latest


def timed(command: list[str], root: Path, env: dict[str, str]) -> tuple[float, int, str, str]:
    """Wall seconds, exit code, stderr and stdout of a command."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    return time.perf_counter() - start, done.returncode, done.stderr, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    root = args.workdir or Path(tempfile.mkdtemp(prefix="salarymodel-retrain-"))
    root.mkdir(parents=True, exist_ok=True)
    new, latest = make_project(root)
    env = {**os.environ, "SALARYMODEL_ROOT": str(root), "GIT_PYTHON_REFRESH": "quiet",
           "COLUMNS": "160"}  # fmt: skip
    print(f"machine: {machine()}")
    print(f"project: {root}")

    base_seconds, code, errors, _ = timed(
        [str(BIN / "salarymodel"), "train", "--no-baselines"], root, env
    )
    assert code == 0, errors[-3000:]
    print(f"base champion (survey < {latest} + postings): {base_seconds:.1f} s")

    seconds, code, errors, output = timed(
        [str(BIN / "salarymodel"), "retrain", "--data", str(new), "--json"], root, env
    )
    assert code in (0, 1), errors[-3000:]
    start = output.index("\n{") + 1
    summary = json.loads(output[start:])
    print(errors.strip())
    print(output[:start])
    figures = {
        "machine": machine(),
        "base_train_seconds": base_seconds,
        "retrain_wall_seconds": seconds,
        "retrain_stage_seconds": summary["seconds"],
        "new_file": new.name,
        "rows": summary["rows"],
        "novel_records": summary["novel_records"],
        "promoted": summary["promoted"],
        "checks": summary["checks"],
        "comparison": summary["comparison"],
        "drift": summary["drift"],
    }
    print(f"\nretrain wall time: {seconds:.1f} s (exit {code})")
    print("drift headline: " + json.dumps(summary["drift"], default=str))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=str))


if __name__ == "__main__":
    main()
